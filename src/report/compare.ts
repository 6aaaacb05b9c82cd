/**
 * `rise compare`: several runs side by side at the points they share — the same arm name, iteration,
 * eval set and metric — with each later run's difference from the first in percentage points and its 95%
 * interval. A point that only one run measured compares with nothing, so it is counted rather than listed.
 *
 * Where both runs evaluated the same problems (the same problem ids: a generated set's ids hash the knobs
 * that generate it), the difference is paired over problems, which cancels the variation between problems
 * that both runs share; where they did not, it is the difference of two independent means, each with its
 * standard error over its own problems. Either interval is the normal one, difference ± 1.96 standard
 * errors. Replicated arms (`<arm>@seed<s>`, seeds.ts) are also compared as declared arms: the replicates
 * at each seed both runs have are paired, and the mean over seeds of the paired difference is given ± its
 * standard deviation across seeds, with the report's bootstrap interval over problems (replicates.ts).
 */

import { iterationLabel, type RunMetrics } from './data.ts';
import type { Evaluated } from './differences.ts';
import { bootstrapInterval, BOOTSTRAP_ROUNDS } from './replicates.ts';
import { pairedDifference, problemCredits, sameProblems, unpairedDifference, type TieBreak, type VoteWeighting } from '../rise/metrics.ts';
import { replicaName, replicaOf } from '../spec/seeds.ts';
import { MISSING, percent, type Table } from './tables.ts';

/** A run's metrics with the answers behind them (`readRunEvaluations`), so differences can be paired. */
export interface ComparedRun extends RunMetrics {
  id: string;
  evaluated: readonly Evaluated[];
}

/** z of a two-sided 95% normal interval. */
const Z95 = 1.959964;

/** A later run's difference from the first at one point; fractions. */
export interface DifferenceInterval {
  difference: number;
  /** difference ± 1.96 standard errors. */
  low: number;
  high: number;
  /** `paired` over the same problems, or `unpaired`: independent means over different problems. */
  pairing: 'paired' | 'unpaired';
}

export interface ComparisonPoint {
  arm: string;
  iteration: number;
  evalSet: string;
  metric: string;
  /** By run, in the order the runs were given; null where that run lacks the point. */
  values: (number | null)[];
  /** Tied problems by run (0 for metrics that do not vote); null where that run lacks the point or the count. */
  ties: (number | null)[];
  /** By later run (runs[1…]): its difference from the first run; null where either lacks the point or its answers. */
  differences: (DifferenceInterval | null)[];
}

/** A declared arm's difference between two runs over the seeds both replicated it at, pairing replicates by seed. */
export interface SeedsDifference {
  /** The declared arm. */
  arm: string;
  iteration: number;
  evalSet: string;
  metric: string;
  /** The later run compared with the first. */
  run: string;
  /** Seeds both runs have, with the same problems; in the first run's order. */
  seeds: number[];
  /** Per seed: the paired difference, later − first. */
  values: number[];
  mean: number;
  /** Sample standard deviation across seeds; null with one seed. */
  sd: number | null;
  /** 95% bootstrap interval over problems of `mean` (per-problem differences resampled within each seed). */
  low: number;
  high: number;
}

export interface Comparison {
  runs: string[];
  /** The tie rule of every run's values (each run's metrics are recomputed under it). */
  tieBreak: TieBreak;
  vote: VoteWeighting;
  points: ComparisonPoint[];
  /** Declared arms with replicates in both the first and a later run. */
  seeds: SeedsDifference[];
  /** Points measured by one run only. */
  unmatched: number;
}

/** First-appearance order across the runs: arms and eval sets in the order of the first run's spec. */
function rank(values: Iterable<string>): Map<string, number> {
  const order = new Map<string, number>();
  for (const v of values) if (!order.has(v)) order.set(v, order.size);
  return order;
}

