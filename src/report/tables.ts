/**
 * The report's tables as plain rows of text, built once and rendered by both markdown.ts and html.ts,
 * so the two formats always show the same numbers. Accuracies are percentages with one decimal; a
 * point not (yet) measured shows as a dash.
 */

import { HEADLINE_METRICS, isVoted } from '../rise/metrics.ts';
import { shortKey } from '../steps/index.ts';
import { declaredArm } from '../spec/seeds.ts';
import { iterationLabel, iterationsOf, pointsAt, type MetricPoint, type RunReport } from './data.ts';
import type { ReplicatePoint } from './replicates.ts';
import { WITHIN_MODEL, againstArm, againstBoosted } from './differences.ts';
import { ALL_SERIES, VOTED_SERIES, maxK } from './series.ts';

export interface Column {
  name: string;
  numeric?: boolean;
}

export interface Table {
  title: string;
  columns: Column[];
  rows: string[][];
}

export const MISSING = '–';

export const percent = (value: number | undefined) => (value === undefined ? MISSING : (100 * value).toFixed(1));
const number = (value: number | null, digits: number) => (value === null ? MISSING : value.toFixed(digits));

/** Rows of every (arm, iteration) with metrics on the set, in arm order. */
function modelsOn(report: RunReport, evalSet: string): { arm: string; iteration: number; points: Map<string, MetricPoint> }[] {
  return report.arms.flatMap((arm) =>
    iterationsOf(report, arm)
      .map((iteration) => ({ arm, iteration, points: pointsAt(report, arm, iteration, evalSet) }))
      .filter((m) => m.points.size > 0),
  );
}

const count = (value: number | null | undefined) => (value === null || value === undefined ? MISSING : String(value));

/** Per eval set: the headline metrics of every arm and iteration, each vote followed by its tied problems. */
export function headlineTables(report: RunReport): Table[] {
  const columns = HEADLINE_METRICS.flatMap((name) => [
    { name: `${name} (%)`, numeric: true, metric: name, ties: false },
    ...(isVoted(name) ? [{ name: `${name} ties`, numeric: true, metric: name, ties: true }] : []),
  ]);
  return report.evalSets.map((evalSet) => ({
    title: evalSet,
    columns: [{ name: 'arm' }, { name: 'model' }, ...columns.map(({ name, numeric }) => ({ name, numeric }))],
    rows: modelsOn(report, evalSet).map(({ arm, iteration, points }) => [
      arm,
      iterationLabel(iteration),
      ...columns.map((c) => (c.ties ? count(points.get(c.metric)?.ties) : percent(points.get(c.metric)?.value))),
    ]),
  }));
}

/** Per eval set: right/wrong between consecutive turns of every arm and iteration (no oracle). */
export function transitionTables(report: RunReport): Table[] {
  return report.evalSets.map((evalSet) => ({
    title: evalSet,
    columns: [
      { name: 'arm' },
      { name: 'model' },
      { name: 'turns' },
      { name: 'right → right', numeric: true },
      { name: 'right → wrong', numeric: true },
      { name: 'wrong → right', numeric: true },
      { name: 'wrong → wrong', numeric: true },
      { name: 'net', numeric: true },
    ],
    rows: report.transitions
      .filter((t) => t.evalSet === evalSet)
      .map((t) => [
        t.arm,
        iterationLabel(t.iteration),
        `${t.turn} → ${t.turn + 1}`,
        String(t.rightToRight),
        String(t.rightToWrong),
        String(t.wrongToRight),
        String(t.wrongToWrong),
        signed(t.wrongToRight - t.rightToWrong),
      ]),
  }));
}

const signed = (n: number) => (n > 0 ? `+${n}` : String(n));

/** The half-width of a 95% normal interval, in standard errors. */
export const Z95 = 1.96;

/** Percentage points with the half-width of the 95% interval: "+4.2 ± 3.1". */
const interval = (difference: number, se: number) => {
  // Rounded first, so that float noise around 0 cannot print as -0.0.
  const pp = Math.round(1000 * difference) / 10;
  return `${pp > 0 ? '+' : ''}${pp.toFixed(1)} ± ${(100 * Z95 * se).toFixed(1)}`;
};

/**
 * Per eval set: the paired differences of every arm and iteration (differences.ts), in percentage points;
 * with several arms, a second table against the first arm.
 */
/** The comparisons of one model (within it, against its boosted model) and, with several arms, against the first arm. */
function comparisonNames(report: RunReport): { within: string[]; across: string[]; reference: string } {
  const reference = declaredArm(report.arms[0] ?? '');
  const declared = new Set(report.arms.map(declaredArm));
  return {
    within: [...WITHIN_MODEL.map(([a, b]) => `${a} − ${b}`), ...HEADLINE_METRICS.map(againstBoosted)],
    across: declared.size > 1 ? HEADLINE_METRICS.map((m) => againstArm(m, reference)) : [],
    reference,
  };
}

export function differenceTables(report: RunReport): Table[] {
  const { within, across, reference } = comparisonNames(report);
  return report.evalSets.flatMap((evalSet) => [
    differenceTable(report, evalSet, evalSet, within),
    ...(across.length > 0 ? [differenceTable(report, evalSet, `${evalSet}, against ${reference}`, across)] : []),
  ]);
}

