/**
 * LoRA adapters in PEFT's format (the `peft` library's LoRA, which Hugging Face tools load on top of a
 * base model). PEFT keeps one adapter per Linear: lora_A.weight [rank, in] and lora_B.weight [out, rank],
 * computing x·Aᵀ·Bᵀ·alpha/rank. The engine's A [in, rank] and B [rank, out] compute x·A·B·alpha/rank, so
 * each is simply transposed; the fused projections need no splitting because an engine adapter already
 * belongs to one logical block (q, k, v, gate, up; see src/engine/lora.ts).
 */
import type { ModelConfig } from '../engine/config.ts';
import { loraName, loraSite, type LoraConfig, type LoraTarget } from '../engine/lora.ts';
import type { NamedTensor } from '../engine/tensor.ts';

/** The Hugging Face module each engine target adapts, below `model.layers.{i}.`. */
const MODULES: Readonly<Record<LoraTarget, string>> = {
  q: 'self_attn.q_proj',
  k: 'self_attn.k_proj',
  v: 'self_attn.v_proj',
  o: 'self_attn.o_proj',
  gate: 'mlp.gate_proj',
  up: 'mlp.up_proj',
  down: 'mlp.down_proj',
};

/** The module's short name, as PEFT's `target_modules` lists it (it matches name suffixes). */
function moduleName(target: LoraTarget): string {
  return MODULES[target].split('.')[1];
}

/** PEFT's name of a target's A or B in a causal LM (`PeftModel` wraps the model as `base_model.model`). */
export function peftTensorName(layer: number, target: LoraTarget, matrix: 'a' | 'b'): string {
  return `base_model.model.model.layers.${layer}.${MODULES[target]}.lora_${matrix === 'a' ? 'A' : 'B'}.weight`;
}

/** The adapters under PEFT's names and layout, layer by layer in target order, A before B. */
export function peftTensors(config: ModelConfig, lora: LoraConfig, adapters: readonly NamedTensor[]): NamedTensor[] {
  const byName = new Map(adapters.map((t) => [t.name, t]));
  const out: NamedTensor[] = [];
  for (let layer = 0; layer < config.layers; layer++) {
    for (const target of lora.targets) {
      const site = loraSite(config, layer, target);
      for (const [matrix, rows, cols] of [['a', site.inputs, lora.rank], ['b', lora.rank, site.size]] as const) {
        const name = loraName(layer, target, matrix);
        const t = byName.get(name);
        if (t === undefined) throw new Error(`PEFT export: adapters lack "${name}"`);
        if (t.shape.length !== 2 || t.shape[0] !== rows || t.shape[1] !== cols) {
          throw new Error(`PEFT export: adapter "${name}" has shape [${t.shape}] but the configs expect [${rows},${cols}]`);
        }
        out.push({ name: peftTensorName(layer, target, matrix), shape: [cols, rows], data: columnBlockTransposed(t.data, rows, cols, 0, cols) });
      }
    }
  }
  return out;
}

/** adapter_config.json: the fields peft's LoraConfig reads, with everything the engine does not do turned off. */
export function peftAdapterConfig(lora: LoraConfig, baseModel: string): Record<string, unknown> {
  return {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: baseModel,
    r: lora.rank,
    lora_alpha: lora.alpha,
    lora_dropout: lora.dropout,
    target_modules: lora.targets.map(moduleName),
    bias: 'none',
    fan_in_fan_out: false,
    // The engine scales by alpha/rank, PEFT's default; rsLoRA would scale by alpha/√rank.
    use_rslora: false,
    use_dora: false,
    modules_to_save: null,
    layers_to_transform: null,
    rank_pattern: {},
    alpha_pattern: {},
    init_lora_weights: true,
    inference_mode: true,
  };
}

/** Columns [start, start + size) of a row-major [rows, cols] matrix, transposed: [size, rows]. */
export function columnBlockTransposed(data: Float32Array, rows: number, cols: number, start: number, size: number): Float32Array {
  const out = new Float32Array(rows * size);
  for (let r = 0; r < rows; r++) {
    const from = r * cols + start;
    for (let c = 0; c < size; c++) out[c * rows + r] = data[from + c];
  }
  return out;
}
