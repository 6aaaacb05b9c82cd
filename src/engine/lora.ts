/**
 * LoRA: low-rank adapters on the decoder's projections. A targeted projection W [in, out] computes
 * x·W + (x·A·B)·alpha/rank with A [in, rank] and B [rank, out]; B starts at zero, so an adapted model
 * starts equal to its base. Training moves only A and B; `mergeLora` folds them into W for the plain
 * forward and decode graphs.
 *
 * The fused projections are adapted per logical block: q, k and v are column blocks of `wqkv`, gate and
 * up of `w_gate_up`, so an adapter means what it means in a Hugging Face model with separate matrices.
 */
import { headDim, type ModelConfig } from './config.ts';
import type { ParameterSpec } from './parameters.ts';
import { Rng } from './random.ts';
import { sizeOf, type NamedTensor } from './tensor.ts';

export const LORA_TARGETS = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

export interface LoraConfig {
  rank: number;
  alpha: number;
  /** In LORA_TARGETS order, without repeats (so equal configs serialize, and hash, equally). */
  targets: LoraTarget[];
  /**
   * Must be 0: adapter dropout is not implemented. A random mask would have to be fed by the trainer
   * from a seeded stream to keep training bit-reproducible, and is left out until a spec needs it.
   */
  dropout: number;
}

/** Checks every field (errors name it) and puts the targets in canonical order. */
export function resolveLoraConfig(input: LoraConfig): LoraConfig {
  const where = 'lora config';
  if (!Number.isInteger(input.rank) || input.rank <= 0) throw new Error(`${where}: "rank" must be a positive integer, got ${JSON.stringify(input.rank)}`);
  if (typeof input.alpha !== 'number' || !Number.isFinite(input.alpha) || input.alpha <= 0) {
    throw new Error(`${where}: "alpha" must be a positive number, got ${JSON.stringify(input.alpha)}`);
  }
  if (!Array.isArray(input.targets) || input.targets.length === 0) throw new Error(`${where}: "targets" must name at least one of ${LORA_TARGETS.join(', ')}`);
  for (const t of input.targets) {
    if (!(LORA_TARGETS as readonly string[]).includes(t)) throw new Error(`${where}: "targets" has unknown projection ${JSON.stringify(t)} (known: ${LORA_TARGETS.join(', ')})`);
  }
  if (new Set(input.targets).size !== input.targets.length) throw new Error(`${where}: "targets" repeats a projection: ${JSON.stringify(input.targets)}`);
  if (input.dropout !== 0) throw new Error(`${where}: "dropout" must be 0 (LoRA dropout is not implemented), got ${JSON.stringify(input.dropout)}`);
  return { rank: input.rank, alpha: input.alpha, targets: LORA_TARGETS.filter((t) => input.targets.includes(t)), dropout: 0 };
}

export function loraScale(lora: LoraConfig): number {
  return lora.alpha / lora.rank;
}

/** Where a target's output lives: a column block [start, start + size) of a base parameter. */
export interface LoraSite {
  param: string;
  inputs: number;
  start: number;
  size: number;
}

export function loraSite(config: ModelConfig, layer: number, target: LoraTarget): LoraSite {
  const { dim, heads, kvHeads, hidden } = config;
  const hd = headDim(config);
  const p = `layers.${layer}.`;
  switch (target) {
    case 'q': return { param: `${p}wqkv`, inputs: dim, start: 0, size: heads * hd };
    case 'k': return { param: `${p}wqkv`, inputs: dim, start: heads * hd, size: kvHeads * hd };
    case 'v': return { param: `${p}wqkv`, inputs: dim, start: (heads + kvHeads) * hd, size: kvHeads * hd };
    case 'o': return { param: `${p}wo`, inputs: heads * hd, start: 0, size: dim };
    case 'gate': return { param: `${p}w_gate_up`, inputs: dim, start: 0, size: hidden };
    case 'up': return { param: `${p}w_gate_up`, inputs: dim, start: hidden, size: hidden };
    case 'down': return { param: `${p}w_down`, inputs: hidden, start: 0, size: dim };
  }
}

