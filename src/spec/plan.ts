/**
 * A spec compiles to a plan: a DAG of steps, each keyed by the SHA-256 of the canonical JSON of
 * {kind, version of the kind, compute versions, params, input keys} — a Merkle key, so the whole plan
 * is known before anything runs, and a step whose key is in the store is done.
 *
 * A step's params hold exactly what changes its result, so arms that agree on a step share it: the
 * boost of the same model on the same data, the iteration-1 rollouts of arms that differ only in
 * training. Knobs that a step's inputs already pin (the model a rollout samples from) are inputs, not
 * params; knobs that do not matter under the chosen options (tau with uniform weighting) are left out.
 * Data files enter by content digest, not path, so moving a file reuses finished work.
 *
 * Pure: no I/O, no node:crypto, so workflow code may import it.
 */

import { canonicalJson, sha256Hex, type Json } from './hash.ts';
import type { ArmSpec, ArithmeticSet, BoostSpec, ExperimentSpec, FileSet, ModelSpec } from './types.ts';

export type StepKind = 'boost' | 'rollout' | 'relabel' | 'filter' | 'train' | 'evaluate';

/**
 * Bump a kind's version whenever what its step computes changes meaning (a new sampling rule, a
 * different loss, a fixed bug in a checker), so results computed under the old meaning are never reused.
 */
export const STEP_VERSIONS: Readonly<Record<StepKind, number>> = Object.freeze({
  boost: 1,
  rollout: 1,
  relabel: 1,
  filter: 1,
  train: 1,
  evaluate: 1,
});

/** Versions of what computes the steps (engine, ONNX Runtime, checkpoint format): part of every key. */
export type ComputeVersions = Record<string, string | number>;

export interface Step {
  /** 64 hex digits. */
  key: string;
  kind: StepKind;
  version: number;
  params: { [name: string]: Json };
  /** Keys of the steps whose outputs this one reads, in a kind-specific order (see `planExperiment`). */
  inputs: string[];
}

/** Which model a boost step trains: the learner, the expert, or a fixed rollout policy. */
export type ModelRole = 'learner' | 'expert' | 'policy';

/** A step's place in one arm. One step (one key) may have places in several arms. */
export interface StepUse {
  key: string;
  kind: StepKind;
  /** 0 = the boost and the boosted model's evaluation. */
  iteration: number;
  /** For boost steps. */
  model?: ModelRole;
  /** For evaluate steps. */
  evalSet?: string;
}

export interface ArmPlan {
  name: string;
  /** In dependency order: every step comes after its inputs. */
  steps: StepUse[];
}

export interface Plan {
  experiment: string;
  computeVersions: ComputeVersions;
  /** Every distinct step, by key. */
  steps: Record<string, Step>;
  arms: ArmPlan[];
  /** Content digest → path of every data file the plan reads, for whoever loads or ingests them. */
  files: Record<string, string>;
}

export interface PlanOptions {
  computeVersions: ComputeVersions;
  /** SHA-256 of every data file a file-based task reads, by path as it appears in the spec. */
  dataDigests?: Record<string, string>;
}

const SHORT_KEY_LENGTH = 12;

export function shortKey(key: string): string {
  return key.slice(0, SHORT_KEY_LENGTH);
}

export function stepKey(kind: StepKind, version: number, computeVersions: ComputeVersions, params: Json, inputs: string[]): string {
  return sha256Hex(canonicalJson({ kind, version, computeVersions, params, inputs }));
}

/**
 * The seed of item `item` (a problem, a sample, a shuffle) of a step: a function of the arm's seed,
 * the step's key and the index only, so a recomputed step draws the same numbers, however its work is
 * sharded or resumed. A uint32.
 */
export function stepSeed(seed: number, key: string, item = 0): number {
  return Number.parseInt(sha256Hex(canonicalJson([seed, key, item])).slice(0, 8), 16);
}

type Params = { [name: string]: Json };

function json<T>(value: T): Json {
  return value as unknown as Json;
}

class PlanBuilder {
  readonly steps: Record<string, Step> = {};
  readonly files: Record<string, string> = {};
  constructor(private readonly options: PlanOptions) {}

  add(kind: StepKind, params: Params, inputs: string[]): string {
    const version = STEP_VERSIONS[kind];
    const key = stepKey(kind, version, this.options.computeVersions, params, inputs);
    // A copy, so the plan never aliases the spec it came from (JSON, as structuredClone may be absent in a workflow).
    this.steps[key] ??= { key, kind, version, params: JSON.parse(JSON.stringify(params)) as Params, inputs: [...inputs] };
    return key;
  }

  /** What identifies a problem set's content: generation knobs, or a file's digest. */
  problems(config: ArmSpec, set: ArithmeticSet | FileSet, role: 'train' | 'eval', name?: string): Json {
    const { kind } = config.task;
    if (kind === 'arithmetic') {
      const { count, ops, min, max, operators, seed } = set as ArithmeticSet;
      // The set's name feeds the derived generation seed only when no explicit seed is given.
      return json({ kind, role, ...(seed === null && name !== undefined ? { name } : {}), count, ops, min, max, operators, seed });
    }
    const { path, count } = set as FileSet;
    const sha256 = this.options.dataDigests?.[path];
    if (sha256 === undefined) throw new Error(`plan: no content digest for data file ${path} (pass it in options.dataDigests)`);
    this.files[sha256] = path;
    return { kind, sha256, count };
  }
}

function boostParams(b: PlanBuilder, config: ArmSpec, model: ModelSpec, boost: BoostSpec): Params {
  return {
    seed: config.seed,
    model: json({ kind: model.kind, config: model.config }),
    boost: json(boost),
    train: b.problems(config, config.task.train, 'train'),
    instruction: config.instruction,
  };
}

