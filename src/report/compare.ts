/**
 * `rise compare`: several runs side by side at the points they share — the same arm name, iteration,
 * eval set and metric — with each later run's difference from the first in percentage points. A
 * point that only one run measured compares with nothing, so it is counted rather than listed.
 */

import { iterationLabel, type RunMetrics } from './data.ts';
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
}

export interface Comparison {
  runs: string[];
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

/** `metrics` limits the comparison to those names, in that order; all metrics otherwise. */
export function compareRuns(runs: readonly ComparedRun[], metrics?: readonly string[]): Comparison {
  const wanted = metrics === undefined ? undefined : new Set(metrics);
  const all = runs.flatMap((run, r) => run.metrics.filter((m) => wanted?.has(m.name) ?? true).map((m) => ({ r, m })));
  const points = new Map<string, ComparisonPoint>();
  for (const { r, m } of all) {
    const id = JSON.stringify([m.arm, m.iteration, m.evalSet, m.name]);
    let point = points.get(id);
    if (!point) {
      point = { arm: m.arm, iteration: m.iteration, evalSet: m.evalSet, metric: m.name, values: runs.map(() => null) };
      points.set(id, point);
    }
    point.values[r] = m.value;
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
  return { runs: runs.map((run) => run.id), points: matched, unmatched: points.size - matched.length };
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
    title: 'Runs side by side (%; Δ in percentage points)',
    columns: [
      { name: 'arm' },
      { name: 'model' },
      { name: 'eval set' },
      { name: 'metric' },
      ...comparison.runs.map((id) => ({ name: id, numeric: true })),
      ...later.map((id) => ({ name: `Δ ${id} − ${first}`, numeric: true })),
    ],
    rows: comparison.points.map((p) => [
      p.arm,
      iterationLabel(p.iteration),
      p.evalSet,
      p.metric,
      ...p.values.map((v) => percent(v ?? undefined)),
      ...p.values.slice(1).map((v) => delta(v, p.values[0])),
    ]),
  };
}
