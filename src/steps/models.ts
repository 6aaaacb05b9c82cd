/**
 * What the steps that train and sample need to know about models: which model a step uses (its
 * params), the engine config that model has, and the optimizer a step's knobs configure. Used by the
 * steps that build graphs and by the plan's compute fingerprints, so both agree on which graph a step runs.
 */

import { DEFAULT_ADAMW, type AdamWConfig } from '../engine/adamw.ts';
import { resolveModelConfig, type ModelConfig } from '../engine/config.ts';
import type { LoraConfig } from '../engine/lora.ts';
import { hashSeed } from '../engine/random.ts';
import { CharTokenizer } from '../engine/tokenizer.ts';
import type { BuiltinModelConfig, LoraSpec, ModelSpec, OptimizerSpec } from '../spec/types.ts';

/**
 * A model as step params name it: the built-in architecture, or a stored pretrained model by digest
 * (with its engine config, the context already set to the spec's), so a key names exactly the weights.
 */
export type ModelParams = { kind: 'builtin'; config: BuiltinModelConfig } | { kind: 'pretrained'; digest: string; config: ModelConfig };

/** A stored model as the planner needs it: found by the CLI in the model store before planning. */
export interface ResolvedModel {
  digest: string;
  config: ModelConfig;
}

/** Thrown while planning: a spec's model that the model store does not have, or a context it cannot give. */
export class ModelResolutionError extends Error {
  override name = 'ModelResolutionError';
}

/** A spec's model as step params; pretrained models by the digest `resolved` gives for their name (or path). */
export function modelParams(spec: ModelSpec, resolved: Readonly<Record<string, ResolvedModel>> | undefined): ModelParams {
  if (spec.kind === 'builtin') return { kind: 'builtin', config: spec.config };
  const ref = spec.name ?? spec.path;
  const model = ref === null ? undefined : resolved?.[ref];
  if (model === undefined) throw new ModelResolutionError(`plan: model "${ref}" was not resolved (pass it in options.models)`);
  if (spec.context !== null && spec.context > model.config.context) {
    throw new ModelResolutionError(`model "${ref}" has a context of ${model.config.context} tokens; the spec asks for ${spec.context}`);
  }
  return { kind: 'pretrained', digest: model.digest, config: { ...model.config, context: spec.context ?? model.config.context } };
}

/** The tokenizer of the built-in model. */
export function builtinTokenizer(): CharTokenizer {
  return new CharTokenizer();
}

/** The engine config of a spec's built-in model; nulls mean the engine's default or a seed derived from the experiment's. */
export function builtinModelConfig(spec: BuiltinModelConfig, experimentSeed: number): ModelConfig {
  const knobs = Object.fromEntries(Object.entries(spec).filter(([, v]) => v !== null));
  return resolveModelConfig({ seed: hashSeed(experimentSeed, 'init') >>> 1, ...knobs, vocabSize: builtinTokenizer().vocabSize });
}

/** The engine config of a step's model. */
export function modelConfigOf(model: ModelParams, experimentSeed: number): ModelConfig {
  return model.kind === 'builtin' ? builtinModelConfig(model.config, experimentSeed) : model.config;
}

export function adamwOf(optimizer: OptimizerSpec): AdamWConfig {
  return { ...DEFAULT_ADAMW, weightDecay: optimizer.weightDecay, clipNorm: optimizer.clipNorm };
}

export function loraOf(lora: LoraSpec | null): LoraConfig | null {
  return lora === null ? null : { rank: lora.rank, alpha: lora.alpha, targets: [...lora.targets], dropout: lora.dropout };
}
