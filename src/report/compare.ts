/**
 * `rise compare`: several runs side by side at the points they share — the same arm name, iteration,
 * eval set and metric — with each later run's difference from the first in percentage points. A
 * point that only one run measured compares with nothing, so it is counted rather than listed.
 */

import { iterationLabel, type RunMetrics } from './data.ts';
import type { TieBreak } from '../rise/metrics.ts';
import { MISSING, percent, type Table } from './tables.ts';

export interface ComparedRun extends RunMetrics {
  id: string;
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
}

export interface Comparison {
  runs: string[];
  /** The tie rule of every run's values (each run's metrics are recomputed under it). */
  tieBreak: TieBreak;
  points: ComparisonPoint[];
  /** Points measured by one run only. */
  unmatched: number;
}

/** First-appearance order across the runs: arms and eval sets in the order of the first run's spec. */
function rank(values: Iterable<string>): Map<string, number> {
  const order = new Map<string, number>();
  for (const v of values) if (!order.has(v)) order.set(v, order.size);
  return order;
}

/**
 * `metrics` limits the comparison to those names, in that order; all metrics otherwise. The runs' metrics
 * must be under one tie rule (`readRunMetrics` with the same rule), or the differences would mix rules.
 */
export function compareRuns(runs: readonly ComparedRun[], metrics?: readonly string[]): Comparison {
  const rules = [...new Set(runs.map((run) => run.tieBreak))];
  if (rules.length !== 1) throw new Error(`runs compared under different tie rules (${rules.join(', ')}): recompute them under one`);
  const wanted = metrics === undefined ? undefined : new Set(metrics);
  const all = runs.flatMap((run, r) => run.metrics.filter((m) => wanted?.has(m.name) ?? true).map((m) => ({ r, m })));
  const points = new Map<string, ComparisonPoint>();
  for (const { r, m } of all) {
    const id = JSON.stringify([m.arm, m.iteration, m.evalSet, m.name]);
    let point = points.get(id);
    if (!point) {
      point = { arm: m.arm, iteration: m.iteration, evalSet: m.evalSet, metric: m.name, values: runs.map(() => null), ties: runs.map(() => null) };
      points.set(id, point);
    }
    point.values[r] = m.value;
    point.ties[r] = m.ties;
  }

  const arms = rank(runs.flatMap((run) => run.arms));
  const sets = rank(runs.flatMap((run) => run.evalSets));
  const names = rank(metrics ?? all.map(({ m }) => m.name));
  const matched = [...points.values()].filter((p) => p.values.filter((v) => v !== null).length >= 2);
  matched.sort(
    (a, b) =>
      arms.get(a.arm)! - arms.get(b.arm)! ||
      a.iteration - b.iteration ||
      sets.get(a.evalSet)! - sets.get(b.evalSet)! ||
      names.get(a.metric)! - names.get(b.metric)!,
  );
  return { runs: runs.map((run) => run.id), tieBreak: rules[0], points: matched, unmatched: points.size - matched.length };
}

const delta = (value: number | null, first: number | null) => {
  if (value === null || first === null) return MISSING;
  // Rounded first, so that float noise around 0 cannot print as -0.0.
  const pp = Math.round(1000 * (value - first)) / 10;
  return `${pp > 0 ? '+' : ''}${pp.toFixed(1)}`;
};

export function comparisonTable(comparison: Comparison): Table {
  const [first, ...later] = comparison.runs;
  return {
    title: `Runs side by side (%; Δ in percentage points; majority-vote ties: ${comparison.tieBreak})`,
    columns: [
      { name: 'arm' },
      { name: 'model' },
      { name: 'eval set' },
      { name: 'metric' },
      ...comparison.runs.map((id) => ({ name: id, numeric: true })),
      ...later.map((id) => ({ name: `Δ ${id} − ${first}`, numeric: true })),
      ...comparison.runs.map((id) => ({ name: `ties ${id}`, numeric: true })),
    ],
    rows: comparison.points.map((p) => [
      p.arm,
      iterationLabel(p.iteration),
      p.evalSet,
      p.metric,
      ...p.values.map((v) => percent(v ?? undefined)),
      ...p.values.slice(1).map((v) => delta(v, p.values[0])),
      ...p.ties.map((t) => (t === null ? MISSING : String(t))),
    ]),
  };
}
