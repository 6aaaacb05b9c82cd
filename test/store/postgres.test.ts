/**
 * What is particular to the PostgreSQL store: its tables mirror the SQLite schema, its URL is checked and
 * its password never shown, and — on the PostgreSQL pass's server — its guarantees hold between separate
 * connections at once (as between workers on several machines), not just within one process.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { generateDrizzleJson, generateMigration } from 'drizzle-kit/api';
import { getTableConfig as pgTableConfig, PgTable } from 'drizzle-orm/pg-core';
import { getTableConfig as sqliteTableConfig, SQLiteTable } from 'drizzle-orm/sqlite-core';
import { is } from 'drizzle-orm';
import { MIGRATIONS_DIR, claimStep, openStore, parseDatabase, readEpisodes, recordEpisodes, redactUrl, startStep, type Store } from '../../src/store/index.ts';
import * as sqliteSchema from '../../src/store/schema.ts';
import * as postgresSchema from '../../src/store/schema.postgres.ts';
import { createDatabase } from './postgres.ts';
import { ROOT } from '../workflows/helpers.ts';
import { plannedStep, tempHome, TEST_POSTGRES } from './helpers.ts';

const onServer = TEST_POSTGRES === undefined ? 'needs the PostgreSQL pass (npm test starts its server)' : false;

test('every SQLite table has its PostgreSQL twin with the same columns, nullability and primary key', () => {
  const exports = (module: object): unknown[] => Object.values(module);
  const sqliteTables = exports(sqliteSchema).filter((t): t is SQLiteTable => is(t, SQLiteTable)).map((t) => sqliteTableConfig(t));
  const postgresTables = new Map(exports(postgresSchema).filter((t): t is PgTable => is(t, PgTable)).map((t) => [pgTableConfig(t).name, pgTableConfig(t)]));
  assert.deepEqual([...postgresTables.keys()].sort(), sqliteTables.map((t) => t.name).sort());
  for (const table of sqliteTables) {
    const twin = postgresTables.get(table.name)!;
    const columns = (list: readonly { name: string; notNull: boolean; primary: boolean }[]) => list.filter((c) => c.name !== 'rowid').map((c) => [c.name, c.notNull, c.primary]);
    assert.deepEqual(columns(twin.columns), columns(table.columns), table.name);
    assert.deepEqual(twin.primaryKeys.map((k) => k.columns.map((c) => c.name)), table.primaryKeys.map((k) => k.columns.map((c) => c.name)), table.name);
  }
});

test('the committed PostgreSQL migrations match the tables (run `npx drizzle-kit generate --config drizzle.postgres.config.ts` after changing schema.ts)', async () => {
  const dir = path.join(MIGRATIONS_DIR, 'postgres', 'meta');
  const journal = JSON.parse(fs.readFileSync(path.join(dir, '_journal.json'), 'utf8')) as { entries: { idx: number }[] };
  const snapshot = JSON.parse(fs.readFileSync(path.join(dir, `${String(journal.entries.at(-1)!.idx).padStart(4, '0')}_snapshot.json`), 'utf8'));
  assert.deepEqual(await generateMigration(snapshot, await generateDrizzleJson(postgresSchema)), []);
});

test('RISE_STORE: sqlite or a postgres:// URL; anything else is named, and a password never appears in a message', () => {
  assert.deepEqual(parseDatabase(undefined), { dialect: 'sqlite' });
  assert.deepEqual(parseDatabase('sqlite'), { dialect: 'sqlite' });
  assert.equal(parseDatabase('postgresql://u@h/db').dialect, 'postgres');
  assert.throws(() => parseDatabase('mysql://root:hunter2@db/rise'), (e: Error) => /RISE_STORE must be "sqlite" or a postgres:\/\/ URL, not "mysql:\/\/root:\*\*\*@db\/rise"/.test(e.message) && !e.message.includes('hunter2'));
  assert.equal(redactUrl('postgres://rise:s3cret@10.0.0.5:5432/rise'), 'postgres://rise:***@10.0.0.5:5432/rise');
});

test('a server that does not answer fails the open with its address and without the password', async (t) => {
  // Port 9 (discard) on loopback: nothing listens there.
  const url = 'postgres://rise:s3cret@127.0.0.1:9/rise';
  await assert.rejects(openStore({ home: tempHome(t), database: url }), (e: Error) => e.message.includes('cannot connect to the PostgreSQL store at postgres://rise:***@127.0.0.1:9/rise') && !e.message.includes('s3cret'));
});

test('the CLI names a misnamed or unreachable RISE_STORE in one line, exit 2, without the password', (t) => {
  const rise = (store: string) => spawnSync(process.execPath, ['bin/rise.js', 'status'], { cwd: ROOT, env: { ...process.env, RISE_HOME: tempHome(t), RISE_STORE: store }, encoding: 'utf8' });
  const misnamed = rise('mysql://root:hunter2@db/rise');
  assert.equal(misnamed.status, 2);
  assert.equal(misnamed.stderr, 'rise: RISE_STORE must be "sqlite" or a postgres:// URL, not "mysql://root:***@db/rise"\n');
  const unreachable = rise('postgres://rise:hunter2@127.0.0.1:9/rise');
  assert.equal(unreachable.status, 2);
  assert.match(unreachable.stderr, /^rise: cannot connect to the PostgreSQL store at postgres:\/\/rise:\*\*\*@127\.0\.0\.1:9\/rise: connect ECONNREFUSED 127\.0\.0\.1:9\n$/);
});

/** `n` separate stores (pools) over one fresh database, as `n` machines would open it. */
async function stores(t: import('node:test').TestContext, n: number): Promise<Store[]> {
  const database = await createDatabase(TEST_POSTGRES!);
  // Opened at once: the first creates the tables, the others wait on the migration lock and find them.
  const opened = await Promise.all(Array.from({ length: n }, () => openStore({ home: tempHome(t), database: database.url })));
  t.after(async () => {
    for (const s of opened) await s.close();
    await database.drop();
  });
  return opened;
}

test('eight machines claim one step at once: exactly one computes it, the others see it busy', { skip: onServer }, async (t) => {
  const machines = await stores(t, 8);
  const claims = await Promise.all(machines.map((store, i) => claimStep(store, plannedStep('shared'), { owner: `machine-${i}`, ms: 60_000 })));
  assert.equal(claims.filter((c) => c.kind === 'claimed').length, 1, JSON.stringify(claims.map((c) => c.kind)));
  assert.equal(claims.filter((c) => c.kind === 'busy').length, 7);
});

test('machines recording overlapping ledger batches at once record every sample exactly once', { skip: onServer }, async (t) => {
  const machines = await stores(t, 4);
  await startStep(machines[0], plannedStep('rollout'));
  const episode = (problemId: string) => ({ problemId, turns: [{ turn: 1, kind: 'onPolicy', chosen: 0, samples: [{ text: problemId, answer: null, reward: 0, tokens: 1, logprob: -1 }] }] });
  // Each machine records problems [16·i, 16·i + 32): every problem but the first and last 16 twice, at once.
  const added = await Promise.all(machines.map((store, i) => recordEpisodes(store, 'rollout', Array.from({ length: 32 }, (_, j) => episode(`p${16 * i + j}`)))));
  const episodes = await readEpisodes(machines[0], 'rollout');
  assert.equal(episodes.length, 16 * 5);
  assert.equal(new Set(episodes.map((e) => e.problemId)).size, 16 * 5);
  assert.equal(added.reduce((a, b) => a + b, 0), 16 * 5, 'each sample counted as new by exactly one machine');
});
