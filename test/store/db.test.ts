import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { generateSQLiteDrizzleJson, generateSQLiteMigration } from 'drizzle-kit/api';
import { MIGRATIONS_DIR, openStore, resolveHome } from '../../src/store/db.ts';
import { readMetrics, upsertMetrics } from '../../src/store/metrics.ts';
import * as schema from '../../src/store/schema.ts';
import { createRun, getRun } from '../../src/store/runs.ts';
import { finishStep, getStep, startStep, stepStatus } from '../../src/store/steps.ts';
import { plannedStep, rowCount, tempHome } from './helpers.ts';

const journal = JSON.parse(fs.readFileSync(path.join(MIGRATIONS_DIR, 'meta', '_journal.json'), 'utf8')) as { entries: { idx: number }[] };

test('the committed migrations match schema.ts (run `npx drizzle-kit generate` after changing it)', async () => {
  const last = journal.entries.at(-1)!;
  const snapshot = JSON.parse(fs.readFileSync(path.join(MIGRATIONS_DIR, 'meta', `${String(last.idx).padStart(4, '0')}_snapshot.json`), 'utf8'));
  assert.deepEqual(await generateSQLiteMigration(snapshot, await generateSQLiteDrizzleJson(schema)), []);
});

test('a fresh store is migrated, in WAL mode, with the pragmas that sharing it needs', async (t) => {
  const home = tempHome(t);
  const store = await openStore({ home });
  try {
    assert.equal(store.home, path.resolve(home));
    assert.equal(store.location, path.join(home, 'rise.db'));
    assert.equal(store.artifacts.url, path.join(home, 'artifacts'));
    assert.equal(store.sqlite!.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(store.sqlite!.pragma('synchronous', { simple: true }), 1, 'NORMAL');
    assert.equal(store.sqlite!.pragma('foreign_keys', { simple: true }), 1);
    assert.ok(Number(store.sqlite!.pragma('busy_timeout', { simple: true })) >= 5000);
    const tables = (store.sqlite!.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).all() as { name: string }[]).map((r) => r.name);
    for (const name of ['experiments', 'runs', 'arms', 'steps', 'step_inputs', 'step_results', 'artifacts', 'episodes', 'turns', 'samples', 'examples', 'metrics']) {
      assert.ok(tables.includes(name), `table ${name}`);
    }
    assert.ok(journal.entries.length >= 1);
    assert.equal(await rowCount(store, '__drizzle_migrations'), journal.entries.length);
  } finally {
    await store.close();
  }
});

test('reopening an existing store applies nothing again and keeps the data', async (t) => {
  const home = tempHome(t);
  const first = await openStore({ home });
  await createRun(first, { id: 'r1', experiment: 'quick', spec: { seed: 1 } });
  await startStep(first, plannedStep('boost', 'boost'));
  await finishStep(first, 'boost', { model: 'ref' });
  await first.close();

  const again = await openStore({ home });
  try {
    assert.equal(await rowCount(again, '__drizzle_migrations'), journal.entries.length);
    assert.deepEqual((await getRun(again, 'r1'))!.spec, { seed: 1 });
    assert.deepEqual((await getStep(again, 'boost'))!.outputs, { model: 'ref' });
  } finally {
    await again.close();
  }
});

test('the store lives in RISE_HOME, else .rise under the working directory; migrations are found from anywhere', async (t) => {
  const saved = process.env.RISE_HOME;
  const cwd = process.cwd();
  t.after(() => {
    if (saved === undefined) delete process.env.RISE_HOME;
    else process.env.RISE_HOME = saved;
    process.chdir(cwd);
  });
  const elsewhere = tempHome(t);
  process.chdir(elsewhere);
  delete process.env.RISE_HOME;
  assert.equal(resolveHome(), path.join(fs.realpathSync(elsewhere), '.rise'));
  assert.equal(resolveHome('x'), path.join(fs.realpathSync(elsewhere), 'x'));

  const home = path.join(tempHome(t), 'custom-home');
  process.env.RISE_HOME = home;
  const store = await openStore();
  try {
    assert.equal(store.home, home);
    assert.ok(fs.existsSync(path.join(home, 'rise.db')));
    assert.equal(fs.existsSync(path.join(elsewhere, '.rise')), false);
  } finally {
    await store.close();
  }
});

