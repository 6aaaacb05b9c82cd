import { headDim, type ModelConfig } from './config.ts';
import { Rng } from './random.ts';
import { sizeOf, type NamedTensor } from './tensor.ts';

/**
 * One trainable tensor of the decoder. This list is the single source of truth for parameter names,
 * shapes and order: the graph builders, the initialiser, the optimizer and the checkpoint format all
 * read it, so they cannot drift apart.
 */
export interface ParameterSpec {
  name: string;
  shape: number[];
  init: 'normal' | 'ones' | 'zeros';
  /** Standard deviation of the 'normal' initialisation; 0 for 'ones'. */
  std: number;
  /** AdamW weight decay applies to matrices only; decaying norm gains would pull them towards zero. */
  decay: boolean;
}

const INIT_STD = 0.02;

export function parameterSpecs(config: ModelConfig): ParameterSpec[] {
  const { dim, hidden, vocabSize, heads, kvHeads } = config;
  const hd = headDim(config);
  // GPT-2: each residual branch's output projection is scaled so the residual stream's variance stays
  // roughly constant with depth (two branches per layer add to it).
  const residualStd = INIT_STD / Math.sqrt(2 * config.layers);
  const matrix = (name: string, rows: number, cols: number, std = INIT_STD): ParameterSpec => ({
    name,
    shape: [rows, cols],
    init: 'normal',
    std,
    decay: true,
  });
  const norm = (name: string): ParameterSpec => ({ name, shape: [dim], init: 'ones', std: 0, decay: false });
  const bias = (name: string, size: number): ParameterSpec => ({ name, shape: [size], init: 'zeros', std: 0, decay: false });

  const specs: ParameterSpec[] = [matrix('tok_emb', vocabSize, dim)];
  for (let i = 0; i < config.layers; i++) {
    const p = `layers.${i}.`;
    specs.push(
      norm(`${p}attn_norm`),
      matrix(`${p}wqkv`, dim, (heads + 2 * kvHeads) * hd),
      ...(config.qkvBias ? [bias(`${p}bqkv`, (heads + 2 * kvHeads) * hd)] : []),
      matrix(`${p}wo`, heads * hd, dim, residualStd),
      norm(`${p}mlp_norm`),
      matrix(`${p}w_gate_up`, dim, 2 * hidden),
      matrix(`${p}w_down`, hidden, dim, residualStd),
    );
  }
  specs.push(norm('norm'));
  if (!config.tiedEmbeddings) specs.push(matrix('lm_head', dim, vocabSize));
  return specs;
}

/**
 * Fresh parameters in `parameterSpecs` order. Each tensor draws from its own stream keyed by (seed, name),
 * so a tensor's values do not change when other parameters are added or removed (e.g. untying lm_head).
 */
export function initParameters(config: ModelConfig): NamedTensor[] {
  return parameterSpecs(config).map((spec) => {
    const data = new Float32Array(sizeOf(spec.shape));
    if (spec.init === 'ones') {
      data.fill(1);
    } else if (spec.init === 'normal') {
      const rng = new Rng(config.seed, 'init', spec.name);
      for (let i = 0; i < data.length; i++) data[i] = rng.normal() * spec.std;
    }
    return { name: spec.name, shape: [...spec.shape], data };
  });
}
