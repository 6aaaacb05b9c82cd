/**
 * Filter: relabeled episodes (of this iteration, or of every iteration so far when aggregating) cut into
 * per-turn examples, each kept or dropped by a named rule.
 */

import type { DropRule, FilterOptions } from '../rise/filter.ts';
import type { ArtifactRef } from '../store/index.ts';

export const FILTER_VERSION = 1;

export type FilterParams = FilterOptions;

export interface FilterOutputs {
  episodes: number;
  kept: number;
  dropped: Record<DropRule, number>;
  /** `TurnExample[]`: the kept examples, for the train step. */
  examples: ArtifactRef;
}
