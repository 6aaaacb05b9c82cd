/**
 * Evaluate: a model on one evaluation set — parallel turn-1 samples and a sequential chain of turns per
 * problem, in the ledger. The metrics are arithmetic over those stored answers (metrics.ts), computed by
 * whoever reads them under the tie rule they ask for, so the rule is not part of the step.
 */

import type { EvaluateSpec } from '../spec/types.ts';
import type { ProblemSetParams, PromptParams, RewardParams } from './problems.ts';

export const EVALUATE_VERSION = 2;

export interface EvaluateParams extends PromptParams {
  seed: number;
  task: RewardParams;
  set: ProblemSetParams;
  /** Generated sets leave out the training prompts, so they depend on the training set too. */
  train?: ProblemSetParams;
  evaluate: Omit<EvaluateSpec, 'tieBreak' | 'vote'>;
}

export interface EvaluateOutputs {
  resumed: number;
  /** Problems evaluated (each in the ledger under the step's key). */
  problems: number;
}
