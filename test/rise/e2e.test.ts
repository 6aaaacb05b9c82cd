/**
 * RISE end to end with the real engine: a small transformer boosted from scratch on arithmetic, one
 * iteration (on-policy rollout, self-relabeling, filtering, reward-weighted training), and evaluation of
 * both models. The budget is small so the test stays in minutes on 2 cores; it asserts facts that a broken
 * pipeline would violate (the boost learned something, the table is complete and consistent, the
 * iteration collected and trained on data), not an improvement size, which needs a larger budget
 * (bench/rise-quick.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { metricValue, runRiseInProcess, type Progress } from '../../src/rise/index.ts';

test('boost, one RISE iteration and evaluation on arithmetic with the built-in model', { timeout: 900_000 }, async (t) => {
  const steps = new Set<string>();
  const result = await runRiseInProcess(
    {
      seed: 1,
      iterations: 1,
      // Two +/- steps on 1..9: learnable from scratch in a few hundred steps, not solved by them.
      task: { train: { count: 600, ops: [2], operators: ['+', '-'], max: 9 }, eval: [{ name: 'in-dist', count: 150, ops: [2], operators: ['+', '-'], max: 9 }] },
      model: { layers: 2, dim: 128, heads: 4, kvHeads: 4, context: 256 },
      // Three solved problems per boost conversation, so the model can read turn-2 contexts at all.
      boost: { epochs: 12, lr: 5e-3, batchSize: 11, pack: 3 },
      rollout: { turns: 2, maxTokens: 48 },
      relabel: { strategy: 'self', samples: 4 },
      train: { epochs: 1, lr: 1e-3, batchSize: 32 },
      evaluate: { turns: 5, parallelK: 5, contextWindow: 1, maxTokens: 48 },
    },
    { onProgress: (p: Progress & { step: string }) => void steps.add(p.step) },
  );
  for (const line of [...result.table.split('\n'), `wall ${result.seconds.toFixed(0)} s`]) t.diagnostic(line);
  const [boost, iter1] = result.iterations;
  assert.equal(result.iterations.length, 2);
  assert.deepEqual([...steps].filter((s) => !s.includes('evaluate')), ['boost', 'iteration 1: rollout', 'iteration 1: train']);

  // The boost learned the task from scratch (an untrained model scores 0).
  assert.ok(boost.train.lastLoss < boost.train.firstLoss / 4, `boost loss ${boost.train.firstLoss} → ${boost.train.lastLoss}`);
  assert.ok(metricValue(boost.evals['in-dist'], 'm1@t1') > 0, 'boosted m1@t1 > 0');

  // Every model has the complete table, and its rows are consistent with each other.
  const names = ['m1@t1', 'm2@t1', 'm3@t1', 'm4@t1', 'm5@t1', 'm1@t2', 'm1@t3', 'm1@t4', 'm1@t5', 'p1@t1', 'p1@t2', 'p1@t3', 'p1@t4', 'p1@t5'];
  for (const it of result.iterations) {
    const table = it.evals['in-dist'];
    assert.deepEqual(table.rows.map((r) => r.name), names);
    assert.equal(table.problems, result.problems.eval['in-dist']);
    for (const r of table.rows) assert.ok(r.value >= 0 && r.value <= 1 && r.correct === Math.round(r.value * r.problems));
    assert.equal(metricValue(table, 'p1@t1'), metricValue(table, 'm1@t1'));
    for (let k = 2; k <= 5; k++) {
      assert.ok(metricValue(table, `p1@t${k}`) >= metricValue(table, `p1@t${k - 1}`), `p1@t${k} >= p1@t${k - 1}`);
      assert.ok(metricValue(table, `p1@t${k}`) >= metricValue(table, `m1@t${k}`), `p1@t${k} >= m1@t${k}`);
    }
  }

  // The iteration collected one episode per training problem, relabeled the wrong ones, and trained.
  const c = iter1.collect!;
  assert.equal(c.episodes, result.problems.train);
  const wrongAtTurn1 = Math.round((1 - c.turn1Accuracy) * c.episodes);
  assert.ok(wrongAtTurn1 > 0);
  assert.equal(c.samples, c.episodes + 4 * wrongAtTurn1 + c.resamples);
  assert.ok(c.finalAccuracy >= c.turn1Accuracy);
  assert.equal(c.solvedAtTurn[0], c.episodes - wrongAtTurn1);
  assert.ok(iter1.examples!.kept > 0);
  assert.ok(Number.isFinite(iter1.train.lastLoss) && iter1.train.steps === Math.ceil(iter1.examples!.kept / 32));
  assert.match(result.table, /\| boost \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \|/);
  assert.match(result.table, /\| iteration 1 \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \|/);
});
