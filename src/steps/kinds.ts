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
