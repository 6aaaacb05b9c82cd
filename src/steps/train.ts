/**
 * Train: the filtered examples rendered as the policy saw them (multi-turn) or as first questions alone
 * (single-turn), weighted, and fitted from the boosted model or the previous iteration's.
 */

import type { ExampleFormat, ExampleRendering, TokenNormalization, Weighting } from '../rise/examples.ts';
import type { LoraSpec, OptimizerSpec } from '../spec/types.ts';
import type { FitOutputs } from './fit.ts';

export const TRAIN_VERSION = 1;

export interface TrainParams {
  seed: number;
  weighting: Weighting;
  /** RWR temperature; absent under uniform weighting, where it changes nothing. */
  tau?: number;
  format: ExampleFormat;
  normalize: TokenNormalization;
  /** Multi-turn only: single-turn examples have no earlier attempts and no retry message. */
  contextWindow?: number | null;
  feedback?: string;
  instruction: string | null;
  optimizer: OptimizerSpec;
  /** Adapters trained instead of every weight; absent = full fine-tuning. */
  lora?: LoraSpec;
}

export interface TrainOutputs extends FitOutputs {
  examples: number;
  /** Examples longer than the model's context, left out. */
  tooLong: number;
}

/** How a train step renders its examples; single-turn ones show no earlier attempt, so no retry message and no window. */
export function trainRendering(p: TrainParams): ExampleRendering {
  return { prompting: { instruction: p.instruction, feedback: p.feedback ?? '' }, format: p.format, contextWindow: p.contextWindow ?? null };
}
