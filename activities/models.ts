/**
 * Models that steps produce and read. A boost or train step saves its model as a checkpoint directory
 * under the store's home, named by step key and generation (a replayed step writes a new one, the old
 * stays as history), and records the path and config in its outputs; a step that samples from a model
 * finds it through the key of the step that produced it. A model trained from a stored pretrained model
 * names that model in its checkpoint; under LoRA the checkpoint holds only the adapters. When artifacts are
 * shared between machines (RISE_ARTIFACTS), the checkpoint is also stored as an artifact, and a worker on
 * another machine rebuilds the directory under its own home before loading it.
 */

import { join, relative, resolve } from 'node:path';
import { artifactsShared } from '../src/artifacts/config.ts';
import { ArtifactUnavailableError } from '../src/artifacts/location.ts';
import { saveCheckpoint } from '../src/engine/checkpoint.ts';
import type { ModelConfig } from '../src/engine/config.ts';
import type { LoraConfig } from '../src/engine/lora.ts';
import type { NamedTensor } from '../src/engine/tensor.ts';
import type { Tokenizer } from '../src/engine/tokenizer.ts';
import { derivedMeta, loadCheckpointModel, loadPretrained, type RunnableModel } from '../src/models/load.ts';
import { chatTemplateFor } from '../src/rise/chat-template.ts';
import type { ChatTemplate } from '../src/rise/template.ts';
import { shortKey, type ModelRef } from '../src/steps/index.ts';
import { doneOutputs } from '../src/steps/stored.ts';
import { getStep, getTree, putTree, type Store } from '../src/store/index.ts';
import type { StepContext } from './context.ts';

/** A model is missing or unreadable: retrying cannot fix it (non-retryable). */
export class ModelFileError extends Error {
  override name = 'ModelFileError';
}

/** Why a model could not be loaded, as the step fails with it: retryable only when the artifact location did not answer. */
function modelFailure(err: unknown, prefix = ''): Error {
  return err instanceof ArtifactUnavailableError ? err : new ModelFileError(`${prefix}${(err as Error).message}`);
}

export interface LoadedModel extends RunnableModel {
  /** How the model's conversations become tokens: its own chat template, or the built-in format. */
  template: ChatTemplate;
}

/** What a fit saves: full weights, or the adapters over the stored model `base`. */
export interface TrainedModel {
  config: ModelConfig;
  tokenizer: Tokenizer;
  params: NamedTensor[];
  lora: LoraConfig | null;
  base: string | null;
}

function withTemplate(model: RunnableModel, config: ModelConfig = model.config): LoadedModel {
  return { ...model, config, template: chatTemplateFor(model.tokenizer, model.stop) };
}

export async function saveModel(ctx: StepContext, key: string, generation: number, model: TrainedModel): Promise<ModelRef> {
  const dir = join(ctx.modelsDir, key, `g${generation}`);
  await saveCheckpoint(dir, {
    config: model.config,
    tokenizer: model.tokenizer,
    params: model.params,
    ...(model.lora !== null ? { lora: model.lora } : {}),
    ...(model.base !== null ? { meta: derivedMeta(model.base) } : {}),
  });
  const tree = artifactsShared() ? await putTree(ctx.store, dir, 'checkpoint') : undefined;
  return { dir: relative(ctx.store.home, dir), config: model.config, ...(tree !== undefined ? { tree } : {}) };
}

/** The checkpoint directory of a trained model on this machine, rebuilt from its artifact if it is not here. */
export async function checkpointDir(store: Store, ref: ModelRef): Promise<string> {
  const dir = resolve(store.home, ref.dir);
  if (ref.tree !== undefined) await getTree(store, ref.tree, dir);
  return dir;
}

/** A stored pretrained model, with the config (context) the step runs it with. */
export async function pretrainedModel(ctx: Pick<StepContext, 'modelsHome'>, digest: string, config: ModelConfig): Promise<LoadedModel> {
  try {
    return withTemplate(await loadPretrained(digest, ctx.modelsHome), config);
  } catch (err) {
    throw modelFailure(err);
  }
}

/** The model produced by the boost or train step `key`. */
export async function loadModel(ctx: StepContext, key: string): Promise<LoadedModel> {
  const ref = (await doneOutputs(ctx.store, key, 'boost') ?? await doneOutputs(ctx.store, key, 'train'))?.model;
  if (ref === undefined) {
    const step = await getStep(ctx.store, key);
    throw new ModelFileError(`model of step ${shortKey(key)} is not in the store (its ${step?.kind ?? 'producing'} step is ${step?.status ?? 'missing'})`);
  }
  try {
    return withTemplate(await loadCheckpointModel(await checkpointDir(ctx.store, ref), ctx.modelsHome));
  } catch (err) {
    throw modelFailure(err, `model of step ${shortKey(key)}: `);
  }
}
