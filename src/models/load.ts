/**
 * Models ready to run: a stored pretrained model, or a checkpoint trained from one (or from scratch). A
 * checkpoint derived from a stored model names it in its meta.json (`base`: the digest), which is where
 * its chat format comes from and, for a LoRA checkpoint (adapters only), its frozen weights; the adapters
 * are merged into those weights here, so sampling runs the plain decode graph at full speed.
 */

import { existsSync, statSync } from 'node:fs';
import { loadCheckpoint } from '../engine/checkpoint.ts';
import type { ModelConfig } from '../engine/config.ts';
import { mergeLora, type LoraConfig } from '../engine/lora.ts';
import type { NamedTensor } from '../engine/tensor.ts';
import type { Tokenizer } from '../engine/tokenizer.ts';
import { findModel, loadStoredModel, modelsHome, ModelStoreError } from './store.ts';

/** The stored pretrained model a model is (or derives from): its frozen weights. */
export interface PretrainedBase {
  digest: string;
  params: NamedTensor[];
}

export interface RunnableModel {
  config: ModelConfig;
  /** The weights to sample with (under LoRA: the base with the adapters merged in). */
  params: NamedTensor[];
  tokenizer: Tokenizer;
  /** Token strings that end an assistant turn, from the stored model's card; [] for a built-in model. */
  stop: string[];
  base: PretrainedBase | null;
  /** The adapters of a LoRA-trained model, which further training continues from. */
  adapters: { lora: LoraConfig; tensors: NamedTensor[] } | null;
}

/** What a checkpoint trained from a stored model records about it. */
export function derivedMeta(base: string): Record<string, unknown> {
  return { base };
}

// The last stored model loaded: the steps of an iteration (rollout, relabel, train, evaluate) all read the
// same base, and one copy of a model's weights is plenty of memory.
let lastLoaded: { key: string; model: Promise<RunnableModel> } | null = null;

/** A stored pretrained model (its weights are shared with other callers: never write to them). */
export function loadPretrained(digest: string, home = modelsHome()): Promise<RunnableModel> {
  const key = `${home}\n${digest}`;
  if (lastLoaded?.key !== key) {
    const model = loadStoredModel(home, digest).then((m) => ({
      config: m.config,
      params: m.params,
      tokenizer: m.tokenizer,
      stop: m.card.chat.stop,
      base: { digest, params: m.params },
      adapters: null,
    }));
    model.catch(() => {
      if (lastLoaded?.key === key) lastLoaded = null;
    });
    lastLoaded = { key, model };
  }
  return lastLoaded.model;
}

/** A checkpoint directory as a runnable model: its own weights, or (LoRA) its base's with the adapters merged in. */
export async function loadCheckpointModel(dir: string, home = modelsHome()): Promise<RunnableModel> {
  const checkpoint = await loadCheckpoint(dir);
  const base = checkpoint.meta?.base;
  const own = { config: checkpoint.config, params: checkpoint.params, tokenizer: checkpoint.tokenizer };
  if (base === undefined) {
    if (checkpoint.lora !== undefined) throw new ModelStoreError(`checkpoint ${dir}: holds LoRA adapters but names no base model (meta.json "base")`);
    return { ...own, stop: [], base: null, adapters: null };
  }
  if (typeof base !== 'string') throw new ModelStoreError(`checkpoint ${dir}: meta.json "base" must be a model digest`);
  const pretrained = await loadPretrained(base, home);
  if (checkpoint.lora === undefined) return { ...own, stop: pretrained.stop, base: pretrained.base, adapters: null };
  return {
    ...own,
    params: mergeLora(pretrained.params, checkpoint.params, checkpoint.config, checkpoint.lora),
    stop: pretrained.stop,
    base: pretrained.base,
    adapters: { lora: checkpoint.lora, tensors: checkpoint.params },
  };
}

/** `--model` of the CLI: a checkpoint directory, else a model store name or digest. */
export async function loadModelForInference(ref: string, home = modelsHome()): Promise<RunnableModel> {
  if (existsSync(ref) && statSync(ref).isDirectory()) return loadCheckpointModel(ref, home);
  return loadPretrained(findModel(home, ref).card.digest, home);
}