/** Each run's per-problem credits on `metric` at one (arm, iteration, eval set), or null where it lacks them. */
function creditsAt(run: ComparedRun, arm: string, iteration: number, evalSet: string, metric: string): Map<string, number> | null {
  const e = run.evaluated.find((x) => x.arm === arm && x.iteration === iteration && x.evalSet === evalSet);
  return e === undefined || !e.metrics.has(metric) ? null : problemCredits(e.records, metric, { tieBreak: run.tieBreak, seed: e.seed, vote: e.vote });
}

function interval(later: Map<string, number> | null, first: Map<string, number> | null): DifferenceInterval | null {
  if (later === null || first === null) return null;
  const paired = sameProblems(later, first);
  const { difference, se } = paired ? pairedDifference(later, first) : unpairedDifference(later, first);
  return { difference, low: difference - Z95 * se, high: difference + Z95 * se, pairing: paired ? 'paired' : 'unpaired' };
}

const mean = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

/** Every declared arm replicated in both runs, at each (iteration, eval set, metric) both have at a shared seed. */
function seedsDifferences(first: ComparedRun, later: ComparedRun, metrics: readonly string[]): SeedsDifference[] {
  const out: SeedsDifference[] = [];
  const places = new Map<string, { arm: string; iteration: number; evalSet: string; seeds: number[] }>();
  for (const e of first.evaluated) {
    const replica = replicaOf(e.arm);
    if (replica === null) continue;
    const id = JSON.stringify([replica.arm, e.iteration, e.evalSet]);
    const place = places.get(id) ?? { arm: replica.arm, iteration: e.iteration, evalSet: e.evalSet, seeds: [] };
    place.seeds.push(replica.seed);
    places.set(id, place);
  }
  for (const { arm, iteration, evalSet, seeds } of places.values()) {
    for (const metric of metrics) {
      const groups: { seed: number; differences: number[] }[] = [];
      for (const seed of seeds) {
        const [a, b] = [creditsAt(later, replicaName(arm, seed), iteration, evalSet, metric), creditsAt(first, replicaName(arm, seed), iteration, evalSet, metric)];
        if (a !== null && b !== null && sameProblems(a, b)) groups.push({ seed, differences: [...a].map(([id, x]) => x - b.get(id)!) });
      }
      if (groups.length === 0) continue;
      const values = groups.map((g) => mean(g.differences));
      const m = mean(values);
      out.push({
        arm,
        iteration,
        evalSet,
        metric,
        run: later.id,
        seeds: groups.map((g) => g.seed),
        values,
        mean: m,
        sd: values.length < 2 ? null : Math.sqrt(values.reduce((s, x) => s + (x - m) ** 2, 0) / (values.length - 1)),
        ...bootstrapInterval(
          groups.map((g) => g.differences),
          BOOTSTRAP_ROUNDS,
          JSON.stringify([later.id, first.id, arm, iteration, evalSet, metric]),
        ),
      });
    }
  }
  return out;
}

/**
 * `metrics` limits the comparison to those names, in that order; all metrics otherwise. The runs' metrics
 * must be under one tie rule and vote weighting (`readRunEvaluations` with the same ones), or the
 * differences would mix them.
 */
