/**
 * An evaluate step's metrics, which are arithmetic over its answers in the ledger: the evaluate activity
 * writes a run's metric rows with them, and reports recompute them under any tie rule from the store
 * alone, long after the models are gone, under any tie rule and vote weighting.
 */

import { hashSeed } from '../engine/random.ts';
import { episodeRecord } from '../rise/evaluate.ts';
import { computeMetrics, DEFAULT_VOTE, TIE_BREAKS, type EvalRecord, type MetricsTable, type TieBreak, type VoteWeighting } from '../rise/metrics.ts';
import { readEpisodes, type Store } from '../store/index.ts';
import type { EvaluateParams } from './evaluate.ts';

/** One seed per set, not per model: every model is compared on the same random streams (samples and tie draws). */
export function evaluationSeed(p: Pick<EvaluateParams, 'seed' | 'set'>): number {
  return hashSeed(p.seed, 'evaluate', JSON.stringify(p.set));
}

export interface RecordedEvaluation {
  /** What the metrics read, one per problem in the ledger. */
  records: EvalRecord[];
  /** The evaluation's seed, which random tie draws use. */
  seed: number;
  /** The metrics under each tie rule, with votes weighed by `vote`. */
  byRule: Record<TieBreak, MetricsTable>;
}

/** Every answer the ledger holds for evaluate step `key`, and the metrics over them. */
export async function recordedEvaluation(store: Store, key: string, params: Pick<EvaluateParams, 'seed' | 'set'>, vote: VoteWeighting = DEFAULT_VOTE): Promise<RecordedEvaluation> {
  const records = (await readEpisodes(store, key)).map(episodeRecord);
  const seed = evaluationSeed(params);
  const byRule = Object.fromEntries(TIE_BREAKS.map((tieBreak) => [tieBreak, computeMetrics(records, { tieBreak, seed, vote })])) as Record<TieBreak, MetricsTable>;
  return { records, seed, byRule };
}
