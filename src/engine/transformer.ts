/**
 * A Llama-style decoder written once, top to bottom, as graph-building code: token embedding, then per
 * layer RMSNorm → fused QKV → rotary positions → causal attention over grouped KV heads → output
 * projection, and RMSNorm → fused SwiGLU MLP; a final RMSNorm and a (tied or untied) output head.
 *
 * Two graphs read it: the full causal pass (training, evaluation loss, parity checks) and the cached
 * decode step (prefill and one-token steps). Activations stay 2-D ([B·T, D]) between attention blocks
 * so every projection is one plain MatMul, whose gradient is one MatMul too.
 */
import { headDim, type ModelConfig } from './config.ts';
import type { FloatType, Graph, Value } from './graph.ts';
import { loraName, loraScale, loraSpecs, type LoraConfig, type LoraTarget } from './lora.ts';
import type { Dim } from './shape.ts';
import { parameterSpecs } from './parameters.ts';

/** Attention logits of masked positions: large but finite, so softmax and its gradient stay NaN-free. */
export const MASKED = -1e9;

export type Params = Map<string, Value>;

/** Declares every parameter as a graph input, in `parameterSpecs` order. */
export function parameterInputs(g: Graph, config: ModelConfig, dtype: FloatType = 'float32', prefix = ''): Params {
  return new Map(parameterSpecs(config).map((s) => [s.name, g.input(prefix + s.name, dtype, s.shape)]));
}

/** Declares every parameter as a weight bound at session creation (`Graph.weights`), in `parameterSpecs` order. */
export function parameterWeights(g: Graph, config: ModelConfig, dtype: FloatType = 'float32'): Params {
  return new Map(parameterSpecs(config).map((s) => [s.name, g.weight(s.name, dtype, s.shape)]));
}

/** Low-rank adapters of a LoRA graph: their config and their inputs (named as in `loraSpecs`). */
export interface Adapters {
  lora: LoraConfig;
  p: Params;
}

/** Declares every adapter as a graph input, in `loraSpecs` order. */
export function adapterInputs(g: Graph, config: ModelConfig, lora: LoraConfig, dtype: FloatType = 'float32', prefix = ''): Params {
  return new Map(loraSpecs(config, lora).map((s) => [s.name, g.input(prefix + s.name, dtype, s.shape)]));
}

/**
 * Rotary inverse frequencies θ^(−2i/hd), i < hd/2, rescaled by Llama 3's rule when the config asks:
 * wavelengths longer than originalContext/lowFreqFactor are stretched by `factor`, shorter than
 * originalContext/highFreqFactor kept, and those between interpolated smoothly (Hugging Face's
 * `_compute_llama3_parameters`).
 */
export function rotaryFrequencies(config: ModelConfig): Float64Array {
  const hd = headDim(config);
  const inv = Float64Array.from({ length: hd / 2 }, (_, i) => config.ropeTheta ** ((-2 * i) / hd));
  const s = config.ropeScaling;
  if (s === undefined) return inv;
  const lowFreqWavelen = s.originalContext / s.lowFreqFactor;
  const highFreqWavelen = s.originalContext / s.highFreqFactor;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen > lowFreqWavelen) return f / s.factor;
    if (wavelen < highFreqWavelen) return f;
    const smooth = (s.originalContext / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return (1 - smooth) * (f / s.factor) + smooth * f;
  });
}

/**
 * Which of ONNX Runtime's fused kernels a graph uses in place of the plain ops that compute the same.
 * Inference graphs only: autodiff has no gradient rules for them.
 */
export interface Fusion {
  /** SimplifiedLayerNormalization for every RMSNorm. */
  norm: boolean;
  /** com.microsoft RotaryEmbedding for queries and keys (the decode graph, which has positions). */
  rotary: boolean;
}

export const PLAIN: Fusion = { norm: false, rotary: false };

/**
 * cos and sin tables for rotary positions ("rotate half" layout): [context, headDim] with each angle
 * twice, as the plain ops multiply them, or [context, headDim/2], as RotaryEmbedding reads them.
 */
