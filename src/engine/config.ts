/**
 * The shape of a Llama-style decoder. Everything the graph builders, the initialiser and the
 * checkpoint format need to know about a model lives here, so a config hash names a model exactly.
 */
export interface ModelConfig {
  vocabSize: number;
  layers: number;
  dim: number;
  heads: number;
  /** Grouped-query attention: heads share `heads / kvHeads` key/value heads. */
  kvHeads: number;
  /** SwiGLU hidden width. */
  hidden: number;
  /** Longest sequence (prompt + generated) the model is trained and decoded with. */
  context: number;
  ropeTheta: number;
  normEps: number;
  tiedEmbeddings: boolean;
  /** Seed of the deterministic initialisation. */
  seed: number;
  /**
   * Architecture extensions of imported families, absent for the plain decoder so that a built-in
   * model's config (and with it every step key and seed derived from it) stays what it always was.
   */
  /** Qwen2: the Q, K and V projections carry a bias (`layers.i.bqkv`). */
  qkvBias?: true;
  /** Llama 3.1+: rotary frequencies rescaled for long contexts. */
  ropeScaling?: RopeScaling;
}

/** Llama 3's rotary frequency scaling (`rope_scaling.rope_type: "llama3"` in a Hugging Face config). */
export interface RopeScaling {
  kind: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  /** The context the model was pre-trained with before scaling. */
  originalContext: number;
}

export type ModelConfigInput = Partial<ModelConfig> & Pick<ModelConfig, 'vocabSize'>;

/** Fills defaults and checks the invariants the graphs rely on; errors name the field. */
export function resolveModelConfig(input: ModelConfigInput): ModelConfig {
  const dim = input.dim ?? 128;
  const heads = input.heads ?? 4;
  const config: ModelConfig = {
    vocabSize: input.vocabSize,
    layers: input.layers ?? 4,
    dim,
    heads,
    kvHeads: input.kvHeads ?? heads,
    // 8/3·dim rounded up to a multiple of 32, as Llama does, keeps SwiGLU's parameter count near a 4·dim MLP.
    hidden: input.hidden ?? Math.ceil((8 * dim) / 3 / 32) * 32,
    context: input.context ?? 256,
    ropeTheta: input.ropeTheta ?? 10000,
    normEps: input.normEps ?? 1e-5,
    tiedEmbeddings: input.tiedEmbeddings ?? true,
    seed: input.seed ?? 0,
    ...(input.qkvBias === true ? { qkvBias: true as const } : {}),
    ...(input.ropeScaling !== undefined ? { ropeScaling: { ...input.ropeScaling } } : {}),
  };
  const positive: (keyof ModelConfig)[] = ['vocabSize', 'layers', 'dim', 'heads', 'kvHeads', 'hidden', 'context'];
  for (const key of positive) {
    const v = config[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
      throw new Error(`model config: "${key}" must be a positive integer, got ${JSON.stringify(v)}`);
    }
  }
  if (config.dim % config.heads !== 0) {
    throw new Error(`model config: "dim" (${config.dim}) must be divisible by "heads" (${config.heads})`);
  }
  if (config.heads % config.kvHeads !== 0) {
    throw new Error(`model config: "heads" (${config.heads}) must be divisible by "kvHeads" (${config.kvHeads})`);
  }
  if ((config.dim / config.heads) % 2 !== 0) {
    throw new Error(`model config: head size dim/heads (${config.dim / config.heads}) must be even for rotary positions`);
  }
  return config;
}

export function headDim(config: ModelConfig): number {
  return config.dim / config.heads;
}