test('two connections of one process write at once without waiting on each other’s lock (their transactions queue)', async (t) => {
  const home = tempHome(t);
  const [cli, worker] = [await openStore({ home }), await openStore({ home })];
  t.after(async () => {
    await cli.close();
    await worker.close();
  });
  // Transactions whose bodies interleave between awaits: on two connections to one file, the second's BEGIN
  // would wait (blocking the process) for a lock the first cannot release.
  await Promise.all(Array.from({ length: 20 }, (_, i) => startStep(i % 2 === 0 ? cli : worker, plannedStep(`s${i}`))));
  assert.equal(await rowCount(cli, 'steps'), 20);
});

test('two connections (CLI and worker) see each other’s writes', async (t) => {
  const home = tempHome(t);
  const cli = await openStore({ home });
  const worker = await openStore({ home });
  try {
    await createRun(cli, { id: 'r1', experiment: 'quick', spec: {} });
    assert.equal((await getRun(worker, 'r1'))!.status, 'running');

    await startStep(worker, plannedStep('rollout-1'), 'r1');
    assert.equal(await stepStatus(cli, 'rollout-1'), 'running');
    await finishStep(worker, 'rollout-1', { episodes: 'ref' });
    assert.equal(await stepStatus(cli, 'rollout-1'), 'done');

    await upsertMetrics(worker, [{ runId: 'r1', arm: 'rise', iteration: 1, name: 'm1@t1', value: 0.5 }]);
    assert.equal((await readMetrics(cli, { runId: 'r1' }))[0].value, 0.5);
  } finally {
    await worker.close();
    await cli.close();
  }
});

/** Spawns the writers, lets them go at once, and resolves with their exit codes and output. */
async function runWriters(home: string, names: string[], steps: number): Promise<{ code: number | null; output: string }[]> {
  const script = fileURLToPath(new URL('./writer.ts', import.meta.url));
  const go = path.join(home, '..', `go-${path.basename(home)}`);
  const children = names.map((name) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, home, name, go, String(steps)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const ready = new Promise<void>((resolve) => child.stdout.on('data', () => output.includes('ready') && resolve()));
    const exited = new Promise<{ code: number | null; output: string }>((resolve) => child.on('close', (code) => resolve({ code, output })));
    return { ready, exited };
  });
  await Promise.all(children.map((c) => c.ready));
  fs.writeFileSync(go, '');
  try {
    return await Promise.all(children.map((c) => c.exited));
  } finally {
    fs.rmSync(go, { force: true });
  }
}

test('several processes open a new store at once and write concurrently without errors or lost rows', async (t) => {
  const home = path.join(tempHome(t), 'shared');
  const names = ['cli', 'worker-a', 'worker-b', 'worker-c'];
  const results = await runWriters(home, names, 40);
  for (const [i, r] of results.entries()) assert.equal(r.code, 0, `${names[i]} failed:\n${r.output}`);

  const store = await openStore({ home });
  try {
    assert.equal(await rowCount(store, '__drizzle_migrations'), journal.entries.length);
    assert.equal(await rowCount(store, 'steps'), names.length * 40 + 1);
    assert.equal(await rowCount(store, 'step_results'), names.length * 40 + 1, 'one result for the shared step');
    assert.equal(await rowCount(store, 'samples'), names.length * 40 * 2);
    for (const name of names) assert.equal(await stepStatus(store, `${name}-39`), 'done');
    assert.ok(names.includes(((await getStep(store, 'shared-boost'))!.outputs as { by: string }).by));
    assert.equal((await getStep(store, 'shared-boost'))!.attempts, names.length);
  } finally {
    await store.close();
  }
});
