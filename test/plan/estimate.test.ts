/**
 * The cost estimate: the bounds a step's params give, how history scales them and times them, where a
 * calibration fills in, the totals; and `rise plan` printing it from a real store.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { currentCompute } from '../../src/plan/compute.ts';
import { estimatePlan, estimateStep, graphOf, NO_CALIBRATION, stepBound, type StepHistory } from '../../src/plan/estimate.ts';
import { planExperiment, type Plan } from '../../src/plan/plan.ts';
import { evaluationProblems } from '../../activities/problems.ts';
import { shortKey, type EvaluateParams } from '../../src/steps/index.ts';
import { validateSpec } from '../../src/spec/validate.ts';
import { createRun, finishStep, openStore, recordEpisodes, startStep } from '../../src/store/index.ts';

const SPEC = {
  name: 'estimate',
  seed: 3,
  task: { kind: 'arithmetic', train: { count: 24, ops: [1], min: 1, max: 5 }, eval: [{ name: 'in-dist', count: 8 }] },
  model: { kind: 'builtin', config: { layers: 1, dim: 32, heads: 2, context: 128 } },
  boost: { epochs: 2, lr: 0.01, batchSize: 8 },
  iterations: 1,
  rollout: { maxTokens: 12, samples: 1 },
  relabel: { samples: 2 },
  train: { epochs: 1, batchSize: 8 },
  evaluate: { turns: 2, parallelK: 2, maxTokens: 12 },
};

const plan: Plan = planExperiment(validateSpec(SPEC), { compute: currentCompute() });
const keyOf = (kind: string, iteration = 1) => plan.arms[0].steps.find((s) => s.kind === kind && s.iteration === (kind === 'boost' ? 0 : iteration))!.key;

test('bounds follow from the params: problems × episodes × candidates × turns × maxTokens, examples × epochs × context', () => {
  assert.deepEqual(stepBound(plan.steps, keyOf('rollout'), {}), { work: 'sample', items: 24, tokens: 24 * 12 });
  // Every episode wrong at turn 1, 2 candidates each for turn 2.
  assert.deepEqual(stepBound(plan.steps, keyOf('relabel'), {}), { work: 'sample', items: 24 * 1 * 2, tokens: 48 * 12 });
  // 2 parallel samples plus 2 sequential turns, sample 0 shared.
  assert.deepEqual(stepBound(plan.steps, keyOf('evaluate'), {}), { work: 'sample', items: 8 * 3, tokens: 24 * 12 });
  assert.deepEqual(stepBound(plan.steps, keyOf('boost'), {}), { work: 'train', items: 24 * 2, tokens: 48 * 128 });
  assert.deepEqual(stepBound(plan.steps, keyOf('train'), {}), { work: 'train', items: 24 * 2 * 1, tokens: 48 * 128 });
  assert.deepEqual(stepBound(plan.steps, keyOf('filter'), {}), { work: 'none', items: 0, tokens: 0 });
});

test('history scales the bound by how full its kind ran and times it on the same graph; calibration fills in; totals split run from reused', () => {
  const relabel = plan.steps[keyOf('relabel')];
  const bound = { work: 'sample' as const, items: 100, tokens: 1000 };
  const history: StepHistory[] = [
    { kind: 'relabel', graph: graphOf(relabel), bound, tokens: 250, seconds: 5 },
    // Another graph: counts for the fill, not for the rate.
    { kind: 'relabel', graph: 'other', bound, tokens: 350, seconds: 1 },
  ];
  const e = estimateStep(plan, relabel.key, {}, history, NO_CALIBRATION);
  assert.equal(e.basis, 'history');
  assert.equal(e.tokens, Math.round(576 * 0.3));
  assert.equal(e.seconds, Math.round(576 * 0.3) / 50);
  assert.match(e.tokensFrom, /^30\.0 % of the bound, as in 2 finished relabel steps$/);
  assert.match(e.secondsFrom, /^50 tok\/s over 1 finished relabel step on this graph$/);

  // No history on its graph: the evaluation shares the decode graph with the relabel (same model), so takes its rate.
  const evaluation = estimateStep(plan, keyOf('evaluate'), {}, history, NO_CALIBRATION);
  assert.equal(evaluation.basis, 'bound');
  assert.equal(evaluation.seconds, 288 / 50);
  assert.match(evaluation.secondsFrom, /over 1 finished relabel step on this graph/);

  // Nothing known for training: no seconds, until a calibration gives a rate and counts the boost.
  const boostKey = keyOf('boost');
  assert.equal(estimateStep(plan, boostKey, {}, history, NO_CALIBRATION).seconds, null);
  const calibration = { rates: [{ graph: graphOf(plan.steps[boostKey])!, work: 'train' as const, tokensPerSecond: 100 }], tokens: { [boostKey]: 3000 } };
  const boost = estimateStep(plan, boostKey, {}, history, calibration);
  assert.deepEqual([boost.basis, boost.tokens, boost.seconds], ['counted', 3000, 30]);
  assert.equal(estimateStep(plan, keyOf('train'), {}, history, calibration).seconds, (48 * 128) / 100);

  const totals = estimatePlan(plan, (key) => key === boostKey, {}, history, calibration);
  assert.deepEqual(totals.reused, { steps: 1, sampled: 0, trained: 3000, seconds: 30, unknown: 0 });
  assert.equal(totals.toRun.steps, Object.keys(plan.steps).length - 1);
  assert.equal(totals.toRun.unknown, 1, 'the filter, which no history times');
  assert.equal(totals.toRun.trained, 48 * 128);
});

test('rise plan prints the estimate from the store: a finished step is reused with its time, the others are timed by its rate', async () => {
  const home = mkdtempSync(join(tmpdir(), 'rise-estimate-'));
  try {
    const file = join(home, 'spec.json');
    writeFileSync(file, JSON.stringify(SPEC));
    const store = await openStore({ home });
    const run = await createRun(store, { experiment: plan.experiment, spec: validateSpec(SPEC), plan, workflowId: 'rise/estimate/x' });
    const rollout = plan.steps[keyOf('rollout')];
    await startStep(store, plan.steps[keyOf('boost')], run.id);
    await finishStep(store, keyOf('boost'), { seconds: 10, tokens: 5000 });
    await startStep(store, rollout, run.id);
    // 24 episodes, 6 tokens each: half the bound, in 2 seconds (72 tok/s).
    await recordEpisodes(
      store,
      rollout.key,
      Array.from({ length: 24 }, (_, i) => ({ problemId: `p${i}`, turns: [{ turn: 1, kind: 'attempt', chosen: 0, samples: [{ text: 'x', answer: '1', reward: 0, tokens: 6, logprob: -1 }] }] })),
      run.id,
    );
    await finishStep(store, rollout.key, { seconds: 2 });
    await store.close();

    // The evaluation set without the training prompts, as the step builds it: 3 samples of 12 tokens per problem at most.
    const held = (await evaluationProblems(plan.steps[keyOf('evaluate')].params as EvaluateParams, {})).length;
    assert.ok(held > 0 && held < 8, `${held} of 8 problems held out`);
    const evaluation = held * 3 * 12;
    const r = spawnSync(process.execPath, ['bin/rise.js', 'plan', file], { env: { ...process.env, RISE_HOME: home }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.split('\n');
    const at = (key: string) => lines.findIndex((l) => l.startsWith(`  ${shortKey(key)}  `) && l.includes('reused') !== l.includes('to run'));
    const line = (key: string) => `${lines[at(key)]}\n${lines[at(key) + 1]}`;
    assert.match(line(rollout.key), /reused \(took 2\.0 s\)\s+sample ≈ 144 \(≤ 288\)\s+≈ 2\.0 s\n\s+tokens: 50\.0 % of the bound, as in 1 finished rollout step; time: 72 tok\/s over 1 finished rollout step on this graph/);
    assert.match(line(keyOf('evaluate')), new RegExp(`to run\\s+sample ≤ ${evaluation}\\s+≈ ${(evaluation / 72).toFixed(1)} s\\n.*time: 72 tok/s over 1 finished rollout step on this graph`));
    assert.match(line(keyOf('boost')), /reused \(took 10\.0 s\)\s+train ≈ 5000 \(≤ 6144\)\s+≈ 10\.0 s/);
    // The relabel samples 48 × 12 at most, at the rollout's rate; the train step, at the boost's (same graph).
    assert.match(line(keyOf('relabel')), /to run\s+sample ≤ 576\s+≈ 8\.0 s/);
    const seconds = 8 + (2 * evaluation) / 72 + 6144 / 500;
    assert.match(r.stdout, new RegExp(`\\nto run: 5 steps, ${576 + 2 * evaluation} tokens to sample, 6144 to train, ≈ ${seconds.toFixed(1)} s \\+ 1 step with no rate\\n`));
    assert.match(r.stdout, /\nreused: 2 steps, 144 tokens to sample, 5000 to train, ≈ 12\.0 s\n\s+\(the reused steps took 12\.0 s when they ran\)/);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
