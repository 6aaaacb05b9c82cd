/**
 * Relabel: the rollout step's episodes continued turn by turn while their attempt is wrong, each later
 * attempt the best of N candidates from the relabeling model (the sampler itself, or the expert).
 */

import type { RelabelStrategy } from '../rise/relabel.ts';
import type { EpisodeOutputs, SamplingParams } from './episodes.ts';
import type { PromptParams, RewardParams } from './problems.ts';

export const RELABEL_VERSION = 1;

export interface RelabelParams extends SamplingParams, PromptParams {
  seed: number;
  task: RewardParams;
  strategy: RelabelStrategy;
  /** Candidates per state; the best by reward becomes the attempt. */
  samples: number;
  turns: number;
  stopOnSuccess: boolean;
  contextWindow: number | null;
}

export type RelabelOutputs = EpisodeOutputs;
