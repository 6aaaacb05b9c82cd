/**
 * A model out of rise, in the formats Hugging Face tools load: a LoRA checkpoint as a PEFT adapter
 * (src/models/peft.ts) over its stored base, or any model — a stored one, a full checkpoint, a LoRA
 * checkpoint merged into its base — as a Hugging Face directory (config.json, model.safetensors in F32
 * with PyTorch's [out, in] layout, tokenizer.json, tokenizer_config.json, generation_config.json) that
 * transformers loads and `rise model import` turns back into the same parameters.
 *
 * The directory is written beside its place and renamed into it, so it appears whole or not at all.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { loadCheckpoint, type Checkpoint } from '../engine/checkpoint.ts';
import { headDim, type ModelConfig } from '../engine/config.ts';
import { mergeLora } from '../engine/lora.ts';
import { writeSafetensors } from '../engine/safetensors.ts';
import type { NamedTensor } from '../engine/tensor.ts';
import type { HfTokenizerJSON, Tokenizer } from '../engine/tokenizer.ts';
import { columnBlockTransposed, peftAdapterConfig, peftTensors } from './peft.ts';
import { findModel, loadStoredModel, modelsHome, ModelStoreError, type StoredModel } from './store.ts';

export interface ExportOptions {
  /** Write a LoRA checkpoint as a full model, its adapters merged into the base, instead of a PEFT adapter. */
  merged?: boolean;
  /** The model store (default: modelsHome()). */
  home?: string;
}

export interface ExportResult {
  dir: string;
  format: 'peft' | 'huggingface';
  /** The files written, sorted. */
  files: string[];
}

/** A file of the exported directory: JSON, or tensors for a safetensors file. */
type ExportFile = { json: unknown } | { tensors: NamedTensor[] };

/** `ref` is a checkpoint directory or a model store name or digest; `out` must not exist or be empty. */
export async function exportModel(ref: string, out: string, options: ExportOptions = {}): Promise<ExportResult> {
  const home = options.home ?? modelsHome();
  const target = resolve(out);
  refuseOccupied(target);
  const { format, files } = await exportFiles(ref, options.merged === true, home);
  await writeDirectory(target, files);
  return { dir: target, format, files: [...files.keys()].sort() };
}

async function exportFiles(ref: string, merged: boolean, home: string): Promise<{ format: ExportResult['format']; files: Map<string, ExportFile> }> {
  if (!(existsSync(ref) && statSync(ref).isDirectory())) {
    // Store names hold no '/', so this was meant as a checkpoint directory.
    if (ref.includes('/')) throw new Error(`${resolve(ref)}: no such checkpoint directory`);
    const stored = findModel(home, ref);
    const model = await loadStoredModel(home, stored.card.digest);
    const where = `model "${ref}"`;
    return { format: 'huggingface', files: huggingFaceFiles(model.config, model.params, model.tokenizer, model.card.chat.stop, where) };
  }
  const dir = resolve(ref);
  const where = `checkpoint ${dir}`;
  const checkpoint = await readCheckpointDir(dir);
  const base = baseOf(checkpoint, dir, home);
  const stop = base?.card.chat.stop ?? [];
  if (checkpoint.lora === undefined) {
    return { format: 'huggingface', files: huggingFaceFiles(checkpoint.config, checkpoint.params, checkpoint.tokenizer, stop, where) };
  }
  // baseOf has refused a LoRA checkpoint without a stored base.
  const stored = base!;
  if (merged) {
    const weights = await loadStoredModel(home, stored.card.digest);
    const params = mergeLora(weights.params, checkpoint.params, checkpoint.config, checkpoint.lora);
    return { format: 'huggingface', files: huggingFaceFiles(checkpoint.config, params, checkpoint.tokenizer, stop, where) };
  }
  const files = new Map<string, ExportFile>([
    ['adapter_model.safetensors', { tensors: peftTensors(checkpoint.config, checkpoint.lora, checkpoint.params) }],
    ['adapter_config.json', { json: peftAdapterConfig(checkpoint.lora, stored.names[0] ?? stored.card.source.file) }],
  ]);
  return { format: 'peft', files };
}

async function readCheckpointDir(dir: string): Promise<Checkpoint> {
  if (!existsSync(join(dir, 'config.json'))) {
    throw new Error(`${dir}: not a rise checkpoint (no config.json); give a checkpoint directory (.rise/models/<step key>/g<n>) or a model store name`);
  }
  return loadCheckpoint(dir);
}