export function compareRuns(runs: readonly ComparedRun[], metrics?: readonly string[]): Comparison {
  const rules = [...new Set(runs.map((run) => run.tieBreak))];
  if (rules.length !== 1) throw new Error(`runs compared under different tie rules (${rules.join(', ')}): recompute them under one`);
  const votes = [...new Set(runs.map((run) => run.vote))];
  if (votes.length !== 1) throw new Error(`runs compared under different vote weightings (${votes.join(', ')}): recompute them under one`);
  const wanted = metrics === undefined ? undefined : new Set(metrics);
  const all = runs.flatMap((run, r) => run.metrics.filter((m) => wanted?.has(m.name) ?? true).map((m) => ({ r, m })));
  const points = new Map<string, ComparisonPoint>();
  for (const { r, m } of all) {
    const id = JSON.stringify([m.arm, m.iteration, m.evalSet, m.name]);
    let point = points.get(id);
    if (!point) {
      point = { arm: m.arm, iteration: m.iteration, evalSet: m.evalSet, metric: m.name, values: runs.map(() => null), ties: runs.map(() => null), differences: [] };
      points.set(id, point);
    }
    point.values[r] = m.value;
    point.ties[r] = m.ties;
  }

  const arms = rank(runs.flatMap((run) => run.arms));
  const sets = rank(runs.flatMap((run) => run.evalSets));
  const names = rank(metrics ?? all.map(({ m }) => m.name));
  const matched = [...points.values()].filter((p) => p.values.filter((v) => v !== null).length >= 2);
  for (const p of matched) {
    const first = creditsAt(runs[0], p.arm, p.iteration, p.evalSet, p.metric);
    p.differences = runs.slice(1).map((run) => interval(creditsAt(run, p.arm, p.iteration, p.evalSet, p.metric), first));
  }
  matched.sort(
    (a, b) =>
      arms.get(a.arm)! - arms.get(b.arm)! ||
      a.iteration - b.iteration ||
      sets.get(a.evalSet)! - sets.get(b.evalSet)! ||
      names.get(a.metric)! - names.get(b.metric)!,
  );
  const seeds = runs.slice(1).flatMap((run) => seedsDifferences(runs[0], run, [...names.keys()]));
  return { runs: runs.map((run) => run.id), tieBreak: rules[0], vote: votes[0], points: matched, seeds, unmatched: points.size - matched.length };
}

/** A fraction as signed percentage points. */
const points = (x: number) => {
  // Rounded first, so that float noise around 0 cannot print as -0.0.
  const pp = Math.round(1000 * x) / 10;
  return `${pp > 0 ? '+' : ''}${pp.toFixed(1)}`;
};

const delta = (value: number | null, first: number | null) => (value === null || first === null ? MISSING : points(value - first));

const range = (low: number, high: number) => `[${points(low)}, ${points(high)}]`;

export function comparisonTable(comparison: Comparison): Table {
  const [first, ...later] = comparison.runs;
  return {
    title: `Runs side by side (%; Δ and its 95% interval in percentage points, paired over the same problems or unpaired; majority-vote ties: ${comparison.tieBreak}; votes weighed: ${comparison.vote})`,
    columns: [
      { name: 'arm' },
      { name: 'model' },
      { name: 'eval set' },
      { name: 'metric' },
      ...comparison.runs.map((id) => ({ name: id, numeric: true })),
      ...later.map((id) => ({ name: `Δ ${id} − ${first}`, numeric: true })),
      ...later.map((id) => ({ name: `95% interval ${id} − ${first}` })),
      ...comparison.runs.map((id) => ({ name: `ties ${id}`, numeric: true })),
    ],
    rows: comparison.points.map((p) => [
      p.arm,
      iterationLabel(p.iteration),
      p.evalSet,
      p.metric,
      ...p.values.map((v) => percent(v ?? undefined)),
      ...p.values.slice(1).map((v) => delta(v, p.values[0])),
      ...p.differences.map((d) => (d === null ? MISSING : `${range(d.low, d.high)} ${d.pairing}`)),
      ...p.ties.map((t) => (t === null ? MISSING : String(t))),
    ]),
  };
}

/** Declared arms over the seeds both runs replicated them at (empty where no run has replicates). */
export function seedsTable(comparison: Comparison): Table {
  return {
    title: `Declared arms over seeds (Δ later − ${comparison.runs[0]} in percentage points: mean over seeds of the paired difference ± sd across seeds, 95% bootstrap interval over problems)`,
    columns: [{ name: 'arm' }, { name: 'model' }, { name: 'eval set' }, { name: 'metric' }, { name: 'run' }, { name: 'seeds' }, { name: 'Δ mean', numeric: true }, { name: 'sd', numeric: true }, { name: '95% interval' }],
    rows: comparison.seeds.map((d) => [
      d.arm,
      iterationLabel(d.iteration),
      d.evalSet,
      d.metric,
      d.run,
      d.seeds.join(', '),
      points(d.mean),
      d.sd === null ? MISSING : (100 * d.sd).toFixed(1),
      range(d.low, d.high),
    ]),
  };
}
