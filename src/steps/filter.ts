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

/**
 * A filter step's inputs are the relabel steps of consecutive iterations ending at its own (one when it
 * does not aggregate); an example's origin names the iteration its episode came from.
 */
export function filterOrigins(iteration: number, inputs: readonly string[]): { relabel: string; origin: string }[] {
  const first = iteration - inputs.length + 1;
  return inputs.map((relabel, i) => ({ relabel, origin: `iter-${first + i}` }));
}