function ropeTables(g: Graph, config: ModelConfig, dtype: FloatType, width: 'full' | 'half' = 'full'): { cos: Value; sin: Value } {
  const half = headDim(config) / 2;
  const w = width === 'full' ? 2 * half : half;
  const n = config.context * w;
  const cos = dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
  const sin = dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
  const frequencies = rotaryFrequencies(config);
  for (let pos = 0; pos < config.context; pos++) {
    for (let i = 0; i < half; i++) {
      const angle = pos * frequencies[i];
      for (const j of width === 'full' ? [i, i + half] : [i]) {
        cos[pos * w + j] = Math.cos(angle);
        sin[pos * w + j] = Math.sin(angle);
      }
    }
  }
  return {
    cos: g.constant(cos, dtype, [config.context, w], 'rope_cos'),
    sin: g.constant(sin, dtype, [config.context, w], 'rope_sin'),
  };
}

function rmsNorm(g: Graph, x: Value, weight: Value, eps: number, fusion: Fusion): Value {
  if (fusion.norm) return g.rmsNormalization(x, weight, eps);
  const meanSquare = g.reduceMean(g.mul(x, x), [-1], true);
  return g.mul(g.div(x, g.sqrt(g.add(meanSquare, g.scalar(eps, x)))), weight);
}

/** x·cos + rotate_half(x)·sin, with rotate_half([x1, x2]) = [−x2, x1] over the head dim. */
function rotary(g: Graph, x: Value, cos: Value, sin: Value): Value {
  const half = (x.shape[x.shape.length - 1] as number) / 2;
  const [x1, x2] = g.split(x, -1, [half, half]);
  const rotated = g.concat([g.neg(x2), x1], -1);
  return g.add(g.mul(x, cos), g.mul(rotated, sin));
}

/**
 * Attention of queries [B, heads, S, hd] over one or more blocks of keys/values [B, kvHeads, Tk, hd]
 * (the cache and this step's tokens, or just this step's). Query heads are grouped onto their shared
 * KV head by a free reshape, so grouped-query attention never copies keys or values; and each block
 * gets its own score MatMul, so a KV cache is read in place instead of being concatenated every step.
 * `mask` is additive, broadcastable to [B, 1, S, ΣTk].
 */
export function attention(g: Graph, q: Value, blocks: { k: Value; v: Value }[], mask: Value): Value {
  const [, heads, , hd] = q.shape as [Dim, number, Dim, number];
  const kvHeads = blocks[0].k.shape[1] as number;
  const groups = heads / kvHeads;
  // [B, heads, S, hd] → [B, kvHeads, groups·S, hd]: heads of a group are adjacent, so this is a view.
  const grouped = groups === 1 ? q : g.reshape(q, [0, kvHeads, -1, hd]);
  const scores = blocks.map((b) => g.matMul(grouped, g.transpose(b.k, [0, 1, 3, 2])));
  const joined = scores.length === 1 ? scores[0] : g.concat(scores, -1);
  const [B, , , Tk] = joined.shape;
  const keys = g.dimOf(joined, 3);
  // Scores as [B, kvHeads, groups, S, Tk] so a [.., S, Tk] mask broadcasts over the group.
  const masked =
    groups === 1
      ? g.add(joined, mask)
      : g.add(g.reshapeTo(joined, g.concat([g.ints([0, 0, groups, -1]), keys], 0), [B, kvHeads, groups, q.shape[2], Tk]), g.unsqueeze(mask, [mask.shape.length - 2]));
  const probs = g.softmax(masked, -1);
  const flat = groups === 1 ? probs : g.reshapeTo(probs, g.concat([g.ints([0, 0, -1]), keys], 0), joined.shape);
  const parts = blocks.length === 1 ? [flat] : g.split(flat, -1, blocks.map((b) => b.k.shape[2]), g.concat(blocks.map((b) => g.dimOf(b.k, 2)), 0));
  const context = parts.map((pr, i) => g.matMul(pr, blocks[i].v)).reduce((a, b) => g.add(a, b));
  return groups === 1 ? context : g.reshape(context, [0, heads, -1, hd]);
}

function silu(g: Graph, x: Value): Value {
  return g.mul(x, g.sigmoid(x));
}

/** How a layer's attention gets its keys/values and mask: the full causal pass, or a KV cache. */
export interface AttentionContext {
  /** Rotary positions applied to queries or keys [B, heads, T, hd]. */
  rotate(x: Value): Value;
  /** Additive mask broadcastable to [B, 1, T, Tk]. */
  mask: Value;
  /** The key/value blocks attended over, given this step's keys/values [B, kvHeads, T, hd]. */
  keysValues(layer: number, k: Value, v: Value): { k: Value; v: Value }[];
}

