import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { MIGRATIONS_DIR, openStore } from '../../src/store/db.ts';
import { writeTx } from '../../src/store/db.ts';
import { examples } from '../../src/store/schema.ts';
import { readExamples, recordExamples, type ExampleRecord } from '../../src/store/examples.ts';
import { finishStep, markStale, startStep } from '../../src/store/steps.ts';
import { exampleCounts, plannedStep, started, tempHome, tempStore } from './helpers.ts';

const batch: ExampleRecord[] = [
  { problemId: 'p1', turn: 1, reward: 0, origin: 'iter-1' },
  { problemId: 'p1', turn: 2, reward: 1, origin: 'iter-1' },
  { problemId: 'p2', turn: 1, reward: -1, origin: 'iter-1', dropRule: 'empty' },
  { problemId: 'p2', turn: 2, reward: 0, origin: 'iter-1', dropRule: 'repeatedAttempt' },
  { problemId: 'p1', turn: 2, reward: 1, origin: 'iter-2', dropRule: 'duplicateExample' },
  { problemId: 'p3', turn: 1, reward: 0, dropRule: 'criteria' },
];

test('kept and dropped examples are recorded with their drop rule', async (t) => {
  const store = await tempStore(t);
  const key = await started(store, 'filter-1', 'filter');
  assert.equal(await recordExamples(store, key, batch), 6);
  const back = await readExamples(store, key);
  assert.deepEqual(
    back.map((e) => [e.origin, e.problemId, e.turn, e.dropped, e.dropRule]),
    [
      ['iter-1', 'p1', 1, false, null],
      ['iter-1', 'p1', 2, false, null],
      ['iter-1', 'p2', 1, true, 'empty'],
      ['iter-1', 'p2', 2, true, 'repeatedAttempt'],
      ['iter-2', 'p1', 2, true, 'duplicateExample'],
      ['', 'p3', 1, true, 'criteria'],
    ],
  );
  assert.deepEqual(back.map((e) => e.reward), [0, 1, -1, 0, 1, 0]);
  assert.deepEqual(await exampleCounts(store, key), { kept: 2, dropped: { empty: 1, repeatedAttempt: 1, duplicateExample: 1, criteria: 1 } });
});

test('recording examples again adds nothing; a replayed step starts a fresh set', async (t) => {
  const store = await tempStore(t);
  const key = await started(store, 'filter-1', 'filter');
  await recordExamples(store, key, batch);
  assert.equal(await recordExamples(store, key, batch), 0);
  assert.equal((await readExamples(store, key)).length, 6);

  await finishStep(store, key, {});
  await markStale(store, [key]);
  await startStep(store, plannedStep(key, 'filter'));
  assert.deepEqual(await readExamples(store, key), []);
  assert.equal(await recordExamples(store, key, batch.slice(0, 2)), 2);
  assert.deepEqual(await exampleCounts(store, key), { kept: 2, dropped: {} });
});

test('the dropped flag and the drop rule cannot disagree', async (t) => {
  const store = await tempStore(t);
  const key = await started(store, 'filter-1', 'filter');
  const insert = async (problemId: string, dropped: boolean, dropRule: string | null) =>
    writeTx(store, (tx) => tx.insert(examples).values({ stepKey: key, generation: 0, problemId, turn: 1, reward: 0, dropped, dropRule }));
  await assert.rejects(insert('a', true, null), /CHECK constraint|violates check constraint "examples_drop_rule"/);
  await assert.rejects(insert('b', false, 'criteria'), /CHECK constraint|violates check constraint "examples_drop_rule"/);
});

test('a store made before the examples lost their weight and tokens columns migrates with its examples', async (t) => {
  // The store as migrations 0000 and 0001 left it, with an example that has a weight and a token count.
  const home = tempHome(t);
  const old = path.join(home, 'migrations');
  fs.mkdirSync(path.join(old, 'meta'), { recursive: true });
  for (const f of ['0000_init.sql', '0001_run_plan_step_lease.sql']) fs.cpSync(path.join(MIGRATIONS_DIR, f), path.join(old, f));
  const journal = JSON.parse(fs.readFileSync(path.join(MIGRATIONS_DIR, 'meta', '_journal.json'), 'utf8')) as { entries: { tag: string }[] };
  const upTo = journal.entries.findIndex((e) => e.tag === '0001_run_plan_step_lease');
  fs.writeFileSync(path.join(old, 'meta', '_journal.json'), JSON.stringify({ ...journal, entries: journal.entries.slice(0, upTo + 1) }));
  const sqlite = new Database(path.join(home, 'rise.db'));
  migrate(drizzle({ client: sqlite }), { migrationsFolder: old });
  sqlite.prepare(`INSERT INTO steps (key, kind, params, state, generation, attempts) VALUES ('filter-1', 'filter', '{}', 'running', 0, 1)`).run();
  sqlite.prepare(`INSERT INTO examples (step_key, generation, origin, problem_id, turn, reward, weight, tokens, dropped, drop_rule) VALUES ('filter-1', 0, 'iter-1', 'p1', 2, 1, 12.18, 9, 0, NULL)`).run();
  sqlite.close();

  const store = await openStore({ home });
  try {
    assert.deepEqual(await readExamples(store, 'filter-1'), [{ problemId: 'p1', turn: 2, reward: 1, origin: 'iter-1', dropped: false, dropRule: null }]);
    const columns = (store.sqlite!.prepare(`SELECT name FROM pragma_table_info('examples')`).all() as { name: string }[]).map((c) => c.name);
    assert.ok(!columns.includes('weight') && !columns.includes('tokens'), columns.join(', '));
  } finally {
    await store.close();
  }
});
