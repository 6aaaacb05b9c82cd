/**
 * The comparisons the paper's claims rest on, as paired differences over one eval set's problems: within
 * a model, five sequential turns against one turn and against five parallel samples at equal compute;
 * across iterations, each headline metric of a trained model against its arm's boosted model. Pairing
 * cancels the variation between problems that both sides share, so these intervals are narrower, and
 * more honest, than comparing two values each with its own error bar.
 */

import { HEADLINE_METRICS, pairedDifference, problemCredits, type EvalRecord, type TieBreak } from '../rise/metrics.ts';

/** One comparison at one (arm, iteration, eval set). */
export interface DifferencePoint {
  arm: string;
  iteration: number;
  evalSet: string;
  /** As tables show it, e.g. "m1@t5 − m1@t1" or "m1@t5 − boosted". */
  comparison: string;
  /** Fractions (not percentage points). */
  difference: number;
  se: number;
  problems: number;
}

/** The answers of one model on one eval set, as the report read them from the ledger. */
export interface Evaluated {
  arm: string;
  iteration: number;
  evalSet: string;
  records: EvalRecord[];
  seed: number;
  /** The metrics its table has (m5@t1 needs five parallel samples, m1@t5 five turns). */
  metrics: ReadonlySet<string>;
}

/** Within one model: [later, earlier] metrics. */
export const WITHIN_MODEL = [
  ['m1@t5', 'm1@t1'],
  ['m1@t5', 'm5@t1'],
] as const;

/** Across iterations: each headline metric against the arm's boosted model. */
export const AGAINST_BOOSTED = HEADLINE_METRICS;

export const againstBoosted = (metric: string) => `${metric} − boosted`;

export function pairedDifferences(evaluated: readonly Evaluated[], tieBreak: TieBreak): DifferencePoint[] {
  const credits = (e: Evaluated, metric: string) => problemCredits(e.records, metric, { tieBreak, seed: e.seed });
  const has = (e: Evaluated, metric: string) => e.metrics.has(metric);
  const points: DifferencePoint[] = [];
  for (const e of evaluated) {
    const place = { arm: e.arm, iteration: e.iteration, evalSet: e.evalSet };
    for (const [later, earlier] of WITHIN_MODEL) {
      if (has(e, later) && has(e, earlier)) points.push({ ...place, comparison: `${later} − ${earlier}`, ...pairedDifference(credits(e, later), credits(e, earlier)) });
    }
    const boosted = evaluated.find((b) => b.arm === e.arm && b.evalSet === e.evalSet && b.iteration === 0);
    if (e.iteration === 0 || boosted === undefined) continue;
    for (const metric of AGAINST_BOOSTED) {
      if (has(e, metric) && has(boosted, metric)) points.push({ ...place, comparison: againstBoosted(metric), ...pairedDifference(credits(e, metric), credits(boosted, metric)) });
    }
  }
  return points;
}
