/**
 * A local GGUF file (llama.cpp's format) as a Llama-family model: its metadata → ModelConfig, its
 * tensors → Hugging Face names and PyTorch layout, which src/models/layout.ts turns into the engine's
 * parameters, the same path a Hugging Face checkpoint takes.
 *
 * The header is parsed by @huggingface/gguf; tensor bytes are read here with node:fs one tensor at a time
 * and dequantized (src/models/dequantize.ts). Two conventions of llama.cpp's converter are undone:
 *   - A GGUF shape lists dimensions fastest-first ([ne0, ne1] = [in, out]) over row-major data, so the
 *     PyTorch shape is the reverse, with the data as it is.
 *   - For llama-architecture files the converter permutes the rows of q and k from Hugging Face's
 *     "rotate half" rotary layout to interleaved pairs; they are permuted back.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { gguf, GGMLQuantizationType, type MetadataValue } from '@huggingface/gguf';
import { resolveModelConfig, type ModelConfig, type RopeScaling } from '../engine/config.ts';
import type { NamedTensor } from '../engine/tensor.ts';
import { dequantize, encodedBytes, isGgmlType, type GgmlType } from './dequantize.ts';
import { engineParameters, type HfTensorSource } from './layout.ts';

export interface GgufTensorInfo {
  /** The GGUF name, e.g. "blk.0.attn_q.weight". */
  name: string;
  /** PyTorch order (slowest dimension first): the reverse of the file's. */
  shape: number[];
  type: GgmlType;
  /** Absolute byte offset of the tensor's data in the file. */
  offset: number;
}

export interface GgufHeader {
  path: string;
  metadata: Record<string, MetadataValue>;
  tensors: Map<string, GgufTensorInfo>;
}

export interface GgufModel {
  architecture: string;
  config: ModelConfig;
  params: NamedTensor[];
  metadata: Record<string, MetadataValue>;
}

/** Architectures whose tensors this importer knows, and whether llama.cpp permuted their q/k rows. */
const ARCHITECTURES: Record<string, { permutedQK: boolean; qkvBias: boolean }> = {
  llama: { permutedQK: true, qkvBias: false },
  mistral: { permutedQK: true, qkvBias: false },
  qwen2: { permutedQK: false, qkvBias: true },
};

export async function readGgufHeader(path: string): Promise<GgufHeader> {
  let parsed: Awaited<ReturnType<typeof gguf>>;
  try {
    parsed = await gguf(path, { allowLocalFile: true });
  } catch (e) {
    throw new Error(`${path}: not a readable GGUF file: ${(e as Error).message}`);
  }
  if (!parsed.littleEndian) throw new Error(`${path}: big-endian GGUF files are not supported`);
  const tensors = new Map<string, GgufTensorInfo>();
  for (const info of parsed.tensorInfos) {
    const typeName = GGMLQuantizationType[info.dtype] ?? String(info.dtype);
    if (!isGgmlType(typeName)) {
      throw new Error(`${path}: tensor "${info.name}" is ${typeName}, which this importer does not decode`);
    }
    tensors.set(info.name, {
      name: info.name,
      shape: info.shape.map(Number).reverse(),
      type: typeName,
      offset: Number(parsed.tensorDataOffset + info.offset),
    });
  }
  return { path, metadata: parsed.metadata as Record<string, MetadataValue>, tensors };
}

/** Reads a GGUF model: its config from the metadata, its tensors into the engine's layout. */
export async function readGgufModel(path: string): Promise<GgufModel> {
  const header = await readGgufHeader(path);
  const { architecture, config } = ggufModelConfig(header);
  const handle = await open(path, 'r');
  try {
    const params = await engineParameters(config, ggufTensorSource(header, handle, config, ARCHITECTURES[architecture].permutedQK));
    return { architecture, config, params, metadata: header.metadata };
  } finally {
    await handle.close();
  }
}

/** The model config the metadata describes; errors name the file and the key. */
export function ggufModelConfig(header: GgufHeader): { architecture: string; config: ModelConfig } {
  const { path, metadata, tensors } = header;
  const architecture = metadata['general.architecture'];
  if (typeof architecture !== 'string' || !Object.hasOwn(ARCHITECTURES, architecture)) {
    throw new Error(
      `${path}: "general.architecture" is ${JSON.stringify(architecture)}; supported: ${Object.keys(ARCHITECTURES).join(', ')}`,
    );
  }
  const key = (name: string) => `${architecture}.${name}`;
  const number = (name: string, fallback?: number): number => {
    const v = metadata[key(name)];
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v !== 'number' && typeof v !== 'bigint') throw new Error(`${path}: "${key(name)}" must be a number, got ${describe(v)}`);
    return Number(v);
  };
  const embedding = tensors.get('token_embd.weight');
  if (embedding === undefined) throw new Error(`${path}: missing tensor "token_embd.weight"`);
  const dim = number('embedding_length');
  const heads = number('attention.head_count');
  const ropeDims = number('rope.dimension_count', dim / heads);
  if (ropeDims !== dim / heads) {
    throw new Error(`${path}: "${key('rope.dimension_count')}" is ${ropeDims}: rotary over part of a head (${dim / heads} dims) is not supported`);
  }
  if (tensors.has('rope_freqs.weight')) {
    throw new Error(`${path}: tensor "rope_freqs.weight" (per-frequency rope scaling, as llama.cpp writes Llama 3.1's) is not supported`);
  }
  const input = {
    vocabSize: number('vocab_size', embedding.shape[0]),
    layers: number('block_count'),
    dim,
    heads,
    kvHeads: number('attention.head_count_kv', heads),
    hidden: number('feed_forward_length'),
    context: number('context_length'),
    // GGUF stores these as float32; the shortest decimal that rounds to it is what the model's own
    // config said (1e-5, not 9.99999974737875e-6), so a GGUF and its source checkpoint agree exactly.
    ropeTheta: shortestFloat32(number('rope.freq_base', 10000)),
    normEps: shortestFloat32(number('attention.layer_norm_rms_epsilon')),
    tiedEmbeddings: !tensors.has('output.weight'),
    seed: 0,
    ...(ARCHITECTURES[architecture].qkvBias ? { qkvBias: true as const } : {}),
    ...ropeScalingOf(metadata, key, path),
  };
  try {
    return { architecture, config: resolveModelConfig(input) };
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}

