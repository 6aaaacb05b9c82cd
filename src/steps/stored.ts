/** A step's params and outputs read back from the store, typed by its kind's contract. */

import { getStep, type Store } from '../store/index.ts';
import type { StepOutputs, StepParams } from './index.ts';
import type { StepKind } from './kinds.ts';

// The store holds params and outputs as JSON written for a step of one kind (the plan's params, the
// outputs of that kind's activity), so checking the kind is what makes the types below hold.

/** The outputs of step `key` if it is done and of kind `kind`, else undefined. */
export async function doneOutputs<K extends StepKind>(store: Store, key: string, kind: K): Promise<StepOutputs[K] | undefined> {
  const step = await getStep(store, key);
  if (step?.status !== 'done' || step.kind !== kind) return undefined;
  return step.outputs as StepOutputs[K];
}

/** The params of step `key`, which must be of kind `kind` (an input of the step asking for it). */
export async function storedParams<K extends StepKind>(store: Store, key: string, kind: K): Promise<StepParams[K]> {
  const step = await getStep(store, key);
  if (step?.kind !== kind) throw new Error(`expected a ${kind} step ${key.slice(0, 12)} in the store; found ${step ? `a ${step.kind} step` : 'none'}`);
  return step.params as StepParams[K];
}
