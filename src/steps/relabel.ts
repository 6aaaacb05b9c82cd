/**
 * Relabel: the rollout step's episodes continued turn by turn while their attempt is wrong, each later
 * attempt the best of N candidates from the relabeling policy (the sampler itself, or the expert: a model,
 * or a remote policy).
 */

import type { RelabelStrategy } from '../rise/relabel.ts';
import type { AfterSuccess } from '../rise/rollout.ts';
import type { EpisodeOutputs, SamplingParams } from './episodes.ts';
import type { PromptParams, RewardParams } from './problems.ts';
import type { RemotePolicyParams } from './remote.ts';

export const RELABEL_VERSION = 1;

export interface RelabelParams extends SamplingParams, PromptParams {
  seed: number;
  task: RewardParams;
  strategy: RelabelStrategy;
  /** Candidates per state; the best by reward becomes the attempt. */
  samples: number;
  turns: number;
  stopOnSuccess: boolean;
  /** Only without stopOnSuccess, so steps that stop at a success keep the keys they had before it existed. */
  afterSuccess?: AfterSuccess;
  contextWindow: number | null;
  /** A policy behind an API draws the candidates (and the step's only input is the rollout); absent: the input model. */
  policy?: RemotePolicyParams;
}

export type RelabelOutputs = EpisodeOutputs;