/** The stored model a checkpoint derives from (meta.json "base"), which must be in the store for a LoRA checkpoint. */
function baseOf(checkpoint: Checkpoint, dir: string, home: string): StoredModel | null {
  const where = `checkpoint ${dir}`;
  const base = checkpoint.meta?.base;
  if (base === undefined) {
    if (checkpoint.lora !== undefined) throw new ModelStoreError(`${where}: holds LoRA adapters but names no base model (meta.json "base")`);
    return null;
  }
  if (typeof base !== 'string' || !/^[0-9a-f]{64}$/.test(base)) throw new ModelStoreError(`${where}: meta.json "base" must be a model digest, got ${JSON.stringify(base)}`);
  try {
    return findModel(home, base);
  } catch (e) {
    if (!(e instanceof ModelStoreError)) throw e;
    throw new ModelStoreError(`${where}: its base model ${base.slice(0, 12)} (meta.json "base") is not in the model store ${home}; pull or import it on this machine`);
  }
}

/** What transformers' AutoModelForCausalLM and AutoTokenizer read, and `rise model import` reads back. */
function huggingFaceFiles(config: ModelConfig, params: readonly NamedTensor[], tokenizer: Tokenizer, stop: readonly string[], where: string): Map<string, ExportFile> {
  const description = tokenizer.toJSON();
  if (description.kind !== 'huggingface') {
    throw new Error(`${where}: its tokenizer is rise's char tokenizer, which Hugging Face tools cannot load; only models with a Hugging Face tokenizer export`);
  }
  const special = tokenizer.special;
  // A stop string that is not one token cannot be a generation eos id; the chat template still names it.
  const stopIds = stop.map((s) => tokenizer.encode(s)).filter((ids) => ids.length === 1).map(([id]) => id);
  const eosIds = stopIds.length > 0 ? [...new Set(stopIds)] : [special.eos];
  return new Map<string, ExportFile>([
    ['config.json', { json: hfConfig(config, special) }],
    ['generation_config.json', { json: { bos_token_id: special.bos, eos_token_id: eosIds.length === 1 ? eosIds[0] : eosIds, pad_token_id: special.pad } }],
    ['model.safetensors', { tensors: hfTensors(config, params) }],
    ['tokenizer.json', { json: description.tokenizer }],
    ['tokenizer_config.json', { json: tokenizerConfig(description, config) }],
  ]);
}

/**
 * The engine config as a Hugging Face config.json. q/k/v biases are Qwen2's (Llama's attention_bias would
 * add an o_proj bias the engine has no place for), so they decide the architecture; a Mistral import is a
 * Llama whose context already ends at its sliding window. Rotary settings use transformers 4's keys,
 * which transformers 5 still reads.
 */
