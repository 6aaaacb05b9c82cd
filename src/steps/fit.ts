/** What a step that trains a model (boost, train) records. */

import type { ModelConfig } from '../engine/config.ts';
import type { ArtifactRef } from '../store/index.ts';

export interface ModelRef {
  /** Checkpoint directory, relative to the store's home. */
  dir: string;
  config: ModelConfig;
  /**
   * The checkpoint directory as an artifact (src/store/artifacts.ts `putTree`), when artifacts are shared
   * between machines (RISE_ARTIFACTS): a worker elsewhere rebuilds `dir` under its own home from it.
   */
  tree?: ArtifactRef;
}

export interface FitOutputs {
  model: ModelRef;
  train: { steps: number; firstLoss: number | null; lastLoss: number | null };
  /** `number[]`: the loss of every optimizer step. */
  losses: ArtifactRef;
  /**
   * Tokens trained on: every example's tokens, once per epoch (padding not counted). What a budget
   * counts and `rise plan` measures training throughput by; absent from steps finished before it was recorded.
   */
  tokens?: number;
}
