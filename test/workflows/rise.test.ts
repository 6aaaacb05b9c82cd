/**
 * RISE end to end through the product's path: a small transformer boosted from scratch on arithmetic,
 * one iteration (on-policy rollout, self-relabeling, filtering, reward-weighted training) and evaluation
 * of both models — the experiment workflow, every step activity, the real engine and a real store. The
 * budget keeps it to minutes on 2 cores; it asserts facts that a broken pipeline would violate (the
 * boost learned something, the tables are complete and consistent, the iteration collected and trained
 * on data), not an improvement size, which needs a larger budget (`npm run quickstart`).
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createStepContext } from '../../activities/index.ts';
import { createRiseWorker, installWorkerRuntime } from '../../src/client/worker.ts';
import { startOrAttach } from '../../src/client/start.ts';
import { isCorrect } from '../../src/rise/episode.ts';
import { metricValue } from '../../src/rise/metrics.ts';
import { validateSpec } from '../../src/spec/validate.ts';
import { recordedEvaluation } from '../../src/steps/evaluation.ts';
import type { EvaluateParams, StepKind } from '../../src/steps/index.ts';
import { doneOutputs } from '../../src/steps/stored.ts';
import { readEpisodes, readMetrics } from '../../src/store/index.ts';
import { loadTemporalConfig } from '../../temporal.config.ts';
import { useTestEnvironment } from '../temporal/server.ts';
import { uniqueTaskQueue } from '../temporal/worker.ts';
import { tempHome, tinyPlan } from './helpers.ts';

installWorkerRuntime();

const knobs = { ops: [2], operators: ['+', '-'], max: 9 };
const SPEC = {
  name: 'rise-e2e',
  seed: 1,
  iterations: 1,
  // Two +/- steps on 1..9: learnable from scratch in a few hundred steps, not solved by them.
  task: { kind: 'arithmetic', train: { count: 600, ...knobs }, eval: [{ name: 'in-dist', count: 150, ...knobs }] },
  model: { kind: 'builtin', config: { layers: 2, dim: 128, heads: 4, kvHeads: 4, context: 256 } },
  // Three solved problems per boost conversation, so the model can read turn-2 contexts at all.
  boost: { epochs: 12, lr: 5e-3, batchSize: 11, pack: 3 },
  rollout: { turns: 2, maxTokens: 48 },
  relabel: { strategy: 'self', samples: 4 },
  train: { epochs: 1, lr: 1e-3, batchSize: 32 },
  evaluate: { turns: 5, parallelK: 5, contextWindow: 1, maxTokens: 48 },
};

describe('RISE through the product path', () => {
  const temporal = useTestEnvironment();

  test('boost, one RISE iteration and evaluation on arithmetic with the built-in model', { timeout: 1_200_000 }, async (t) => {
    const { server, env } = temporal();
    const context = await createStepContext({ home: tempHome(t) });
    t.after(async () => context.store.close());
    const spec = validateSpec(SPEC);
    const plan = tinyPlan(spec);
    const taskQueue = uniqueTaskQueue('rise-e2e');
    const worker = await createRiseWorker({ connection: env.nativeConnection, namespace: server.namespace, taskQueue, context });
    const launch = await startOrAttach({ client: env.client, store: context.store, spec, plan, taskQueue, activities: loadTemporalConfig({}).activities });
    const started = performance.now();
    await worker.runUntil(launch.handle.result());
    t.diagnostic(`wall ${((performance.now() - started) / 1000).toFixed(0)} s`);

    const [arm] = plan.arms;
    const keyOf = (kind: StepKind, iteration: number) => arm.steps.find((s) => s.kind === kind && s.iteration === iteration)!.key;
    const outputs = async <K extends StepKind>(kind: K, iteration: number) => {
      const o = await doneOutputs(context.store, keyOf(kind, iteration), kind);
      assert.ok(o, `${kind} ${iteration} is done`);
      return o;
    };

    // The boost learned the task from scratch (an untrained model scores 0).
    const boost = (await outputs('boost', 0)).train;
    assert.ok(boost.lastLoss! < boost.firstLoss! / 4, `boost loss ${boost.firstLoss} → ${boost.lastLoss}`);
    const evaluations = [];
    for (const i of [0, 1]) evaluations.push({ key: keyOf('evaluate', i), byRule: (await recordedEvaluation(context.store, keyOf('evaluate', i), plan.steps[keyOf('evaluate', i)].params as EvaluateParams)).byRule });
    const tables = evaluations.map((e) => e.byRule.expected);
    assert.ok(metricValue(tables[0], 'm1@t1') > 0, 'boosted m1@t1 > 0');
    // The metric rows the run wrote are the recomputation from the ledger under the spec's rule (the default).
    for (const [iteration, e] of evaluations.entries()) {
      assert.equal((await outputs('evaluate', iteration)).problems, tables[iteration].problems);
      const rows = (await readMetrics(context.store, { runId: launch.runId })).filter((m) => m.stepKey === e.key);
      assert.deepEqual(
        rows.map((m) => [m.name, m.value, (m.details as { ties: number }).ties]).sort(),
        e.byRule.expected.rows.map((r) => [r.name, r.value, r.ties]).sort(),
      );
    }

    // Every model has the complete table, and its rows are consistent with each other.
    const names = ['m1@t1', 'm2@t1', 'm3@t1', 'm4@t1', 'm5@t1', 'm1@t2', 'm1@t3', 'm1@t4', 'm1@t5', 'p1@t1', 'p1@t2', 'p1@t3', 'p1@t4', 'p1@t5'];
    const heldOut = (await readEpisodes(context.store, keyOf('evaluate', 0))).length;
    assert.ok(heldOut > 0 && heldOut <= 150);
    for (const table of tables) {
      t.diagnostic(table.rows.map((r) => `${r.name} ${(100 * r.value).toFixed(1)}`).join('  '));
      assert.deepEqual(table.rows.map((r) => r.name), names);
      assert.equal(table.problems, heldOut);
      for (const r of table.rows) assert.ok(r.value >= 0 && r.value <= 1 && Math.abs(r.correct - r.value * r.problems) < 1e-9);
      assert.equal(metricValue(table, 'p1@t1'), metricValue(table, 'm1@t1'));
      for (let k = 2; k <= 5; k++) {
        assert.ok(metricValue(table, `p1@t${k}`) >= metricValue(table, `p1@t${k - 1}`), `p1@t${k} >= p1@t${k - 1}`);
        assert.ok(metricValue(table, `p1@t${k}`) >= metricValue(table, `m1@t${k}`), `p1@t${k} >= m1@t${k}`);
      }
    }

    // The iteration collected one episode per training problem, relabeled the wrong ones, and trained.
    const rollout = await outputs('rollout', 1);
    const relabel = await outputs('relabel', 1);
    assert.equal(rollout.episodes, 600);
    assert.equal(relabel.episodes, 600);
    assert.equal(relabel.turn1Accuracy, rollout.turn1Accuracy, 'relabeling continues the rollout, it does not redraw attempt 1');
    assert.ok(relabel.finalAccuracy >= relabel.turn1Accuracy);
    const wrongAtTurn1 = Math.round((1 - rollout.turn1Accuracy) * 600);
    assert.ok(wrongAtTurn1 > 0);
    const episodes = await readEpisodes(context.store, keyOf('relabel', 1));
    const samples = episodes.flatMap((e) => e.turns.flatMap((turn) => turn.samples));
    const resamples = samples.filter((s) => (s.resample ?? 0) > 0).length;
    assert.equal(samples.length, 600 + 4 * wrongAtTurn1 + resamples);
    assert.equal(episodes.filter((e) => isCorrect(e.turns[0].samples[e.turns[0].chosen].reward)).length, 600 - wrongAtTurn1);
    const filter = await outputs('filter', 1);
    const train = await outputs('train', 1);
    assert.ok(filter.kept > 0);
    assert.equal(train.examples + train.tooLong, filter.kept);
    assert.ok(Number.isFinite(train.train.lastLoss) && train.train.steps === Math.ceil(train.examples / 32));
  });
});