/**
 * Adds each targeted block's low-rank update (x·A)·scale·B to the blocks of a fused projection's output
 * (`sizes` on axis 1, one target or none per block); without a targeted block the output is untouched.
 */
function adapted(g: Graph, x: Value, y: Value, layer: number, blocks: [LoraTarget, number][], adapters: Adapters | undefined): Value {
  const targeted = blocks.filter(([t]) => adapters?.lora.targets.includes(t));
  if (adapters === undefined || targeted.length === 0) return y;
  const scale = g.scalar(loraScale(adapters.lora), x);
  const delta = (t: LoraTarget, out: Value) =>
    g.add(out, g.matMul(g.mul(g.matMul(x, adapters.p.get(loraName(layer, t, 'a'))!), scale), adapters.p.get(loraName(layer, t, 'b'))!));
  if (blocks.length === 1) return delta(blocks[0][0], y);
  const parts = g.split(y, 1, blocks.map(([, size]) => size));
  return g.concat(parts.map((part, j) => (targeted.includes(blocks[j]) ? delta(blocks[j][0], part) : part)), 1);
}

/** The decoder body: token ids [B, T] → final hidden states [B·T, D]. */
export function decoder(g: Graph, config: ModelConfig, p: Params, tokens: Value, attn: AttentionContext, adapters?: Adapters, fusion: Fusion = PLAIN): Value {
  const { dim, heads, kvHeads } = config;
  const hd = headDim(config);
  const qkvHeads = heads + 2 * kvHeads;
  const scale = g.scalar(1 / Math.sqrt(hd), p.get('norm')!);
  const qkvShape = g.concat([g.shapeOf(tokens), g.ints([qkvHeads, hd])], 0);
  const qkvBlocks: [LoraTarget, number][] = [['q', heads * hd], ['k', kvHeads * hd], ['v', kvHeads * hd]];
  const gateUpBlocks: [LoraTarget, number][] = [['gate', config.hidden], ['up', config.hidden]];

  let x = g.reshape(g.gather(p.get('tok_emb')!, tokens), [-1, dim]);
  for (let i = 0; i < config.layers; i++) {
    const w = (name: string) => p.get(`layers.${i}.${name}`)!;

    // Attention block: one MatMul for Q, K and V, then [B, T, h, hd] → [B, h, T, hd].
    const h = rmsNorm(g, x, w('attn_norm'), config.normEps, fusion);
    let projected = adapted(g, h, g.matMul(h, w('wqkv')), i, qkvBlocks, adapters);
    if (config.qkvBias) projected = g.add(projected, w('bqkv'));
    const qkv = g.transpose(g.reshapeTo(projected, qkvShape, [tokens.shape[0], tokens.shape[1], qkvHeads, hd]), [0, 2, 1, 3]);
    const [q0, k0, v0] = g.split(qkv, 1, [heads, kvHeads, kvHeads]);
    // Scaling q rather than the scores touches hd values per query instead of Tk.
    const q = g.mul(attn.rotate(q0), scale);
    const context = attention(g, q, attn.keysValues(i, attn.rotate(k0), v0), attn.mask);
    const merged = g.reshape(g.transpose(context, [0, 2, 1, 3]), [-1, heads * hd]);
    x = g.add(x, adapted(g, merged, g.matMul(merged, w('wo')), i, [['o', dim]], adapters));

    // MLP block: one MatMul for SwiGLU's gate and up projections.
    const m = rmsNorm(g, x, w('mlp_norm'), config.normEps, fusion);
    const [gate, up] = g.split(adapted(g, m, g.matMul(m, w('w_gate_up')), i, gateUpBlocks, adapters), 1, [config.hidden, config.hidden]);
    const gated = g.mul(silu(g, gate), up);
    x = g.add(x, adapted(g, gated, g.matMul(gated, w('w_down')), i, [['down', dim]], adapters));
  }
  return rmsNorm(g, x, p.get('norm')!, config.normEps, fusion);
}

