/**
 * The validated experiment spec: what `validateSpec` and `loadSpec` return, every default filled in.
 * schemas/experiment.schema.json is the authority (descriptions, defaults, ranges); these types are
 * written by hand to match it, and test/spec checks that the schema's defaults produce exactly these
 * shapes, so a field added to one and not the other fails the tests.
 */

export type TaskKind = 'arithmetic' | 'gsm8k' | 'math' | 'mbpp';
export type FileTaskKind = Exclude<TaskKind, 'arithmetic'>;
export type Operator = '+' | '-' | '*';

export interface ArithmeticSet {
  count: number;
  ops: number[];
  min: number;
  max: number;
  operators: Operator[];
  /** null = derived from the experiment seed and the set's role (and name). */
  seed: number | null;
}

/** Knobs the schema lets an evaluation set leave null are resolved to the training set's. */
export interface ArithmeticEvalSet extends ArithmeticSet {
  name: string;
}

export interface FileSet {
  /** Absolute after `loadSpec` (resolved against the spec file's directory). */
  path: string;
  /** The first `count` problems of the file; null = all. */
  count: number | null;
}

export interface FileEvalSet extends FileSet {
  name: string;
}

export interface ArithmeticTaskSpec {
  kind: 'arithmetic';
  train: ArithmeticSet;
  eval: ArithmeticEvalSet[];
  unparsableReward: number;
}

export interface FileTaskSpec {
  kind: FileTaskKind;
  train: FileSet;
  eval: FileEvalSet[];
  unparsableReward: number;
}

export type TaskSpec = ArithmeticTaskSpec | FileTaskSpec;

export interface BuiltinModelConfig {
  layers: number;
  dim: number;
  heads: number;
  /** null = heads. */
  kvHeads: number | null;
  /** null = the engine's default (8/3 · dim rounded up to a multiple of 32). */
  hidden: number | null;
  context: number;
  ropeTheta: number;
  normEps: number;
  tiedEmbeddings: boolean;
  /** null = derived from the experiment seed. */
  seed: number | null;
}

export interface ModelSpec {
  kind: 'builtin';
  config: BuiltinModelConfig;
}

/** AdamW with warmup and a cosine schedule, as the boost and the iterations' training both use it. */
export interface OptimizerSpec {
  epochs: number;
  lr: number;
  batchSize: number;
  warmup: number;
  minLrRatio: number;
  weightDecay: number;
  clipNorm: number;
}

export interface BoostSpec extends OptimizerSpec {
  /** Solved problems per boost conversation (1 = single-turn SFT). */
  pack: number;
}

/** A model other than the learner (expert, weak-to-strong rollout policy), boosted once then fixed. */
export interface PolicyModelSpec extends ModelSpec {
  /** null = the experiment's top-level boost. */
  boost: BoostSpec | null;
}

export interface DegenerateSpec {
  maxWordRepeats: number;
  maxTokenChars: number;
  maxResamples: number;
}

export type RolloutPolicy = 'learner' | 'expert' | PolicyModelSpec;

export interface RolloutSpec {
  turns: number;
  samples: number;
  temperature: number;
  topP: number;
  maxTokens: number;
  stopOnSuccess: boolean;
  contextWindow: number | null;
  degenerate: DegenerateSpec;
  policy: RolloutPolicy;
}

export interface RelabelSpec {
  strategy: 'self' | 'expert';
  samples: number;
}

export interface FilterSpec {
  criteria: 'all' | 'better' | 'best' | 'success';
  onlySuccessTrajectories: boolean;
  removeDuplicates: boolean;
  removeEmpty: boolean;
}

export interface TrainSpec extends OptimizerSpec {
  weighting: 'rwr' | 'uniform';
  tau: number;
  format: 'multiTurn' | 'singleTurn';
  initFrom: 'base' | 'previous';
  aggregate: boolean;
  normalize: 'example' | 'token';
}

export interface EvaluateSpec {
  turns: number;
  parallelK: number;
  contextWindow: number | null;
  tieBreak: 'latest' | 'earliest' | 'random';
  temperature: number;
  topP: number;
  maxTokens: number;
}

/** Everything one arm runs with: the base with the arm's overrides merged in. */
export interface ArmSpec {
  seed: number;
  task: TaskSpec;
  model: ModelSpec;
  expert: PolicyModelSpec | null;
  boost: BoostSpec;
  iterations: number;
  rollout: RolloutSpec;
  relabel: RelabelSpec;
  filter: FilterSpec;
  train: TrainSpec;
  evaluate: EvaluateSpec;
  feedback: string;
  instruction: string | null;
}

/** The arm run when a spec declares none. */
export const DEFAULT_ARM = 'base';

export interface ExperimentSpec extends ArmSpec {
  name: string;
  description: string;
  /**
   * Every arm, resolved: the base with that arm's overrides merged in and defaults filled. A spec
   * without arms has exactly one, `DEFAULT_ARM`, equal to the base.
   */
  arms: Record<string, ArmSpec>;
}