function differenceTable(report: RunReport, evalSet: string, title: string, comparisons: readonly string[]): Table {
  const points = report.differences.filter((d) => d.evalSet === evalSet && comparisons.includes(d.comparison));
  const models = [...new Map(points.map((d) => [`${d.arm}\n${d.iteration}`, { arm: d.arm, iteration: d.iteration }])).values()];
  return {
    title,
    columns: [{ name: 'arm' }, { name: 'model' }, ...comparisons.map((name) => ({ name, numeric: true }))],
    rows: models.map(({ arm, iteration }) => [
      arm,
      iterationLabel(iteration),
      ...comparisons.map((c) => {
        const d = points.find((p) => p.arm === arm && p.iteration === iteration && p.comparison === c);
        return d === undefined ? MISSING : interval(d.difference, d.se);
      }),
    ]),
  };
}

/** "mean ± sd [low, high]" in percent (points for a comparison); no sd with one seed. */
function overSeeds(p: ReplicatePoint | undefined): string {
  if (p === undefined) return MISSING;
  const pct = (x: number) => (100 * x).toFixed(1);
  return `${pct(p.mean)}${p.sd === null ? '' : ` ± ${pct(p.sd)}`} [${pct(p.low)}, ${pct(p.high)}]`;
}

function replicateTable(report: RunReport, evalSet: string, title: string, quantities: readonly string[]): Table {
  const points = report.replicates.filter((p) => p.evalSet === evalSet && quantities.includes(p.quantity));
  const models = [...new Map(points.map((p) => [`${p.arm}\n${p.iteration}`, { arm: p.arm, iteration: p.iteration }])).values()];
  return {
    title,
    columns: [{ name: 'arm' }, { name: 'model' }, { name: 'seeds' }, ...quantities.map((name) => ({ name, numeric: true }))],
    rows: models.map(({ arm, iteration }) => {
      const at = points.filter((p) => p.arm === arm && p.iteration === iteration);
      return [arm, iterationLabel(iteration), String(Math.max(...at.map((p) => p.seeds.length))), ...quantities.map((q) => overSeeds(at.find((p) => p.quantity === q)))];
    }),
  };
}

/**
 * Per eval set: every headline metric of each declared arm over its seeds, then the comparisons (within a
 * model, against the boosted model, against the first arm), each as mean ± sd across seeds [95% bootstrap
 * interval over problems].
 */
export function replicateTables(report: RunReport): Table[] {
  const { within, across, reference } = comparisonNames(report);
  return report.evalSets.flatMap((evalSet) => [
    replicateTable(report, evalSet, `${evalSet}: headline metrics (%)`, HEADLINE_METRICS),
    replicateTable(report, evalSet, `${evalSet}: differences (points)`, within),
    ...(across.length > 0 ? [replicateTable(report, evalSet, `${evalSet}: against ${reference} (points)`, across)] : []),
  ]);
}

/** Per eval set: each series (m1@tk, p1@tk, mk@t1) at every k, for every arm and iteration. */
export function seriesTables(report: RunReport): Table[] {
  return report.evalSets.map((evalSet) => {
    const models = modelsOn(report, evalSet);
    const k = Math.max(0, ...models.map((m) => maxK(m.points.values())));
    const ks = Array.from({ length: k }, (_, i) => i + 1);
    return {
      title: evalSet,
      columns: [{ name: 'arm' }, { name: 'model' }, { name: 'series' }, ...ks.map((i) => ({ name: `k=${i}`, numeric: true }))],
      rows: models.flatMap(({ arm, iteration, points }) => [
        ...ALL_SERIES.map((series) => [arm, iterationLabel(iteration), series.label, ...ks.map((i) => percent(points.get(series.metric(i))?.value))]),
        ...VOTED_SERIES.map((series) => [arm, iterationLabel(iteration), `${series.label} ties`, ...ks.map((i) => count(points.get(series.metric(i))?.ties))]),
      ]),
    };
  });
}

export function trainingTable(report: RunReport): Table {
  return {
    title: 'Training',
    columns: [
      { name: 'step' },
      { name: 'kind' },
      { name: 'model' },
      { name: 'arms' },
      { name: 'optimizer steps', numeric: true },
      { name: 'first loss', numeric: true },
      { name: 'last loss', numeric: true },
      { name: 'min loss', numeric: true },
    ],
    rows: report.training.map((c) => [
      shortKey(c.key),
      c.kind,
      c.kind === 'boost' ? `boost ${[...new Set(c.uses.map((u) => u.model))].join(' / ')}` : iterationLabel(c.iteration),
      c.uses.map((u) => u.arm).join(', '),
      String(c.steps),
      number(c.firstLoss, 4),
      number(c.lastLoss, 4),
      number(c.losses.length === 0 ? null : Math.min(...c.losses), 4),
    ]),
  };
}

/** Every step of the plan once (shared steps list all their arms), then seconds summed per kind. */
export function timingTables(report: RunReport): Table[] {
  const steps: Table = {
    title: 'Steps',
    columns: [
      { name: 'step' },
      { name: 'kind' },
      { name: 'iteration', numeric: true },
      { name: 'model / eval set' },
      { name: 'arms' },
      { name: 'status' },
      { name: 'attempts', numeric: true },
      { name: 'seconds', numeric: true },
    ],
    rows: report.steps.map((s) => [shortKey(s.key), s.kind, String(s.iteration), s.label, s.arms.join(', '), s.status, String(s.attempts), number(s.seconds, 1)]),
  };
  const kinds = [...new Set(report.steps.map((s) => s.kind))];
  const totals: Table = {
    title: 'Seconds per kind',
    columns: [{ name: 'kind' }, { name: 'done', numeric: true }, { name: 'of', numeric: true }, { name: 'seconds', numeric: true }],
    rows: kinds.map((kind) => {
      const of = report.steps.filter((s) => s.kind === kind);
      const done = of.filter((s) => s.seconds !== null);
      return [kind, String(done.length), String(of.length), done.reduce((sum, s) => sum + s.seconds!, 0).toFixed(1)];
    }),
  };
  return [steps, totals];
}
