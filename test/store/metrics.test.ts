import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readMetrics, upsertMetrics, type MetricRecord } from '../../src/store/metrics.ts';
import { createRun } from '../../src/store/runs.ts';
import { rowCount, tempStore } from './helpers.ts';

const row = (arm: string, iteration: number, name: string, k: number, value: number): MetricRecord => ({
  runId: 'r1',
  arm,
  iteration,
  evalSet: 'in-dist',
  name,
  k,
  value,
  details: { correct: Math.round(value * 300), problems: 300, ties: 0 },
  stepKey: `eval-${arm}-${iteration}`,
});

test('metrics upsert: a recomputed value replaces the old one in place', async (t) => {
  const store = await tempStore(t);
  await createRun(store, { id: 'r1', experiment: 'quick', spec: {} });
  await upsertMetrics(store, [row('rise', 1, 'm1@t1', 1, 0.3), row('rise', 1, 'm5@t1', 5, 0.4), row('rise', 1, 'm1@t5', 5, 0.5)]);
  await upsertMetrics(store, [row('rise', 1, 'm5@t1', 5, 0.45)]);
  assert.equal(await rowCount(store, 'metrics'), 3);
  const back = await readMetrics(store, { runId: 'r1' });
  assert.deepEqual(
    back.map((m) => [m.name, m.k, m.value]),
    [
      ['m1@t1', 1, 0.3],
      ['m5@t1', 5, 0.45],
      ['m1@t5', 5, 0.5],
    ],
  );
  assert.deepEqual(back[1].details, { correct: 135, problems: 300, ties: 0 });
  assert.equal(back[1].stepKey, 'eval-rise-1');
  assert.ok(back[1].recordedAt instanceof Date);
});

test('metrics are read by run, arm, iteration and evaluation set', async (t) => {
  const store = await tempStore(t);
  await createRun(store, { id: 'r1', experiment: 'quick', spec: {} });
  await createRun(store, { id: 'r2', experiment: 'quick', spec: {} });
  await upsertMetrics(store, [
    row('single-turn', 2, 'm1@t1', 1, 0.1),
    row('rise', 2, 'm1@t1', 1, 0.2),
    row('rise', 1, 'm1@t1', 1, 0.3),
    { ...row('rise', 1, 'm1@t1', 1, 0.4), evalSet: 'ood' },
    { runId: 'r2', arm: 'rise', iteration: 0, name: 'train.loss', value: 1.5 },
  ]);
  assert.deepEqual(
    (await readMetrics(store, { runId: 'r1' })).map((m) => [m.arm, m.iteration, m.evalSet, m.value]),
    [
      ['rise', 1, 'in-dist', 0.3],
      ['rise', 1, 'ood', 0.4],
      ['rise', 2, 'in-dist', 0.2],
      ['single-turn', 2, 'in-dist', 0.1],
    ],
  );
  assert.deepEqual((await readMetrics(store, { runId: 'r1', arm: 'rise', iteration: 1, evalSet: 'ood' })).map((m) => m.value), [0.4]);
  const [loss] = await readMetrics(store, { runId: 'r2' });
  assert.deepEqual([loss.evalSet, loss.k, loss.details, loss.stepKey], ['', 1, null, null]);
});

test('metrics belong to a recorded run', async (t) => {
  const store = await tempStore(t);
  await assert.rejects(async () => upsertMetrics(store, [row('rise', 1, 'm1@t1', 1, 0.3)]), /FOREIGN KEY|violates foreign key constraint/);
});
