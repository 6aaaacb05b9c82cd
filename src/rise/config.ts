/**
 * Every knob of the RISE algorithm, with the defaults of RISE.md and DESIGN.md §9. The experiment spec
 * (schemas/) is the authority for validation and documentation; this type is what the algorithm code
 * reads, so a knob that exists here exists in the spec.
 */

export type RelabelStrategy = 'self' | 'expert';
export type FilterCriteria = 'all' | 'better' | 'best' | 'success';
export type Weighting = 'rwr' | 'uniform';
export type ExampleFormat = 'multiTurn' | 'singleTurn';
export type InitFrom = 'base' | 'previous';
export type TieBreak = 'latest' | 'earliest' | 'random';
/**
 * How an example's weight is spread over its target tokens. `example` (RISE.md's loss: mean over examples
 * of w_e · mean token NLL) scales each token by the dataset's mean target length over the example's own
 * length, so a long attempt does not outweigh a short one; `token` puts w_e on every target token (the
 * engine's loss then averages over tokens, so long attempts count more).
 */
export type TokenNormalization = 'example' | 'token';

/** Thresholds for samples that are dropped and resampled (RISE.md: word > 150 repeats, token > 300 chars). */
export interface DegenerateConfig {
  /** A whitespace-separated word occurring more than this many times makes a sample degenerate. */
  maxWordRepeats: number;
  /** A whitespace-separated token longer than this many characters makes a sample degenerate. */
  maxTokenChars: number;
  /**
   * Resampling rounds before giving up; a sample still degenerate after them is kept, marked, and its
   * example dropped by the filter (rule `degenerate`), so collection never loops forever.
   */
  maxResamples: number;
}

export interface RolloutConfig {
  /** Turns of data collection: one on-policy attempt plus `turns - 1` relabeled ones (reference: 2). */
  turns: number;
  temperature: number;
  topP: number;
  maxTokens: number;
  /** Stop an episode at its first correct turn (RISE.md: no trajectory teaches correct → wrong). */
  stopOnSuccess: boolean;
  /**
   * Previous attempts shown when sampling (and hence in the training examples, which must match what the
   * policy saw); null = the whole history. Matters only when `turns` > 2.
   */
  contextWindow: number | null;
  degenerate: DegenerateConfig;
}

export interface RelabelConfig {
  strategy: RelabelStrategy;
  /** Candidates per state; the best by reward is kept, the first maximum winning (reference: 16). */
  samples: number;
}

export interface FilterConfig {
  criteria: FilterCriteria;
  onlySuccessTrajectories: boolean;
  /** Drop an example identical to one already kept, and an attempt that repeats an earlier one in its episode. */
  removeDuplicates: boolean;
  /** Drop attempts that are empty after trimming whitespace. */
  removeEmpty: boolean;
}

export interface TrainConfig {
  weighting: Weighting;
  /** RWR temperature: w = exp(r / tau). */
  tau: number;
  format: ExampleFormat;
  initFrom: InitFrom;
  /** Train on the data of every iteration so far, not only the latest one. */
  aggregate: boolean;
  normalize: TokenNormalization;
  epochs: number;
  lr: number;
  batchSize: number;
}

export interface BoostConfig {
  epochs: number;
  lr: number;
  /** Training sequences per step (packed conversations when `pack` > 1). */
  batchSize: number;
  /**
   * Problems per boost conversation. 1 = single-turn SFT, as RISE.md states it. A model trained from
   * scratch on single exchanges cannot handle the longer contexts of turn 2 and later; packing unrelated
   * solved problems into one chat teaches it the format over the whole context without showing it any
   * correction (see examples.ts `boostExamples`).
   */
  pack: number;
}

export interface EvaluateConfig {
  /** Sequential turns (m1@tk, p1@tk for k ≤ turns). */
  turns: number;
  /** Independent turn-1 samples (mk@t1 for k ≤ parallelK); sample 0 also starts the sequential chain. */
  parallelK: number;
  /**
   * Sliding window: the most recent attempts kept in the context (with the instruction and the first
   * question always kept); null = the whole history. 1 = the reference (test contexts look like the
   * 2-turn training contexts).
   */
  contextWindow: number | null;
  tieBreak: TieBreak;
  temperature: number;
  topP: number;
  maxTokens: number;
}

export interface RiseConfig {
  seed: number;
  /** The fixed retry message; the question is repeated after it on its own line. */
  feedback: string;
  /** Optional system instruction rendered before the first question. */
  instruction: string | null;
  /** Reward of a response with no extractable answer (reference GSM8K: -1). */
  unparsableReward: number;
  iterations: number;
  boost: BoostConfig;
  rollout: RolloutConfig;
  relabel: RelabelConfig;
  filter: FilterConfig;
  train: TrainConfig;
  evaluate: EvaluateConfig;
}

export const DEFAULT_FEEDBACK = 'The answer is incorrect. Please try again.';

