import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRun, getRun, listRuns, newRunId, setRunStatus } from '../../src/store/runs.ts';
import { listExperiments, runArms, tempStore } from './helpers.ts';

const spec = { name: 'quick', seed: 1, arms: { rise: {}, 'success-only': { filter: { criteria: 'success' } } } };

test('a run is created with its experiment and arms, status running', async (t) => {
  const store = await tempStore(t);
  const run = await createRun(store, {
    id: 'run-1',
    experiment: 'quick',
    spec,
    workflowId: 'rise/quick/run-1',
    arms: { rise: { filter: { criteria: 'all' } }, 'success-only': { filter: { criteria: 'success' } } },
  });
  assert.equal(run.status, 'running');
  assert.equal(run.finishedAt, null);
  assert.deepEqual(await getRun(store, 'run-1'), run);
  assert.deepEqual((await getRun(store, 'run-1'))!.spec, spec);
  assert.equal((await getRun(store, 'run-1'))!.workflowId, 'rise/quick/run-1');
  assert.deepEqual(await runArms(store, 'run-1'), [
    { name: 'rise', config: { filter: { criteria: 'all' } } },
    { name: 'success-only', config: { filter: { criteria: 'success' } } },
  ]);
  assert.deepEqual((await listExperiments(store)).map((e) => e.name), ['quick']);
  await assert.rejects(async () => createRun(store, { id: 'run-1', experiment: 'quick', spec }), /already exists/);
  assert.equal(await getRun(store, 'nope'), undefined);
});

test('run status: terminal ones stamp the finish, running again (replay) clears it', async (t) => {
  const store = await tempStore(t);
  await createRun(store, { id: 'run-1', experiment: 'quick', spec });
  await setRunStatus(store, 'run-1', 'failed', 'iteration 2 train: NaN loss');
  let run = (await getRun(store, 'run-1'))!;
  assert.equal(run.status, 'failed');
  assert.equal(run.error, 'iteration 2 train: NaN loss');
  assert.ok(run.finishedAt instanceof Date);
  await setRunStatus(store, 'run-1', 'running');
  run = (await getRun(store, 'run-1'))!;
  assert.deepEqual([run.status, run.error, run.finishedAt], ['running', null, null]);
  await setRunStatus(store, 'run-1', 'done');
  assert.equal((await getRun(store, 'run-1'))!.status, 'done');
  await assert.rejects(async () => setRunStatus(store, 'nope', 'done'), /no run nope/);
});

test('runs are listed newest first, per experiment or all', async (t) => {
  const store = await tempStore(t);
  const a = await createRun(store, { experiment: 'quick', spec });
  const b = await createRun(store, { experiment: 'other', spec });
  const c = await createRun(store, { experiment: 'quick', spec });
  assert.deepEqual((await listRuns(store, 'quick')).map((r) => r.id), [c.id, a.id]);
  assert.equal((await listRuns(store)).length, 3);
  assert.ok((await listRuns(store)).some((r) => r.id === b.id));
  assert.deepEqual((await listExperiments(store)).map((e) => e.name), ['other', 'quick']);
});

test('run ids are readable and sortable by launch time', () => {
  const id = newRunId(new Date('2025-03-01T14:25:30.123Z'));
  assert.match(id, /^20250301-142530-[0-9a-f]{4}$/);
  assert.notEqual(newRunId(), newRunId());
});
