/**
 * Models that steps produce and read. A boost or train step saves its model as a checkpoint directory
 * under the store's home, named by step key and generation (a replayed step writes a new one, the old
 * stays as history), and records the path and config in its outputs; a step that samples from a model
 * finds it through the key of the step that produced it.
 */

import { join, relative, resolve } from 'node:path';
import { loadCheckpoint, saveCheckpoint } from '../src/engine/checkpoint.ts';
import type { ModelConfig } from '../src/engine/config.ts';
import type { NamedTensor } from '../src/engine/tensor.ts';
import type { Tokenizer } from '../src/engine/tokenizer.ts';
import { shortKey, type ModelRef } from '../src/steps/index.ts';
import { doneOutputs } from '../src/steps/stored.ts';
import { getStep } from '../src/store/index.ts';
import type { StepContext } from './context.ts';

/** A model is missing or unreadable: retrying cannot fix it (non-retryable). */
export class ModelFileError extends Error {
  override name = 'ModelFileError';
}

export interface LoadedModel {
  config: ModelConfig;
  params: NamedTensor[];
  tokenizer: Tokenizer;
}

export async function saveModel(ctx: StepContext, key: string, generation: number, model: LoadedModel): Promise<ModelRef> {
  const dir = join(ctx.modelsDir, key, `g${generation}`);
  await saveCheckpoint(dir, { config: model.config, tokenizer: model.tokenizer, params: model.params });
  return { dir: relative(ctx.store.home, dir), config: model.config };
}

/** The model produced by the boost or train step `key`. */
export async function loadModel(ctx: StepContext, key: string): Promise<LoadedModel> {
  const ref = (doneOutputs(ctx.store, key, 'boost') ?? doneOutputs(ctx.store, key, 'train'))?.model;
  if (ref === undefined) {
    const step = getStep(ctx.store, key);
    throw new ModelFileError(`model of step ${shortKey(key)} is not in the store (its ${step?.kind ?? 'producing'} step is ${step?.status ?? 'missing'})`);
  }
  const dir = resolve(ctx.store.home, ref.dir);
  try {
    const ckpt = await loadCheckpoint(dir);
    return { config: ckpt.config, params: ckpt.params, tokenizer: ckpt.tokenizer };
  } catch (err) {
    throw new ModelFileError(`model of step ${shortKey(key)}: ${(err as Error).message}`);
  }
}
