import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { currentCompute } from '../../src/plan/compute.ts';
import { planExperiment } from '../../src/plan/plan.ts';
import { compareRuns, comparisonTable, seedsTable, type ComparedRun } from '../../src/report/compare.ts';
import type { MetricPoint } from '../../src/report/data.ts';
import type { Evaluated } from '../../src/report/differences.ts';
import { validateSpec } from '../../src/spec/validate.ts';
import { evaluationsOf, recordRun, SPEC_FILE, tempStore } from './fixture.ts';

/** One model's m1@t1 answers on eval set "e": one problem per credit, named `ids[i]`. */
function evaluated(arm: string, credits: number[], ids = credits.map((_, i) => `p${i}`)): Evaluated {
  const records = credits.map((c, i) => {
    const a = { answer: c === 1 ? '7' : '3', correct: c === 1 };
    return { problemId: ids[i], parallel: [a], sequential: [a] };
  });
  return { arm, iteration: 0, evalSet: 'e', records, seed: 0, vote: 'uniform', metrics: new Set(['m1@t1']) };
}

function run(id: string, models: Evaluated[]): ComparedRun {
  const metrics = models.map((e): MetricPoint => {
    const correct = e.records.filter((r) => r.sequential[0].correct).length;
    return { arm: e.arm, iteration: 0, evalSet: 'e', name: 'm1@t1', k: 1, value: correct / e.records.length, correct, problems: e.records.length, ties: 0, byRule: null };
  });
  return { id, arms: [...new Set(models.map((e) => e.arm))], evalSets: ['e'], tieBreak: 'expected', vote: 'uniform', metrics, transitions: [], differences: [], replicates: [], evaluated: models };
}

const close = (actual: number, expected: number, what: string) => assert.ok(Math.abs(actual - expected) < 1e-4, `${what}: ${actual}, expected ${expected}`);

test('compare pairs the differences of runs over the same problems, and falls back to independent means over different ones', () => {
  const first = run('a', [evaluated('rise', [1, 0, 0, 1]), evaluated('other', [1, 0, 0, 1])]);
  // rise: the same problems; other: four problems the first run never saw.
  const later = run('b', [evaluated('rise', [1, 1, 0, 1]), evaluated('other', [1, 1, 0, 1], ['q0', 'q1', 'q2', 'q3'])]);
  const c = compareRuns([first, later], ['m1@t1']);
  const at = (arm: string) => c.points.find((p) => p.arm === arm)!.differences[0]!;

  // Paired: per-problem differences 0, 1, 0, 0 → mean 0.25, sample sd 0.5, se 0.5/√4 = 0.25; ± 1.96 · 0.25.
  const paired = at('rise');
  assert.equal(paired.pairing, 'paired');
  close(paired.difference, 0.25, 'paired difference');
  close(paired.low, 0.25 - 1.959964 * 0.25, 'paired low');
  close(paired.high, 0.25 + 1.959964 * 0.25, 'paired high');

  // Unpaired: 0.75 (se 0.5/2 = 0.25) − 0.5 (sd √(1/3), se 0.2887) → se √(0.0625 + 0.08333) = 0.38188.
  const unpaired = at('other');
  assert.equal(unpaired.pairing, 'unpaired');
  close(unpaired.difference, 0.25, 'unpaired difference');
  close(unpaired.low, 0.25 - 1.959964 * 0.381881, 'unpaired low');
  close(unpaired.high, 0.25 + 1.959964 * 0.381881, 'unpaired high');
  assert.ok(unpaired.high - unpaired.low > paired.high - paired.low, 'pairing narrows the interval');

  const table = comparisonTable(c);
  assert.deepEqual(table.columns.map((col) => col.name).slice(4), ['a', 'b', 'Δ b − a', '95% interval b − a', 'ties a', 'ties b']);
  assert.deepEqual(table.rows.map((r) => r.slice(6, 8)), [
    ['+25.0', '[-24.0, +74.0] paired'],
    ['+25.0', '[-49.8, +99.8] unpaired'],
  ]);
  assert.deepEqual(c.seeds, [], 'no replicates, no seed summary');
});