export function loraName(layer: number, target: LoraTarget, matrix: 'a' | 'b'): string {
  return `lora.layers.${layer}.${target}.${matrix}`;
}

/**
 * The adapters, layer by layer in target order, A before B: the single source of their names, shapes
 * and order (graphs, initialiser, optimizer and checkpoints read it). A is normal with the variance of
 * the usual LoRA initialisation (Kaiming-uniform with a = √5: uniform on ±1/√in, variance 1/(3·in)).
 */
export function loraSpecs(config: ModelConfig, lora: LoraConfig): ParameterSpec[] {
  const specs: ParameterSpec[] = [];
  for (let i = 0; i < config.layers; i++) {
    for (const t of lora.targets) {
      const site = loraSite(config, i, t);
      specs.push(
        { name: loraName(i, t, 'a'), shape: [site.inputs, lora.rank], init: 'normal', std: 1 / Math.sqrt(3 * site.inputs), decay: true },
        { name: loraName(i, t, 'b'), shape: [lora.rank, site.size], init: 'zeros', std: 0, decay: true },
      );
    }
  }
  return specs;
}

/** Fresh adapters in `loraSpecs` order; each A draws from its own stream keyed by (seed, name). */
export function initLoraAdapters(config: ModelConfig, lora: LoraConfig, seed: number): NamedTensor[] {
  return loraSpecs(config, lora).map((spec) => {
    const data = new Float32Array(sizeOf(spec.shape));
    if (spec.init === 'normal') {
      const rng = new Rng(seed, 'lora', spec.name);
      for (let i = 0; i < data.length; i++) data[i] = rng.normal() * spec.std;
    }
    return { name: spec.name, shape: [...spec.shape], data };
  });
}

/**
 * Base parameters with each adapter folded in: W[:, block] += (A·B)·alpha/rank, summed in float64 and
 * rounded once. Tensors without an adapter are returned as they are (shared, not copied).
 */
export function mergeLora(base: NamedTensor[], adapters: NamedTensor[], config: ModelConfig, lora: LoraConfig): NamedTensor[] {
  const byName = new Map(adapters.map((t) => [t.name, t]));
  const specs = loraSpecs(config, lora);
  for (const s of specs) {
    const t = byName.get(s.name);
    if (!t) throw new Error(`mergeLora: adapters lack "${s.name}"`);
    if (t.shape.length !== s.shape.length || t.shape.some((d, i) => d !== s.shape[i])) {
      throw new Error(`mergeLora: adapter "${s.name}" has shape [${t.shape}] but the configs expect [${s.shape}]`);
    }
  }
  if (adapters.length !== specs.length) throw new Error(`mergeLora: ${adapters.length} adapters given, the configs declare ${specs.length}`);
  const scale = loraScale(lora);
  const sites = new Map<string, { site: LoraSite; a: NamedTensor; b: NamedTensor }[]>();
  for (let i = 0; i < config.layers; i++) {
    for (const t of lora.targets) {
      const site = loraSite(config, i, t);
      const list = sites.get(site.param) ?? [];
      list.push({ site, a: byName.get(loraName(i, t, 'a'))!, b: byName.get(loraName(i, t, 'b'))! });
      sites.set(site.param, list);
    }
  }
  return base.map((w) => {
    const list = sites.get(w.name);
    if (!list) return w;
    const [rows, cols] = w.shape;
    const delta = new Float64Array(rows * cols);
    for (const { site, a, b } of list) {
      const r = lora.rank;
      for (let i = 0; i < rows; i++) {
        for (let k = 0; k < r; k++) {
          const aik = a.data[i * r + k];
          if (aik === 0) continue;
          const row = i * cols + site.start;
          const bRow = k * site.size;
          for (let j = 0; j < site.size; j++) delta[row + j] += aik * b.data[bRow + j];
        }
      }
    }
    const data = new Float32Array(rows * cols);
    for (let i = 0; i < data.length; i++) data[i] = w.data[i] + delta[i] * scale;
    return { name: w.name, shape: [...w.shape], data };
  });
}