/** Output head: hidden [N, D] → logits [N, V], through the embedding table when tied. */
export function outputHead(g: Graph, config: ModelConfig, p: Params, hidden: Value): Value {
  const head = config.tiedEmbeddings ? g.transpose(p.get('tok_emb')!, [1, 0]) : p.get('lm_head')!;
  return g.matMul(hidden, head);
}

/** The full causal pass over tokens [B, T]: final hidden states [B·T, D] (`outputHead` makes logits). */
export function causalHidden(g: Graph, config: ModelConfig, p: Params, tokens: Value, adapters?: Adapters, fusion: Fusion = PLAIN): Value {
  const dtype = p.get('norm')!.dtype as FloatType;
  const { cos, sin } = ropeTables(g, config, dtype);
  const T = g.dimOf(tokens, 1);
  // Causal mask [T, T]: 0 on and below the diagonal, MASKED above it.
  const square = g.concat([T, T], 0);
  const upper = g.trilu(g.onesOfShape(square, dtype, [tokens.shape[1], tokens.shape[1]]), true, 1);
  const mask = g.mul(upper, g.scalar(MASKED, dtype));
  const cosT = g.slice(cos, 0, 0, T, tokens.shape[1]);
  const sinT = g.slice(sin, 0, 0, T, tokens.shape[1]);
  return decoder(
    g,
    config,
    p,
    tokens,
    {
      rotate: (x) => rotary(g, x, cosT, sinT),
      mask,
      keysValues: (_layer, k, v) => [{ k, v }],
    },
    adapters,
    fusion,
  );
}

/** The full causal pass over tokens [B, T]: logits [B·T, V]. */
export function causalLogits(g: Graph, config: ModelConfig, p: Params, tokens: Value, adapters?: Adapters): Value {
  return outputHead(g, config, p, causalHidden(g, config, p, tokens, adapters));
}

export interface DecodeInputs {
  tokens: Value;
  positions: Value;
  mask: Value;
  pastKeys: Value[];
  pastValues: Value[];
  /** Which of the step's B·S tokens (flat, row-major) get logits: a prefill needs each prompt's last only. */
  logitRows: Value;
}

/**
 * One cached decode step over S new tokens per row (S = prompt length for prefill, 1 afterwards).
 * Keys/values of past tokens come in as [B, kvHeads, P, hd] per layer; this step's keys/values go out
 * as [B, kvHeads, S, hd] and the caller writes them into its cache, so the cache itself is never copied
 * through the graph. `mask` [B, 1, S, P + S] says which cached and new positions each token sees.
 * Logits come out only for `logitRows`: over a 49k vocabulary the output head and its [B·S, V] output were
 * about 40 % of a prefill's time, for logits nobody reads but the last of each prompt.
 */
export function decodeStep(g: Graph, config: ModelConfig, p: Params, inputs: DecodeInputs, fusion: Fusion = PLAIN): { logits: Value; keys: Value[]; values: Value[] } {
  const dtype = p.get('norm')!.dtype as FloatType;
  const keys: Value[] = [];
  const values: Value[] = [];
  const hidden = decoder(g, config, p, inputs.tokens, {
    rotate: rotation(g, config, dtype, inputs.positions, fusion),
    mask: inputs.mask,
    keysValues: (layer, k, v) => {
      keys.push(k);
      values.push(v);
      return [{ k: inputs.pastKeys[layer], v: inputs.pastValues[layer] }, { k, v }];
    },
  }, undefined, fusion);
  return { logits: outputHead(g, config, p, g.gather(hidden, inputs.logitRows)), keys, values };
}

/** Rotary positions for queries/keys [B, heads, S, hd] at `positions` [B, S]; the tables are gathered once for all layers. */
function rotation(g: Graph, config: ModelConfig, dtype: FloatType, positions: Value, fusion: Fusion): (x: Value) => Value {
  if (fusion.rotary) {
    const { cos, sin } = ropeTables(g, config, dtype, 'half');
    return (x) => g.rotaryEmbedding(x, positions, cos, sin);
  }
  const { cos, sin } = ropeTables(g, config, dtype);
  const cosP = g.unsqueeze(g.gather(cos, positions), [1]);
  const sinP = g.unsqueeze(g.gather(sin, positions), [1]);
  return (x) => rotary(g, x, cosP, sinP);
}
