/**
 * The comparisons the paper's claims rest on, as paired differences over one eval set's problems: within
 * a model, five sequential turns against one turn and against five parallel samples at equal compute;
 * across iterations, each headline metric of a trained model against its arm's boosted model; across
 * arms (ablations), each headline metric against the first arm's model of the same iteration (and seed). Pairing
 * cancels the variation between problems that both sides share, so these intervals are narrower, and
 * more honest, than comparing two values each with its own error bar.
 */

import { HEADLINE_METRICS, pairedDifference, problemCredits, type EvalRecord, type TieBreak, type VoteWeighting } from '../rise/metrics.ts';
import { declaredArm, replicaName, replicaOf } from '../spec/seeds.ts';

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
  /** The vote weighting the report reads the answers under. */
  vote: VoteWeighting;
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

/** One comparison at one (arm, iteration, eval set), as the per-problem credits of its two sides. */
export interface Comparison {
  arm: string;
  iteration: number;
  evalSet: string;
  comparison: string;
  later: ReadonlyMap<string, number>;
  earlier: ReadonlyMap<string, number>;
}

/**
 * Every comparison the evaluations allow. `arms[0]` is the reference of the across-arm comparisons; a
 * replicate (seeds.ts) is compared with the reference arm's replicate at its own seed, the only one that
 * saw the same problems.
 */
export function comparisons(evaluated: readonly Evaluated[], arms: readonly string[], tieBreak: TieBreak): Comparison[] {
  const credits = (e: Evaluated, metric: string) => problemCredits(e.records, metric, { tieBreak, seed: e.seed, vote: e.vote });
  const has = (e: Evaluated, metric: string) => e.metrics.has(metric);
  const reference = arms[0] === undefined ? undefined : declaredArm(arms[0]);
  const referenceOf = (arm: string) => {
    const replica = replicaOf(arm);
    return replica === null ? arms[0] : replicaName(reference!, replica.seed);
  };
  const out: Comparison[] = [];
  for (const e of evaluated) {
    const place = { arm: e.arm, iteration: e.iteration, evalSet: e.evalSet };
    for (const [later, earlier] of WITHIN_MODEL) {
      if (has(e, later) && has(e, earlier)) out.push({ ...place, comparison: `${later} − ${earlier}`, later: credits(e, later), earlier: credits(e, earlier) });
    }
    if (e.iteration === 0) continue;
    const against = (other: Evaluated | undefined, comparison: (metric: string) => string) => {
      if (other === undefined) return;
      for (const metric of HEADLINE_METRICS) {
        if (has(e, metric) && has(other, metric)) out.push({ ...place, comparison: comparison(metric), later: credits(e, metric), earlier: credits(other, metric) });
      }
    };
    against(evaluated.find((b) => b.arm === e.arm && b.evalSet === e.evalSet && b.iteration === 0), againstBoosted);
    if (reference !== undefined && declaredArm(e.arm) !== reference) {
      const other = referenceOf(e.arm);
      against(evaluated.find((r) => r.arm === other && r.evalSet === e.evalSet && r.iteration === e.iteration), (metric) => againstArm(metric, reference));
    }
  }
  return out;
}

export function pairedDifferences(evaluated: readonly Evaluated[], arms: readonly string[], tieBreak: TieBreak): DifferencePoint[] {
  return comparisons(evaluated, arms, tieBreak).map(({ later, earlier, ...point }) => ({ ...point, ...pairedDifference(later, earlier) }));
}
