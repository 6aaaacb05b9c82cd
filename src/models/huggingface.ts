/**
 * A local Hugging Face checkpoint directory of the Llama family (Llama, Mistral, Qwen2): config.json →
 * ModelConfig, and model.safetensors (or the shards model.safetensors.index.json lists) → the engine's
 * parameters through src/models/layout.ts. Tensors are read one at a time, F32, F16 or BF16.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { resolveModelConfig, type ModelConfig, type RopeScaling } from '../engine/config.ts';
import { openSafetensors, type SafetensorsReader } from '../engine/safetensors.ts';
import type { NamedTensor } from '../engine/tensor.ts';
import { isPlainObject } from '../util/objects.ts';
import { engineParameters, type HfTensorSource } from './layout.ts';

export interface HuggingFaceModel {
  /** The class config.json names, e.g. "LlamaForCausalLM". */
  architecture: string;
  config: ModelConfig;
  params: NamedTensor[];
  /** What the import changed from the checkpoint's own config, for the user to see. */
  notes: string[];
}

const ARCHITECTURES = ['LlamaForCausalLM', 'MistralForCausalLM', 'Qwen2ForCausalLM'] as const;

const CONFIG_FILE = 'config.json';
const WEIGHTS_FILE = 'model.safetensors';
const INDEX_FILE = 'model.safetensors.index.json';

export async function readHuggingFaceModel(dir: string): Promise<HuggingFaceModel> {
  const configPath = join(dir, CONFIG_FILE);
  const { architecture, config, notes } = hfModelConfig(await readJsonFile(configPath), configPath);
  const source = await openWeights(dir);
  try {
    return { architecture, config, params: await engineParameters(config, source), notes };
  } finally {
    await source.close();
  }
}

/**
 * The model config a Hugging Face config.json describes. Features the engine's decoder lacks (biases
 * other than Qwen2's q/k/v, a head size other than hidden/heads, other activations or rotary scalings)
 * are refused by name rather than silently dropped. Reads both transformers 4's keys (`rope_theta`,
 * `rope_scaling`) and transformers 5's (`rope_parameters`).
 */
