/** Reading a finished step's outputs back from the store, typed by its kind's contract. */

import { getStep, type Store } from '../store/index.ts';
import type { StepOutputs } from './index.ts';
import type { StepKind } from './kinds.ts';

/**
 * The outputs of step `key` if it is done and of kind `kind`, else undefined. The store holds outputs as
 * JSON written by the activity of that kind, so the kind check is what makes the type hold.
 */
export function doneOutputs<K extends StepKind>(store: Store, key: string, kind: K): StepOutputs[K] | undefined {
  const step = getStep(store, key);
  if (step?.status !== 'done' || step.kind !== kind) return undefined;
  return step.outputs as StepOutputs[K];
}
