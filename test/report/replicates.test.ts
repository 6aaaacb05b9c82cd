import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/engine/random.ts';
import { HEADLINE_METRICS, type EvalRecord } from '../../src/rise/metrics.ts';
import type { Evaluated } from '../../src/report/differences.ts';
import { bootstrapInterval, replicatePoints } from '../../src/report/replicates.ts';

test('the bootstrap interval of a constant is that constant, and it holds the mean of what it resamples', () => {
  assert.deepEqual(bootstrapInterval([[1, 1, 1], [1, 1]]), { low: 1, high: 1 });
  const rng = new Rng('data');
  const groups = [0, 1, 2].map(() => Array.from({ length: 300 }, (): number => (rng.uniform() < 0.3 ? 1 : 0)));
  const grand = groups.map((g) => g.reduce((s, x) => s + x, 0) / g.length).reduce((s, x) => s + x, 0) / groups.length;
  const { low, high } = bootstrapInterval(groups);
  assert.ok(low < grand && grand < high, `${low} < ${grand} < ${high}`);
  // About 1.96 standard errors of the mean of three means of 300 Bernoulli(0.3) draws: ±0.030.
  const se = Math.sqrt((0.3 * 0.7) / 300 / 3);
  assert.ok(Math.abs((high - low) / 2 - 1.96 * se) < 0.006, `half-width ${(high - low) / 2} vs ${1.96 * se}`);
  // Fixed stream: the same interval every time; four times the problems, half the width.
  assert.deepEqual(bootstrapInterval(groups), { low, high });
  const more = bootstrapInterval(groups.map((g) => [...g, ...g, ...g, ...g]));
  assert.ok(Math.abs((more.high - more.low) * 2 - (high - low)) < 0.01);
});

/** A model's answers on `n` problems: right at turn t with probability p[t], five turns and five samples. */
function evaluated(arm: string, iteration: number, seed: number, p: number[], n = 200): Evaluated {
  const rng = new Rng(arm, iteration, seed);
  const answer = (right: boolean) => ({ answer: right ? 'R' : String(rng.int(3)), correct: right });
  const records: EvalRecord[] = Array.from({ length: n }, (_, i) => {
    const sequential = p.map((q) => answer(rng.uniform() < q));
    return { problemId: `s${seed}-p${i}`, sequential, parallel: [sequential[0], ...[1, 2, 3, 4].map(() => answer(rng.uniform() < p[0]))] };
  });
  return { arm, iteration, evalSet: 'in-dist', records, seed: 0, vote: 'uniform', metrics: new Set(HEADLINE_METRICS) };
}

test('replicates group by declared arm: mean and standard deviation across seeds, paired comparisons per seed', () => {
  const arms = ['rise@seed1', 'rise@seed2', 'rise@seed3', 'hold@seed1', 'hold@seed2', 'hold@seed3'];
  const rising = [0.3, 0.35, 0.4, 0.45, 0.5];
  const all = arms.flatMap((arm, i) => [evaluated(arm, 0, i % 3, [0.3, 0.3, 0.3, 0.3, 0.3]), evaluated(arm, 1, i % 3, arm.startsWith('hold') ? rising : [0.3, 0.2, 0.2, 0.2, 0.2])]);
  const points = replicatePoints(all, arms, 'expected', () => assert.fail('every arm is a replicate'));
  const at = (arm: string, iteration: number, quantity: string) => points.find((p) => p.arm === arm && p.iteration === iteration && p.quantity === quantity)!;

  const m1 = at('hold', 1, 'm1@t1');
  assert.deepEqual(m1.seeds, [1, 2, 3]);
  assert.deepEqual(m1.problems, [200, 200, 200]);
  const perSeed = ['hold@seed1', 'hold@seed2', 'hold@seed3'].map((arm) => all.find((e) => e.arm === arm && e.iteration === 1)!.records.filter((r) => r.sequential[0].correct).length / 200);
  assert.deepEqual(m1.values, perSeed);
  const mean = perSeed.reduce((s, x) => s + x, 0) / 3;
  assert.ok(Math.abs(m1.mean - mean) < 1e-12);
  assert.ok(Math.abs(m1.sd! - Math.sqrt(perSeed.reduce((s, x) => s + (x - mean) ** 2, 0) / 2)) < 1e-12);
  assert.ok(m1.low <= m1.mean && m1.mean <= m1.high);

  // Last turn right with p = 0.5 against 0.3 at the first: the difference is clear of 0 over 600 problems.
  const gain = at('hold', 1, 'm1@t5 − m1@t1');
  assert.ok(gain.low > 0, `${gain.low}`);
  // Against the reference arm at the same seed (the only pairing on the same problems).
  const vsRise = at('hold', 1, 'm1@t5 − rise');
  assert.deepEqual(vsRise.seeds, [1, 2, 3]);
  assert.ok(vsRise.mean > 0.1 && vsRise.low > 0);
  assert.equal(points.find((p) => p.arm === 'rise' && p.quantity === 'm1@t5 − rise'), undefined);
});

test('one run without seeds: the arm at its own seed, no standard deviation, still an interval', () => {
  const points = replicatePoints([evaluated('base', 0, 7, [0.3, 0.3, 0.3, 0.3, 0.3])], ['base'], 'expected', () => 7);
  const m1 = points.find((p) => p.quantity === 'm1@t1')!;
  assert.deepEqual([m1.arm, m1.seeds, m1.sd], ['base', [7], null]);
  assert.ok(m1.high > m1.low);
});
