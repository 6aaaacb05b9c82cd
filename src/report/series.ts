/**
 * The three metric families as series over k (src/rise/metrics.ts names them): one sequential
 * conversation read at turn k without and with an oracle, and k parallel samples. At equal k the
 * sequential and parallel series cost the same number of samples, which is the comparison RISE is
 * about: is k turns of self-correction better than a majority over k independent tries?
 */

import type { MetricPoint } from './data.ts';

export interface Series {
  /** As tables and legends show it. */
  label: string;
  what: string;
  /** The metric holding the series' value at k. */
  metric: (k: number) => string;
}

export const SEQUENTIAL: Series = { label: 'm1@tk', what: 'majority over turns 1..k, no oracle', metric: (k) => `m1@t${k}` };
export const ORACLE: Series = { label: 'p1@tk', what: 'correct at any turn ≤ k (oracle stops at the first correct turn)', metric: (k) => `p1@t${k}` };
export const PARALLEL: Series = { label: 'mk@t1', what: 'majority over k parallel turn-1 samples', metric: (k) => `m${k}@t1` };

export const ALL_SERIES = [SEQUENTIAL, ORACLE, PARALLEL] as const;

/** The series that take a majority vote, whose values a tie rule can change. */
export const VOTED_SERIES = [SEQUENTIAL, PARALLEL] as const;

/** The largest k among the points (turns or parallel samples evaluated); 0 when there are none. */
export function maxK(points: Iterable<MetricPoint>): number {
  let k = 0;
  for (const p of points) k = Math.max(k, p.k);
  return k;
}
