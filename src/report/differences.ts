/**
 * The comparisons the paper's claims rest on, as paired differences over one eval set's problems: within
 * a model, five sequential turns against one turn and against five parallel samples at equal compute;
 * across iterations, each headline metric of a trained model against its arm's boosted model; across
 * arms (ablations), each headline metric against the first arm's model of the same iteration. Pairing
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

export const againstBoosted = (metric: string) => `${metric} − boosted`;
export const againstArm = (metric: string, arm: string) => `${metric} − ${arm}`;

/** `arms[0]` is the reference arm of the across-arm comparisons. */
export function pairedDifferences(evaluated: readonly Evaluated[], arms: readonly string[], tieBreak: TieBreak): DifferencePoint[] {
  const credits = (e: Evaluated, metric: string) => problemCredits(e.records, metric, { tieBreak, seed: e.seed });
  const has = (e: Evaluated, metric: string) => e.metrics.has(metric);
  const points: DifferencePoint[] = [];
  for (const e of evaluated) {
    const place = { arm: e.arm, iteration: e.iteration, evalSet: e.evalSet };
    for (const [later, earlier] of WITHIN_MODEL) {
      if (has(e, later) && has(e, earlier)) points.push({ ...place, comparison: `${later} − ${earlier}`, ...pairedDifference(credits(e, later), credits(e, earlier)) });
    }
    if (e.iteration === 0) continue;
    const against = (other: Evaluated | undefined, comparison: (metric: string) => string) => {
      if (other === undefined) return;
      for (const metric of HEADLINE_METRICS) {
        if (has(e, metric) && has(other, metric)) points.push({ ...place, comparison: comparison(metric), ...pairedDifference(credits(e, metric), credits(other, metric)) });
      }
    };
    against(evaluated.find((b) => b.arm === e.arm && b.evalSet === e.evalSet && b.iteration === 0), againstBoosted);
    const reference = arms[0];
    if (e.arm !== reference) {
      against(evaluated.find((r) => r.arm === reference && r.evalSet === e.evalSet && r.iteration === e.iteration), (metric) => againstArm(metric, reference));
    }
  }
  return points;
}