export const DEFAULT_RISE_CONFIG: Readonly<RiseConfig> = Object.freeze({
  seed: 1,
  feedback: DEFAULT_FEEDBACK,
  instruction: null,
  unparsableReward: 0,
  iterations: 2,
  boost: { epochs: 3, lr: 3e-3, batchSize: 64, pack: 1 },
  rollout: {
    turns: 2,
    temperature: 1.0,
    topP: 1.0,
    maxTokens: 64,
    stopOnSuccess: true,
    contextWindow: null,
    degenerate: { maxWordRepeats: 150, maxTokenChars: 300, maxResamples: 4 },
  },
  relabel: { strategy: 'self', samples: 16 },
  filter: { criteria: 'all', onlySuccessTrajectories: false, removeDuplicates: true, removeEmpty: true },
  train: {
    weighting: 'rwr',
    tau: 0.4,
    format: 'multiTurn',
    initFrom: 'base',
    aggregate: true,
    normalize: 'example',
    epochs: 2,
    lr: 1e-3,
    batchSize: 32,
  },
  evaluate: { turns: 5, parallelK: 5, contextWindow: 1, tieBreak: 'latest', temperature: 1.0, topP: 1.0, maxTokens: 64 },
} satisfies RiseConfig);

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object | null ? DeepPartial<NonNullable<T[K]>> | Extract<T[K], null> : T[K] };

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Overrides merged onto a base, object by object (how arms apply to a base config). Unknown keys are errors. */
export function mergeConfig<T>(base: T, override: unknown, path = ''): T {
  if (override === undefined) return structuredClone(base);
  if (!isPlainObject(base) || !isPlainObject(override)) return structuredClone(override as T);
  const out: Record<string, unknown> = structuredClone(base);
  for (const [key, value] of Object.entries(override)) {
    if (!(key in base)) throw new Error(`rise config: unknown key "${path}${key}"`);
    out[key] = mergeConfig((base as Record<string, unknown>)[key], value, `${path}${key}.`);
  }
  return out as T;
}

/** Defaults filled in and invariants checked; errors name the offending field. */
export function resolveRiseConfig(input: DeepPartial<RiseConfig> = {}): RiseConfig {
  const c = mergeConfig<RiseConfig>(DEFAULT_RISE_CONFIG as RiseConfig, input);
  const check = (ok: boolean, field: string, want: string, got: unknown) => {
    if (!ok) throw new Error(`rise config: "${field}" must be ${want}, got ${JSON.stringify(got)}`);
  };
  const posInt = (field: string, v: number) => check(Number.isInteger(v) && v > 0, field, 'a positive integer', v);
  const nonNegInt = (field: string, v: number) => check(Number.isInteger(v) && v >= 0, field, 'a non-negative integer', v);
  const positive = (field: string, v: number) => check(typeof v === 'number' && v > 0 && Number.isFinite(v), field, 'a positive number', v);
  const nonNegative = (field: string, v: number) => check(typeof v === 'number' && v >= 0 && Number.isFinite(v), field, 'a number >= 0', v);
  const probability = (field: string, v: number) => check(typeof v === 'number' && v > 0 && v <= 1, field, 'in (0, 1]', v);
  const oneOf = <T extends string>(field: string, v: T, options: readonly T[]) =>
    check(options.includes(v), field, `one of ${options.map((o) => `"${o}"`).join(', ')}`, v);
  const windowSize = (field: string, v: number | null) => check(v === null || (Number.isInteger(v) && v >= 0), field, 'a non-negative integer or null', v);

  check(Number.isSafeInteger(c.seed), 'seed', 'an integer', c.seed);
  check(typeof c.feedback === 'string', 'feedback', 'a string', c.feedback);
  check(c.instruction === null || typeof c.instruction === 'string', 'instruction', 'a string or null', c.instruction);
  check(Number.isFinite(c.unparsableReward), 'unparsableReward', 'a number', c.unparsableReward);
  nonNegInt('iterations', c.iterations);
  posInt('boost.epochs', c.boost.epochs);
  positive('boost.lr', c.boost.lr);
  posInt('boost.batchSize', c.boost.batchSize);
  posInt('boost.pack', c.boost.pack);
  posInt('rollout.turns', c.rollout.turns);
  nonNegative('rollout.temperature', c.rollout.temperature);
  probability('rollout.topP', c.rollout.topP);
  posInt('rollout.maxTokens', c.rollout.maxTokens);
  windowSize('rollout.contextWindow', c.rollout.contextWindow);
  posInt('rollout.degenerate.maxWordRepeats', c.rollout.degenerate.maxWordRepeats);
  posInt('rollout.degenerate.maxTokenChars', c.rollout.degenerate.maxTokenChars);
  nonNegInt('rollout.degenerate.maxResamples', c.rollout.degenerate.maxResamples);
  oneOf('relabel.strategy', c.relabel.strategy, ['self', 'expert']);
  posInt('relabel.samples', c.relabel.samples);
  oneOf('filter.criteria', c.filter.criteria, ['all', 'better', 'best', 'success']);
  oneOf('train.weighting', c.train.weighting, ['rwr', 'uniform']);
  positive('train.tau', c.train.tau);
  oneOf('train.format', c.train.format, ['multiTurn', 'singleTurn']);
  oneOf('train.initFrom', c.train.initFrom, ['base', 'previous']);
  oneOf('train.normalize', c.train.normalize, ['example', 'token']);
  posInt('train.epochs', c.train.epochs);
  positive('train.lr', c.train.lr);
  posInt('train.batchSize', c.train.batchSize);
  posInt('evaluate.turns', c.evaluate.turns);
  posInt('evaluate.parallelK', c.evaluate.parallelK);
  windowSize('evaluate.contextWindow', c.evaluate.contextWindow);
  oneOf('evaluate.tieBreak', c.evaluate.tieBreak, ['latest', 'earliest', 'random']);
  nonNegative('evaluate.temperature', c.evaluate.temperature);
  probability('evaluate.topP', c.evaluate.topP);
  posInt('evaluate.maxTokens', c.evaluate.maxTokens);
  return c;
}