export function hfModelConfig(json: unknown, where: string): { architecture: string; config: ModelConfig; notes: string[] } {
  if (!isPlainObject(json)) throw new Error(`${where}: must hold a JSON object`);
  const architectures = json.architectures;
  const architecture = Array.isArray(architectures) && architectures.length === 1 ? architectures[0] : undefined;
  if (typeof architecture !== 'string' || !(ARCHITECTURES as readonly string[]).includes(architecture)) {
    throw new Error(`${where}: "architectures" is ${JSON.stringify(architectures)}; supported: ${ARCHITECTURES.join(', ')}`);
  }
  const field = (key: string, fallback?: unknown): unknown => (json[key] === undefined || json[key] === null ? fallback : json[key]);
  const number = (key: string, fallback?: number): number => {
    const v = field(key, fallback);
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${where}: "${key}" must be a number, got ${JSON.stringify(v)}`);
    return v;
  };
  const refuse = (key: string, why: string) => {
    throw new Error(`${where}: "${key}" is ${JSON.stringify(json[key])}: ${why}`);
  };

  const dim = number('hidden_size');
  const heads = number('num_attention_heads');
  if (field('head_dim', dim / heads) !== dim / heads) refuse('head_dim', `the engine's head size is hidden_size / num_attention_heads (${dim / heads})`);
  if (field('hidden_act', 'silu') !== 'silu') refuse('hidden_act', 'only SwiGLU with silu is supported');
  if (field('mlp_bias', false) !== false) refuse('mlp_bias', 'MLP biases are not supported');
  // Llama's attention_bias adds an output-projection bias too, which the engine has no place for.
  if (architecture !== 'Qwen2ForCausalLM' && field('attention_bias', false) !== false) refuse('attention_bias', 'attention biases are supported for Qwen2 only');

  const rope = isPlainObject(json.rope_parameters) ? json.rope_parameters : undefined;
  const notes: string[] = [];
  const maxPositions = number('max_position_embeddings');
  const window = slidingWindow(json, architecture, where);
  const context = window !== undefined && window < maxPositions ? window : maxPositions;
  if (context < maxPositions) {
    notes.push(`context limited to the ${window}-token sliding window (max_position_embeddings is ${maxPositions}): within it, sliding-window attention is full attention`);
  }
  const input = {
    vocabSize: number('vocab_size'),
    layers: number('num_hidden_layers'),
    dim,
    heads,
    kvHeads: number('num_key_value_heads', heads),
    hidden: number('intermediate_size'),
    context,
    ropeTheta: rope !== undefined && typeof rope.rope_theta === 'number' ? rope.rope_theta : number('rope_theta', 10000),
    normEps: number('rms_norm_eps'),
    tiedEmbeddings: field('tie_word_embeddings', false) === true,
    seed: 0,
    ...(architecture === 'Qwen2ForCausalLM' ? { qkvBias: true as const } : {}),
    ...ropeScalingOf(rope ?? json.rope_scaling, rope !== undefined ? 'rope_parameters' : 'rope_scaling', where),
  };
  try {
    return { architecture, config: resolveModelConfig(input), notes };
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`);
  }
}

/** The attention window when the model uses one (Mistral's sliding_window; Qwen2's only with use_sliding_window). */
function slidingWindow(json: Record<string, unknown>, architecture: string, where: string): number | undefined {
  const window = json.sliding_window;
  const used = architecture === 'MistralForCausalLM' || (architecture === 'Qwen2ForCausalLM' && json.use_sliding_window === true);
  if (!used || window === undefined || window === null) return undefined;
  if (typeof window !== 'number' || !Number.isInteger(window) || window <= 0) {
    throw new Error(`${where}: "sliding_window" must be a positive integer or null, got ${JSON.stringify(window)}`);
  }
  return window;
}

function ropeScalingOf(value: unknown, key: string, where: string): { ropeScaling?: RopeScaling } {
  if (value === undefined || value === null) return {};
  if (!isPlainObject(value)) throw new Error(`${where}: "${key}" must be an object or null, got ${JSON.stringify(value)}`);
  const kind = value.rope_type ?? value.type ?? 'default';
  if (kind === 'default') return {};
  if (kind !== 'llama3') throw new Error(`${where}: "${key}" type ${JSON.stringify(kind)} is not supported (supported: default, llama3)`);
  const number = (name: string): number => {
    const v = value[name];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${where}: "${key}.${name}" must be a number, got ${JSON.stringify(v)}`);
    return v;
  };
  return {
    ropeScaling: {
      kind: 'llama3',
      factor: number('factor'),
      lowFreqFactor: number('low_freq_factor'),
      highFreqFactor: number('high_freq_factor'),
      originalContext: number('original_max_position_embeddings'),
    },
  };
}

/** The checkpoint's tensors by name, across shards, each file opened once and read tensor by tensor. */
async function openWeights(dir: string): Promise<HfTensorSource & { close(): Promise<void> }> {
  const single = join(dir, WEIGHTS_FILE);
  const indexPath = join(dir, INDEX_FILE);
  let fileOf: (name: string) => string | undefined;
  if (existsSync(single)) {
    fileOf = () => single;
  } else if (existsSync(indexPath)) {
    const index = await readJsonFile(indexPath);
    const map = isPlainObject(index) ? index.weight_map : undefined;
    if (!isPlainObject(map) || !Object.values(map).every((f) => typeof f === 'string' && !f.includes('/') && !f.includes('\\'))) {
      throw new Error(`${indexPath}: "weight_map" must map tensor names to file names in the same directory`);
    }
    fileOf = (name) => (Object.hasOwn(map, name) ? join(dir, map[name] as string) : undefined);
  } else {
    throw new Error(`${dir}: no ${WEIGHTS_FILE} or ${INDEX_FILE}`);
  }

  const readers = new Map<string, Promise<SafetensorsReader>>();
  const readerOf = (file: string) => {
    let reader = readers.get(file);
    if (reader === undefined) {
      reader = openSafetensors(file);
      readers.set(file, reader);
    }
    return reader;
  };
  return {
    whereIs: (name) => `${fileOf(name) ?? indexPath}: tensor "${name}"`,
    async read(name) {
      const file = fileOf(name);
      if (file === undefined) throw new Error(`${indexPath}: "weight_map" has no tensor "${name}"`);
      return (await readerOf(file)).read(name);
    },
    async close() {
      const opened = await Promise.allSettled(readers.values());
      await Promise.all(opened.flatMap((r) => (r.status === 'fulfilled' ? [r.value.close()] : [])));
    },
  };
}

export async function readJsonFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`${path}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: not valid JSON: ${(e as Error).message}`);
  }
}
