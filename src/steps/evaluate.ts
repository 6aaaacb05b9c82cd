/**
 * Evaluate: a model on one evaluation set — parallel turn-1 samples and a sequential chain of turns per
 * problem — and the metrics table over them.
 */

import type { MetricsTable } from '../rise/metrics.ts';
import type { EvaluateSpec } from '../spec/types.ts';
import type { ProblemSetParams, PromptParams, RewardParams } from './problems.ts';

export const EVALUATE_VERSION = 1;

export interface EvaluateParams extends PromptParams {
  seed: number;
  task: RewardParams;
  set: ProblemSetParams;
  /** Generated sets leave out the training prompts, so they depend on the training set too. */
  train?: ProblemSetParams;
  evaluate: EvaluateSpec;
}

export interface EvaluateOutputs {
  resumed: number;
  table: MetricsTable;
}