/** Only the absence of scaling is representable: llama.cpp writes Llama 3's as a tensor, refused above. */
function ropeScalingOf(metadata: Record<string, MetadataValue>, key: (name: string) => string, path: string): { ropeScaling?: RopeScaling } {
  const kind = metadata[key('rope.scaling.type')];
  if (kind === undefined || kind === 'none') return {};
  throw new Error(`${path}: "${key('rope.scaling.type')}" is ${JSON.stringify(kind)}; only unscaled rotary positions are supported from GGUF`);
}

/** GGUF tensor name for a Hugging Face one; undefined for a name outside the Llama family's. */
export function ggufNameOf(hfName: string): string | undefined {
  const global: Record<string, string> = {
    'model.embed_tokens.weight': 'token_embd.weight',
    'model.norm.weight': 'output_norm.weight',
    'lm_head.weight': 'output.weight',
  };
  if (Object.hasOwn(global, hfName)) return global[hfName];
  const match = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(hfName);
  if (match === null) return undefined;
  const [, layer, module, kind] = match;
  const names: Record<string, string> = {
    input_layernorm: 'attn_norm',
    'self_attn.q_proj': 'attn_q',
    'self_attn.k_proj': 'attn_k',
    'self_attn.v_proj': 'attn_v',
    'self_attn.o_proj': 'attn_output',
    post_attention_layernorm: 'ffn_norm',
    'mlp.gate_proj': 'ffn_gate',
    'mlp.up_proj': 'ffn_up',
    'mlp.down_proj': 'ffn_down',
  };
  return Object.hasOwn(names, module) ? `blk.${layer}.${names[module]}.${kind}` : undefined;
}

function ggufTensorSource(header: GgufHeader, handle: FileHandle, config: ModelConfig, permutedQK: boolean): HfTensorSource {
  const { path, tensors } = header;
  const infoOf = (hfName: string) => {
    const name = ggufNameOf(hfName);
    return name === undefined ? undefined : tensors.get(name);
  };
  return {
    whereIs: (hfName) => `${path}: tensor "${ggufNameOf(hfName) ?? hfName}"`,
    async read(hfName) {
      const info = infoOf(hfName);
      if (info === undefined) throw new Error(`${path}: missing tensor "${ggufNameOf(hfName) ?? hfName}"`);
      const data = await readTensorData(handle, path, info);
      const rotaryHeads = /\.self_attn\.q_proj\./.test(hfName) ? config.heads : /\.self_attn\.k_proj\./.test(hfName) ? config.kvHeads : 0;
      return {
        name: hfName,
        shape: info.shape,
        data: permutedQK && rotaryHeads > 0 ? unpermuteRotary(data, rotaryHeads, info.shape[0], `${path}: tensor "${info.name}"`) : data,
      };
    },
  };
}

/** One tensor's values as float32, in the file's (row-major) order. */
export async function readTensorData(handle: FileHandle, path: string, info: GgufTensorInfo): Promise<Float32Array> {
  const count = info.shape.reduce((a, b) => a * b, 1);
  let length: number;
  try {
    length = encodedBytes(info.type, count);
  } catch (e) {
    throw new Error(`${path}: tensor "${info.name}": ${(e as Error).message}`);
  }
  const bytes = new Uint8Array(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(bytes, filled, length - filled, info.offset + filled);
    if (bytesRead === 0) throw new Error(`${path}: tensor "${info.name}": file ends at byte ${info.offset + filled}, inside its data`);
    filled += bytesRead;
  }
  return dequantize(info.type, bytes, count);
}

/**
 * llama.cpp's converter stores q/k rows per head as (hd/2, 2) — the pairs rotated together side by side —
 * where Hugging Face has (2, hd/2), the two halves that "rotate half" pairs. Viewing the rows as
 * [heads, hd/2, 2, rest] and swapping the middle axes restores Hugging Face's order. `rows` is heads·hd.
 */
export function unpermuteRotary(data: Float32Array, heads: number, rows: number, where: string): Float32Array {
  const half = rows / heads / 2;
  if (!Number.isInteger(half)) throw new Error(`${where}: ${rows} rows do not split into ${heads} heads of even size`);
  const rest = data.length / rows;
  const out = new Float32Array(data.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let pair = 0; pair < 2; pair++) {
        const from = (h * 2 * half + 2 * i + pair) * rest;
        const to = (h * 2 * half + pair * half + i) * rest;
        out.set(data.subarray(from, from + rest), to);
      }
    }
  }
  return out;
}

/** The shortest decimal that rounds to the same float32. */
export function shortestFloat32(x: number): number {
  for (let digits = 1; digits < 17; digits++) {
    const candidate = Number(x.toPrecision(digits));
    if (Math.fround(candidate) === Math.fround(x)) return candidate;
  }
  return x;
}

function describe(v: unknown): string {
  return typeof v === 'bigint' ? `${v}n` : JSON.stringify(v) ?? String(v);
}
