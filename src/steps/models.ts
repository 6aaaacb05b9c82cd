/**
 * What the steps that train and sample need to know about models: the engine config a spec's built-in
 * model resolves to, and the optimizer a step's knobs configure. Used by the steps that build graphs
 * and by the plan's compute fingerprints, so both agree on which graph a step runs.
 */

import { DEFAULT_ADAMW, type AdamWConfig } from '../engine/adamw.ts';
import { resolveModelConfig, type ModelConfig } from '../engine/config.ts';
import { hashSeed } from '../engine/random.ts';
import { CharTokenizer, type Tokenizer } from '../engine/tokenizer.ts';
import type { BuiltinModelConfig, OptimizerSpec } from '../spec/types.ts';

/** The tokenizer of the built-in model (the only model kind the spec has today). */
export function builtinTokenizer(): Tokenizer {
  return new CharTokenizer();
}

/** The engine config of a spec's built-in model; nulls mean the engine's default or a seed derived from the experiment's. */
export function builtinModelConfig(spec: BuiltinModelConfig, experimentSeed: number): ModelConfig {
  const knobs = Object.fromEntries(Object.entries(spec).filter(([, v]) => v !== null));
  return resolveModelConfig({ seed: hashSeed(experimentSeed, 'init') >>> 1, ...knobs, vocabSize: builtinTokenizer().vocabSize });
}

export function adamwOf(optimizer: OptimizerSpec): AdamWConfig {
  return { ...DEFAULT_ADAMW, weightDecay: optimizer.weightDecay, clipNorm: optimizer.clipNorm };
}