export function hfConfig(config: ModelConfig, special: Tokenizer['special']): Record<string, unknown> {
  const qwen2 = config.qkvBias === true;
  const scaling = config.ropeScaling;
  return {
    architectures: [qwen2 ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM'],
    model_type: qwen2 ? 'qwen2' : 'llama',
    vocab_size: config.vocabSize,
    hidden_size: config.dim,
    intermediate_size: config.hidden,
    num_hidden_layers: config.layers,
    num_attention_heads: config.heads,
    num_key_value_heads: config.kvHeads,
    head_dim: headDim(config),
    hidden_act: 'silu',
    max_position_embeddings: config.context,
    rms_norm_eps: config.normEps,
    rope_theta: config.ropeTheta,
    rope_scaling:
      scaling === undefined
        ? null
        : {
            rope_type: 'llama3',
            factor: scaling.factor,
            low_freq_factor: scaling.lowFreqFactor,
            high_freq_factor: scaling.highFreqFactor,
            original_max_position_embeddings: scaling.originalContext,
          },
    tie_word_embeddings: config.tiedEmbeddings,
    attention_bias: qwen2,
    ...(qwen2 ? { use_sliding_window: false, sliding_window: null } : { mlp_bias: false }),
    bos_token_id: special.bos,
    eos_token_id: special.eos,
    pad_token_id: special.pad,
    dtype: 'float32',
  };
}

/** The engine's parameters under Hugging Face names, in PyTorch's [out, in] layout, fused projections split. */
export function hfTensors(config: ModelConfig, params: readonly NamedTensor[]): NamedTensor[] {
  const { dim, hidden, heads, kvHeads } = config;
  const hd = headDim(config);
  const byName = new Map(params.map((p) => [p.name, p]));
  const get = (name: string, shape: number[]): NamedTensor => {
    const p = byName.get(name);
    if (p === undefined) throw new Error(`export: parameters lack "${name}"`);
    if (p.shape.length !== shape.length || p.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`export: parameter "${name}" has shape [${p.shape}] but the model config implies [${shape}]`);
    }
    return p;
  };
  const copy = (hfName: string, name: string, shape: number[]): NamedTensor => ({ name: hfName, shape: [...shape], data: get(name, shape).data });
  /** Column blocks of an engine matrix [rows, Σ size], each transposed into a PyTorch weight [size, rows]. */
  const split = (name: string, rows: number, blocks: { hfName: string; size: number }[]): NamedTensor[] => {
    const cols = blocks.reduce((n, b) => n + b.size, 0);
    const w = get(name, [rows, cols]);
    let start = 0;
    return blocks.map(({ hfName, size }) => {
      const data = columnBlockTransposed(w.data, rows, cols, start, size);
      start += size;
      return { name: hfName, shape: [size, rows], data };
    });
  };

  const out: NamedTensor[] = [copy('model.embed_tokens.weight', 'tok_emb', [config.vocabSize, dim])];
  for (let i = 0; i < config.layers; i++) {
    const e = `layers.${i}.`;
    const h = `model.layers.${i}.`;
    const qkv = [
      { name: 'q_proj', size: heads * hd },
      { name: 'k_proj', size: kvHeads * hd },
      { name: 'v_proj', size: kvHeads * hd },
    ];
    out.push(copy(`${h}input_layernorm.weight`, `${e}attn_norm`, [dim]));
    out.push(...split(`${e}wqkv`, dim, qkv.map((b) => ({ hfName: `${h}self_attn.${b.name}.weight`, size: b.size }))));
    if (config.qkvBias) {
      const bias = get(`${e}bqkv`, [(heads + 2 * kvHeads) * hd]);
      let start = 0;
      for (const b of qkv) {
        out.push({ name: `${h}self_attn.${b.name}.bias`, shape: [b.size], data: bias.data.slice(start, start + b.size) });
        start += b.size;
      }
    }
    out.push(...split(`${e}wo`, heads * hd, [{ hfName: `${h}self_attn.o_proj.weight`, size: dim }]));
    out.push(copy(`${h}post_attention_layernorm.weight`, `${e}mlp_norm`, [dim]));
    out.push(...split(`${e}w_gate_up`, dim, [{ hfName: `${h}mlp.gate_proj.weight`, size: hidden }, { hfName: `${h}mlp.up_proj.weight`, size: hidden }]));
    out.push(...split(`${e}w_down`, hidden, [{ hfName: `${h}mlp.down_proj.weight`, size: dim }]));
  }
  out.push(copy('model.norm.weight', 'norm', [dim]));
  // Tied embeddings: transformers ties lm_head to embed_tokens itself (tie_word_embeddings).
  if (!config.tiedEmbeddings) out.push(...split('lm_head', dim, [{ hfName: 'lm_head.weight', size: config.vocabSize }]));
  return out;
}

/** PreTrainedTokenizerFast runs tokenizer.json as it is; the chat template and special tokens live here. */
function tokenizerConfig(description: HfTokenizerJSON, config: ModelConfig): Record<string, unknown> {
  const { bos, eos, pad } = description.special;
  return {
    tokenizer_class: 'PreTrainedTokenizerFast',
    ...(bos === null ? {} : { bos_token: bos }),
    eos_token: eos,
    pad_token: pad,
    ...(description.chatTemplate === null ? {} : { chat_template: description.chatTemplate }),
    model_max_length: config.context,
    clean_up_tokenization_spaces: false,
  };
}

function refuseOccupied(target: string): void {
  if (!existsSync(target)) return;
  if (!statSync(target).isDirectory()) throw new Error(`--out ${target}: exists and is not a directory`);
  if (readdirSync(target).length > 0) throw new Error(`--out ${target}: exists and is not empty; export into a new directory`);
}

/** Builds the directory beside the target and renames it in: rename replaces only an absent or empty directory. */
async function writeDirectory(target: string, files: ReadonlyMap<string, ExportFile>): Promise<void> {
  await mkdir(dirname(target), { recursive: true });
  const temp = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  await mkdir(temp);
  try {
    for (const [name, file] of files) {
      const path = join(temp, name);
      if ('tensors' in file) await writeSafetensors(path, file.tensors, { format: 'pt' });
      else await writeFile(path, `${JSON.stringify(file.json, null, 2)}\n`);
    }
    try {
      await rename(temp, target);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') throw new Error(`--out ${target}: was filled while exporting; export into a new directory`);
      throw e;
    }
  } catch (e) {
    await rm(temp, { recursive: true, force: true });
    throw e;
  }
}
