/**
 * Relabeling (docs/rise.md, step 2): at a state whose attempt is wrong, draw candidates for the next turn
 * conditioned on the whole history and keep the best by reward. `self` draws them from the learner
 * (self-distillation, reference N = 16), `expert` from a second, stronger policy (distillation).
 */

import type { Sample } from './episode.ts';
import type { Policy } from './policy.ts';

export const RELABEL_STRATEGIES = ['self', 'expert'] as const;
export type RelabelStrategy = (typeof RELABEL_STRATEGIES)[number];

export interface Relabeler {
  strategy: RelabelStrategy;
  policy: Policy;
  /** Candidates per state. */
  samples: number;
}

/** Index of the largest value; on ties the first one wins, so the choice never depends on luck. */
export function firstMaxIndex(values: readonly number[]): number {
  if (values.length === 0) throw new Error('firstMaxIndex: no values');
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/**
 * The attempt of a turn, as an index into its draws: each candidate slot's last draw is its candidate;
 * the best candidate by reward wins, the lowest slot on ties. Candidates that stayed degenerate after
 * every resample are passed over unless no other candidate exists.
 */
export function chooseBest(draws: readonly Sample[]): number {
  const finals = new Map<number, number>();
  draws.forEach((s, i) => {
    const seen = finals.get(s.candidate);
    if (seen === undefined || draws[seen].resample < s.resample) finals.set(s.candidate, i);
  });
  const candidates = [...finals.entries()].sort((a, b) => a[0] - b[0]).map(([, i]) => i);
  if (candidates.length === 0) throw new Error('chooseBest: no draws');
  const clean = candidates.filter((i) => draws[i].degenerate === null);
  const pool = clean.length > 0 ? clean : candidates;
  return pool[firstMaxIndex(pool.map((i) => draws[i].reward))];
}
