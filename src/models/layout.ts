/**
 * Hugging Face's Llama-family tensors ("model.layers.0.self_attn.q_proj.weight", PyTorch layout) → the
 * engine's parameters (src/engine/parameters.ts). PyTorch's Linear keeps its weight as [out, in] and
 * computes x·Wᵀ; the engine multiplies x·W, so every projection is transposed, and the projections that
 * read the same input are fused along the output columns: wqkv = [Wqᵀ | Wkᵀ | Wvᵀ], w_gate_up = [Wgateᵀ | Wupᵀ].
 * Both rotary layouts are Hugging Face's "rotate half", so q and k need nothing more here; a GGUF file's
 * llama-permuted q/k are undone before they reach this module (src/models/gguf.ts).
 */
import { headDim, type ModelConfig } from '../engine/config.ts';
import { parameterSpecs } from '../engine/parameters.ts';
import { sizeOf, type NamedTensor } from '../engine/tensor.ts';

/** Where Hugging Face-named tensors come from: a safetensors checkpoint, or a GGUF file renamed. */
export interface HfTensorSource {
  /** The tensor in PyTorch layout; throws naming the file when it is absent. */
  read(name: string): Promise<NamedTensor>;
  /** The file (and the tensor's name there) that `name` is read from, for error messages. */
  whereIs(name: string): string;
}

/** How one engine parameter is made: from which Hugging Face tensors, of which shapes, by which transform. */
interface Recipe {
  sources: { name: string; shape: number[] }[];
  build(tensors: NamedTensor[]): Float32Array;
}

/**
 * The engine's parameters, in `parameterSpecs` order. Tensors are read one parameter at a time and
 * dropped once fused, so converting holds the engine's copy of the model plus one layer's projections.
 */
export async function engineParameters(config: ModelConfig, source: HfTensorSource): Promise<NamedTensor[]> {
  const out: NamedTensor[] = [];
  for (const spec of parameterSpecs(config)) {
    const recipe = recipeFor(config, spec.name);
    const tensors: NamedTensor[] = [];
    for (const { name, shape } of recipe.sources) {
      const t = await source.read(name);
      if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
        throw new Error(`${source.whereIs(name)}: shape [${t.shape}] does not match the model config, which implies [${shape}]`);
      }
      tensors.push(t);
    }
    const data = recipe.build(tensors);
    if (data.length !== sizeOf(spec.shape)) throw new Error(`layout of "${spec.name}": built ${data.length} values for shape [${spec.shape}]`);
    out.push({ name: spec.name, shape: [...spec.shape], data });
  }
  return out;
}

/** The Hugging Face tensors, with their PyTorch shapes, that the config's engine parameters are made from. */
export function hfTensorShapes(config: ModelConfig): Map<string, number[]> {
  return new Map(parameterSpecs(config).flatMap((spec) => recipeFor(config, spec.name).sources.map((s) => [s.name, s.shape] as const)));
}

function recipeFor(config: ModelConfig, name: string): Recipe {
  const { dim, hidden, vocabSize, heads, kvHeads } = config;
  const hd = headDim(config);
  const copy = (hfName: string, shape: number[]): Recipe => ({ sources: [{ name: hfName, shape }], build: ([t]) => t.data });
  const transposed = (hfName: string, shape: [number, number]): Recipe => ({
    sources: [{ name: hfName, shape }],
    build: ([t]) => fuseTransposed([t], shape[1]),
  });
  const fused = (parts: { name: string; rows: number }[], cols: number): Recipe => ({
    sources: parts.map((p) => ({ name: p.name, shape: cols === 0 ? [p.rows] : [p.rows, cols] })),
    build: (tensors) => (cols === 0 ? concat(tensors) : fuseTransposed(tensors, cols)),
  });

  if (name === 'tok_emb') return copy('model.embed_tokens.weight', [vocabSize, dim]);
  if (name === 'norm') return copy('model.norm.weight', [dim]);
  if (name === 'lm_head') return transposed('lm_head.weight', [vocabSize, dim]);
  const match = /^layers\.(\d+)\.(\w+)$/.exec(name);
  if (match === null) throw new Error(`layout: no recipe for engine parameter "${name}"`);
  const p = `model.layers.${match[1]}.`;
  const qkv = (kind: 'weight' | 'bias') => [
    { name: `${p}self_attn.q_proj.${kind}`, rows: heads * hd },
    { name: `${p}self_attn.k_proj.${kind}`, rows: kvHeads * hd },
    { name: `${p}self_attn.v_proj.${kind}`, rows: kvHeads * hd },
  ];
  switch (match[2]) {
    case 'attn_norm':
      return copy(`${p}input_layernorm.weight`, [dim]);
    case 'wqkv':
      return fused(qkv('weight'), dim);
    case 'bqkv':
      return fused(qkv('bias'), 0);
    case 'wo':
      return transposed(`${p}self_attn.o_proj.weight`, [dim, heads * hd]);
    case 'mlp_norm':
      return copy(`${p}post_attention_layernorm.weight`, [dim]);
    case 'w_gate_up':
      return fused([{ name: `${p}mlp.gate_proj.weight`, rows: hidden }, { name: `${p}mlp.up_proj.weight`, rows: hidden }], dim);
    case 'w_down':
      return transposed(`${p}mlp.down_proj.weight`, [dim, hidden]);
    default:
      throw new Error(`layout: no recipe for engine parameter "${name}"`);
  }
}

/**
 * Matrices [rowsₖ, cols] → [cols, Σ rowsₖ]: each transposed, side by side. Tiles keep both the reads and
 * the writes within a few cache lines (a plain loop strides a whole row per element on one side).
 */
export function fuseTransposed(parts: readonly NamedTensor[], cols: number): Float32Array {
  const width = parts.reduce((n, t) => n + t.shape[0], 0);
  const out = new Float32Array(cols * width);
  const TILE = 32;
  let column = 0;
  for (const t of parts) {
    const rows = t.shape[0];
    const src = t.data;
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(c0 + TILE, cols);
      for (let r0 = 0; r0 < rows; r0 += TILE) {
        const r1 = Math.min(r0 + TILE, rows);
        for (let c = c0; c < c1; c++) {
          const to = c * width + column;
          for (let r = r0; r < r1; r++) out[to + r] = src[r * cols + c];
        }
      }
    }
    column += rows;
  }
  return out;
}

function concat(parts: readonly NamedTensor[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, t) => n + t.data.length, 0));
  let at = 0;
  for (const t of parts) {
    out.set(t.data, at);
    at += t.data.length;
  }
  return out;
}