function planArm(b: PlanBuilder, name: string, config: ArmSpec): ArmPlan {
  const steps: StepUse[] = [];
  const use = (u: StepUse) => {
    steps.push(u);
    return u.key;
  };
  const { rollout, relabel, filter, train, evaluate, task } = config;
  const reward = { kind: task.kind, unparsableReward: task.unparsableReward };
  const sampling = { temperature: rollout.temperature, topP: rollout.topP, maxTokens: rollout.maxTokens, degenerate: json(rollout.degenerate) };

  const learner = use({ key: b.add('boost', boostParams(b, config, config.model, config.boost), []), kind: 'boost', iteration: 0, model: 'learner' });
  const usesExpert = relabel.strategy === 'expert' || rollout.policy === 'expert';
  const expert =
    usesExpert && config.expert !== null
      ? use({ key: b.add('boost', boostParams(b, config, config.expert, config.expert.boost ?? config.boost), []), kind: 'boost', iteration: 0, model: 'expert' })
      : null;
  const policy =
    typeof rollout.policy === 'object'
      ? use({ key: b.add('boost', boostParams(b, config, rollout.policy, rollout.policy.boost ?? config.boost), []), kind: 'boost', iteration: 0, model: 'policy' })
      : rollout.policy === 'expert'
        ? expert
        : null;

  const evaluateModel = (iteration: number, model: string) => {
    for (const set of task.eval) {
      const params: Params = {
        seed: config.seed,
        task: reward,
        set: b.problems(config, set, 'eval', set.name),
        // Generated evaluation sets drop the training prompts, so they depend on the training set too.
        ...(task.kind === 'arithmetic' ? { train: b.problems(config, task.train, 'train') } : {}),
        evaluate: json(evaluate),
        feedback: config.feedback,
        instruction: config.instruction,
      };
      use({ key: b.add('evaluate', params, [model]), kind: 'evaluate', iteration, evalSet: set.name });
    }
  };
  evaluateModel(0, learner);

  let current = learner;
  const collected: string[] = [];
  for (let iteration = 1; iteration <= config.iterations; iteration++) {
    // Inputs: [the model that samples attempt 1]. The iteration is a param because a fixed policy
    // (weak-to-strong) is the same input every time, and each iteration must still draw new samples.
    const sampler = policy ?? current;
    const rolloutParams: Params = {
      seed: config.seed,
      iteration,
      task: reward,
      train: b.problems(config, task.train, 'train'),
      samples: rollout.samples,
      ...sampling,
      instruction: config.instruction,
    };
    const rolloutKey = use({
      key: b.add('rollout', rolloutParams, [sampler]),
      kind: 'rollout',
      iteration,
    });
    // Inputs: [rollout, the model that samples the candidates].
    const relabeler = relabel.strategy === 'expert' ? expert! : sampler;
    const relabelKey = use({
      key: b.add(
        'relabel',
        {
          seed: config.seed,
          task: reward,
          strategy: relabel.strategy,
          samples: relabel.samples,
          turns: rollout.turns,
          stopOnSuccess: rollout.stopOnSuccess,
          contextWindow: rollout.contextWindow,
          ...sampling,
          feedback: config.feedback,
          instruction: config.instruction,
        },
        [rolloutKey, relabeler],
      ),
      kind: 'relabel',
      iteration,
    });
    collected.push(relabelKey);
    // Inputs: the relabeled episodes of this iteration, or of every iteration so far when aggregating.
    const filterKey = use({ key: b.add('filter', json(filter) as Params, train.aggregate ? [...collected] : [relabelKey]), kind: 'filter', iteration });
    const multiTurn = train.format === 'multiTurn';
    const trainParams: Params = {
      seed: config.seed,
      weighting: train.weighting,
      ...(train.weighting === 'rwr' ? { tau: train.tau } : {}),
      format: train.format,
      normalize: train.normalize,
      // Single-turn examples are the first question alone: no earlier attempts, no retry message.
      ...(multiTurn ? { contextWindow: rollout.contextWindow, feedback: config.feedback } : {}),
      instruction: config.instruction,
      optimizer: json({
        epochs: train.epochs,
        lr: train.lr,
        batchSize: train.batchSize,
        warmup: train.warmup,
        minLrRatio: train.minLrRatio,
        weightDecay: train.weightDecay,
        clipNorm: train.clipNorm,
      }),
    };
    // Inputs: [filtered examples, the model training starts from].
    const init = train.initFrom === 'base' ? learner : current;
    current = use({ key: b.add('train', trainParams, [filterKey, init]), kind: 'train', iteration });
    evaluateModel(iteration, current);
  }
  return { name, steps };
}

/** The plan of every arm of a validated spec; throws if a data file's digest is missing. */
export function planExperiment(spec: ExperimentSpec, options: PlanOptions): Plan {
  const b = new PlanBuilder(options);
  const arms = Object.entries(spec.arms).map(([name, config]) => planArm(b, name, config));
  return { experiment: spec.name, computeVersions: { ...options.computeVersions }, steps: b.steps, arms, files: b.files };
}

/** The arms using each step, for every step. */
export function stepArms(plan: Plan): Map<string, string[]> {
  const users = new Map<string, string[]>();
  for (const arm of plan.arms) {
    for (const { key } of arm.steps) {
      const list = users.get(key) ?? [];
      if (!list.includes(arm.name)) list.push(arm.name);
      users.set(key, list);
    }
  }
  return users;
}
