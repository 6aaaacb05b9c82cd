/** Boost: the learner (or an expert, or a fixed rollout policy) initialised from its seed and fine-tuned on worked solutions. */

import type { BoostSpec, LoraSpec } from '../spec/types.ts';
import type { FitOutputs } from './fit.ts';
import type { ModelParams } from './models.ts';
import type { ProblemSetParams } from './problems.ts';

/** Bumped when what the step computes changes in a way no graph shows (example packing, initialisation). */
export const BOOST_VERSION = 1;

export interface BoostParams {
  seed: number;
  model: ModelParams;
  boost: BoostSpec;
  /** Adapters trained instead of every weight (the spec's train.lora); absent = full fine-tuning, as built-in models always had. */
  lora?: LoraSpec;
  train: ProblemSetParams;
  instruction: string | null;
}

export type BoostOutputs = FitOutputs;
