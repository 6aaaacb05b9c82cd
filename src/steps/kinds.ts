/**
 * The kinds of step a RISE experiment is made of. Each kind has one contract in this folder (its
 * params, its outputs, its version), one activity of the same name, and one place in the plan.
 *
 * Pure: workflow code imports this file.
 */

export const STEP_KINDS = ['boost', 'rollout', 'relabel', 'filter', 'train', 'evaluate'] as const;
export type StepKind = (typeof STEP_KINDS)[number];

const SHORT_KEY_LENGTH = 12;

/** A step key as people read it (status tables, activity summaries, error messages). */
export function shortKey(key: string): string {
  return key.slice(0, SHORT_KEY_LENGTH);
}

/**
 * Where a step stands, in the store and everywhere it is shown: `pending` (never attempted, or marked
 * stale by a replay), `running` (an attempt holds it), `done` (a result is stored), `failed` (the last
 * attempt failed; a rerun retries it).
 */
export type StepState = 'pending' | 'running' | 'done' | 'failed';

/** A step's state as one run sees it: `cached` is a step that was done before the run reached it. */
export type RunStepState = StepState | 'cached';
