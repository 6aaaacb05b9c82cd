/**
 * Rollout: attempt 1 of every episode, sampled from the step's input model (the current learner, or a
 * fixed policy model) or from a remote policy. The relabel step continues these episodes.
 */

import type { EpisodeOutputs, SamplingParams } from './episodes.ts';
import type { ProblemSetParams, RewardParams } from './problems.ts';
import type { RemotePolicyParams } from './remote.ts';

export const ROLLOUT_VERSION = 1;

export interface RolloutParams extends SamplingParams {
  seed: number;
  /** A fixed policy is the same input every iteration; the iteration makes each draw new samples. */
  iteration: number;
  task: RewardParams;
  train: ProblemSetParams;
  /** Episodes per problem. */
  samples: number;
  instruction: string | null;
  /** A policy behind an API samples attempt 1 (and the step has no input); absent: the input model. */
  policy?: RemotePolicyParams;
}

export type RolloutOutputs = EpisodeOutputs;