test('compare summarises replicated arms over the seeds both runs have, pairing replicates at the same seed', () => {
  // Seed 1: the later run fixes both problems (differences 1, 1); seed 2: nothing changes (0, 0); seed 3: first run only.
  const first = run('a', [evaluated('rise@seed1', [0, 0]), evaluated('rise@seed2', [1, 0]), evaluated('rise@seed3', [0, 0])]);
  const later = run('b', [evaluated('rise@seed1', [1, 1]), evaluated('rise@seed2', [1, 0])]);
  const c = compareRuns([first, later], ['m1@t1']);
  assert.deepEqual(c.points.map((p) => p.arm), ['rise@seed1', 'rise@seed2'], 'each replicate is also a point of its own');
  assert.equal(c.seeds.length, 1);
  const [d] = c.seeds;
  assert.deepEqual([d.arm, d.iteration, d.evalSet, d.metric, d.run, d.seeds, d.values], ['rise', 0, 'e', 'm1@t1', 'b', [1, 2], [1, 0]]);
  // Mean of 1 and 0; sd √(((1 − 0.5)² + (0 − 0.5)²) / 1) = √0.5; every bootstrap round sees seed 1 at 1 and seed 2 at 0.
  assert.equal(d.mean, 0.5);
  close(d.sd!, Math.SQRT1_2, 'sd across seeds');
  assert.deepEqual([d.low, d.high], [0.5, 0.5]);
  assert.deepEqual(seedsTable(c).rows, [['rise', 'boosted', 'e', 'm1@t1', 'b', '1, 2', '+50.0', '70.7', '[+50.0, +50.0]']]);
});

test('compare refuses runs read under different vote weightings', () => {
  const first = run('a', [evaluated('rise', [1])]);
  assert.throws(() => compareRuns([first, { ...run('b', [evaluated('rise', [1])]), vote: 'recency' }]), /different vote weightings \(uniform, recency\)/);
});

test('compare on recorded runs with seeds: replicates paired by seed, the shared boosted model differs by nothing', async (t) => {
  // The ablations spec with one arm replicated at two seeds (which replace its one seed), one iteration.
  const { seed: _, ...json } = JSON.parse(fs.readFileSync(SPEC_FILE, 'utf8')) as Record<string, unknown>;
  const spec = (lr: number) => validateSpec({ ...json, iterations: 1, seeds: [1, 2], train: { ...(json.train as object), lr }, arms: { rise: {} } });
  const store = await tempStore(t);
  for (const [runId, lr] of [['run-a', 0.001], ['run-b', 0.002]] as const) {
    const s = spec(lr);
    await recordRun(store, s, planExperiment(s, { compute: currentCompute() }), { runId, skill: runId === 'run-b' ? 0.1 : 0 });
  }
  const runs = await evaluationsOf(store, ['run-a', 'run-b']);
  const c = compareRuns(runs, ['m1@t1', 'm1@t5']);
  assert.deepEqual(
    c.seeds.map((d) => [d.arm, d.iteration, d.evalSet, d.metric, d.seeds]),
    [0, 1].flatMap((iteration) => ['in-dist', 'ood'].flatMap((set) => ['m1@t1', 'm1@t5'].map((metric) => ['rise', iteration, set, metric, [1, 2]]))),
  );
  for (const d of c.seeds) {
    // Each seed's value is the paired difference of its replicates, as the per-point rows give it.
    const perSeed = d.seeds.map((seed) => c.points.find((p) => p.arm === `rise@seed${seed}` && p.iteration === d.iteration && p.evalSet === d.evalSet && p.metric === d.metric)!.differences[0]!);
    assert.ok(perSeed.every((p) => p.pairing === 'paired'));
    assert.deepEqual(d.values, perSeed.map((p) => p.difference));
    if (d.iteration === 0) assert.deepEqual([d.mean, d.sd, d.low, d.high], [0, 0, 0, 0], 'both runs evaluated the one boosted model');
    else assert.ok(d.low <= d.mean && d.mean <= d.high && d.sd !== null);
  }
  assert.ok(c.seeds.some((d) => d.iteration === 1 && d.mean !== 0), 'the runs trained different models');
});
