/**
 * A spec compiles to a plan: a DAG of steps, each keyed by the SHA-256 of the canonical JSON of
 * {kind, the kind's version, what computes it, params, input keys} — a Merkle key, so the whole plan is
 * known before anything runs, and a step whose key is in the store is done.
 *
 * A step's params hold exactly what changes its result, so arms that agree on a step share it: the
 * boost of the same model on the same data, the iteration-1 rollouts of arms that differ only in
 * training. Knobs that a step's inputs already pin (the model a rollout samples from) are inputs, not
 * params; knobs that do not matter under the chosen options (tau with uniform weighting) are left out.
 * Data files enter by content digest, not path, so moving a file reuses finished work. What computes a
 * step (see compute.ts) enters by the digests of the graphs it runs.
 */

import { isPolicyModel, isRemotePolicy, iterationCount, stopRule, type ArmSpec, type BoostSpec, type ExperimentSpec, type ModelSpec, type OptimizerSpec, type RemotePolicySpec, type TaskSpec } from '../spec/types.ts';
import { modelParams, type ModelParams, type ResolvedModel } from '../steps/models.ts';
import {
  STEP_VERSIONS,
  type BoostParams,
  type EvaluateParams,
  type ProblemSetParams,
  type RelabelParams,
  type RemoteCallSettings,
  type RemotePolicyParams,
  type RolloutParams,
  type Step,
  type StepCompute,
  type StepKind,
  type StepParams,
  type TrainParams,
} from '../steps/index.ts';
import type { TieBreak, VoteWeighting } from '../rise/metrics.ts';
import type { StopRule } from './stopping.ts';
import type { ComputeFingerprint } from './compute.ts';
import { canonicalJson, sha256Hex } from './hash.ts';

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
  /** For evaluate steps: the arm's majority-vote tie rule, which its metrics use (not part of the step). */
  tieBreak?: TieBreak;
  /** For evaluate steps: the arm's majority-vote weighting, which its metrics use (not part of the step). */
  vote?: VoteWeighting;
  /** For steps that sample from a remote policy: how this arm reaches and paces it (not part of the step). */
  remote?: RemoteCallSettings;
}

export interface ArmPlan {
  name: string;
  /** In dependency order: every step comes after its inputs. */
  steps: StepUse[];
  /** When the arm stops before its last planned iteration; absent: it runs them all. */
  stop?: StopRule;
}

export interface Plan {
  experiment: string;
  /** Every distinct step, by key. */
  steps: Record<string, Step>;
  arms: ArmPlan[];
  /** Content digest → path of every data file the plan reads, for whoever loads or ingests them. */
  files: Record<string, string>;
}

export interface PlanOptions {
  compute: ComputeFingerprint;
  /** SHA-256 of every data file a file-based task reads, by path as it appears in the spec. */
  dataDigests?: Record<string, string>;
  /** Every pretrained model of the spec, found in (or imported into) the model store, by name or path as the spec writes it. */
  models?: Record<string, ResolvedModel>;
}

export function stepKey(kind: StepKind, version: number, compute: StepCompute, params: StepParams[StepKind], inputs: readonly string[]): string {
  return sha256Hex(canonicalJson({ kind, version, compute, params, inputs }));
}

/**
 * Hashed into every seed key in place of what computes the step. These are the versions that step keys
 * carried when seeds were first derived from them (and the committed results were drawn); holding them
 * fixed keeps every finished study reproducible bit for bit, whatever computes it now.
 */
const SEED_SALT = { engine: 1, ort: '1.30.0', checkpoint: 1 };

/** A step's seed key (see `Step.seedKey`): `stepKey` with a fixed salt for what computes the step, over the inputs' seed keys. */
export function seedKey(kind: StepKind, version: number, params: StepParams[StepKind], inputSeedKeys: readonly string[]): string {
  return sha256Hex(canonicalJson({ kind, version, computeVersions: SEED_SALT, params, inputs: inputSeedKeys }));
}

/**
 * The seed of item `item` (a problem, a sample, a shuffle) of a step: a function of the arm's seed,
 * the step's seed key and the index only, so a recomputed step draws the same numbers, however its work
 * is sharded or resumed, and whatever engine computes it. A uint32.
 */
export function stepSeed(seed: number, step: Pick<Step, 'seedKey'>, item = 0): number {
  return Number.parseInt(sha256Hex(canonicalJson([seed, step.seedKey, item])).slice(0, 8), 16);
}

class PlanBuilder {
  readonly steps: Record<string, Step> = {};
  readonly files: Record<string, string> = {};
  constructor(readonly options: PlanOptions) {}

  add<K extends StepKind>(kind: K, params: StepParams[K], compute: StepCompute, inputs: string[]): string {
    const version = STEP_VERSIONS[kind];
    const key = stepKey(kind, version, compute, params, inputs);
    const seeds = seedKey(kind, version, params, inputs.map((input) => this.steps[input].seedKey));
    // A copy, so the plan never aliases the spec it came from.
    this.steps[key] ??= structuredClone({ key, seedKey: seeds, kind, version, compute, params, inputs } as Step);
    return key;
  }

  /** What identifies a problem set's content: generation knobs, or a file's digest. */
  problems(task: TaskSpec, which: 'train' | number): ProblemSetParams {
    if (task.kind === 'arithmetic') {
      const set = which === 'train' ? task.train : task.eval[which];
      const name = which === 'train' ? undefined : task.eval[which].name;
      const { count, ops, min, max, operators, seed } = set;
      // The set's name feeds the derived generation seed only when no explicit seed is given.
      return { kind: 'arithmetic', role: which === 'train' ? 'train' : 'eval', ...(seed === null && name !== undefined ? { name } : {}), count, ops, min, max, operators, seed };
    }
    const { path, count } = which === 'train' ? task.train : task.eval[which];
    const sha256 = this.options.dataDigests?.[path];
    if (sha256 === undefined) throw new Error(`plan: no content digest for data file ${path} (pass it in options.dataDigests)`);
    this.files[sha256] = path;
    return { kind: task.kind, sha256, count };
  }
}

function planArm(b: PlanBuilder, name: string, config: ArmSpec): ArmPlan {
  const steps: StepUse[] = [];
  const use = (u: StepUse) => {
    steps.push(u);
    return u.key;
  };
  const { rollout, relabel, filter, train, evaluate, task } = config;
  const { compute } = b.options;
  const reward = { kind: task.kind, unparsableReward: task.unparsableReward };
  const sampling = { temperature: rollout.temperature, topP: rollout.topP, maxTokens: rollout.maxTokens, degenerate: rollout.degenerate };
  const trainSet = b.problems(task, 'train');
  /** The model spec behind each model-producing step's key, for the graphs of the steps that read it. */
  const modelOf = new Map<string, ModelParams>();
  const lora = train.lora === null ? {} : { lora: train.lora };

  const boosted = (role: ModelRole, spec: ModelSpec, boost: BoostSpec) => {
    const model = modelParams(spec, b.options.models);
    const params = { seed: config.seed, model, boost, train: trainSet, instruction: config.instruction, ...lora } satisfies BoostParams;
    const key = use({ key: b.add('boost', params, compute.training(model, boost, train.lora), []), kind: 'boost', iteration: 0, model: role });
    modelOf.set(key, model);
    return key;
  };
  const learner = boosted('learner', config.model, config.boost);
  const usesExpert = (relabel.strategy === 'expert' && relabel.expert === null) || rollout.policy === 'expert';
  const expert = usesExpert && config.expert !== null ? boosted('expert', config.expert, config.expert.boost ?? config.boost) : null;
  const policy = isPolicyModel(rollout.policy) ? boosted('policy', rollout.policy, rollout.policy.boost ?? config.boost) : rollout.policy === 'expert' ? expert : null;
  const scoring = compute.scoring(task.kind);
  const sampler = (key: string) => ({ ...compute.sampling(modelOf.get(key)!), ...scoring });
  /** A remote policy as a sampling step uses it: what goes into its params, and how it is reached. */
  const remote = (spec: RemotePolicySpec) => {
    const { apiKeyEnv, concurrency, requestsPerMinute, timeoutSeconds, retries, budget } = spec;
    return {
      params: { kind: spec.kind, baseUrl: spec.baseUrl.replace(/\/+$/, ''), model: spec.model, n: spec.n } satisfies RemotePolicyParams,
      sampling: { ...sampling, temperature: spec.temperature ?? rollout.temperature, maxTokens: spec.maxTokens ?? rollout.maxTokens },
      settings: { apiKeyEnv, concurrency, requestsPerMinute, timeoutSeconds, retries, budget } satisfies RemoteCallSettings,
    };
  };
  const remoteRollout = isRemotePolicy(rollout.policy) ? remote(rollout.policy) : null;
  // "self" relabels with the rollout policy, remote or not.
  const remoteRelabel = relabel.strategy === 'expert' ? (relabel.expert !== null ? remote(relabel.expert) : null) : remoteRollout;

  const { tieBreak, vote, ...evaluateKnobs } = evaluate;
  const evaluateModel = (iteration: number, model: string) => {
    task.eval.forEach((set, i) => {
      const params = {
        seed: config.seed,
        task: reward,
        set: b.problems(task, i),
        // Generated evaluation sets drop the training prompts, so they depend on the training set too.
        ...(task.kind === 'arithmetic' ? { train: trainSet } : {}),
        evaluate: evaluateKnobs,
        feedback: config.feedback,
        instruction: config.instruction,
      } satisfies EvaluateParams;
      use({ key: b.add('evaluate', params, sampler(model), [model]), kind: 'evaluate', iteration, evalSet: set.name, tieBreak, vote });
    });
  };
  evaluateModel(0, learner);

  let current = learner;
  const collected: string[] = [];
  for (let iteration = 1; iteration <= iterationCount(config); iteration++) {
    // Inputs: [the model that samples attempt 1], or none for a remote policy.
    const attempt1 = policy ?? current;
    const rolloutParams = { seed: config.seed, iteration, task: reward, train: trainSet, samples: rollout.samples, ...sampling, instruction: config.instruction } satisfies RolloutParams;
    const rolloutKey = use(
      remoteRollout !== null
        ? { key: b.add('rollout', { ...rolloutParams, ...remoteRollout.sampling, policy: remoteRollout.params }, scoring, []), kind: 'rollout', iteration, remote: remoteRollout.settings }
        : { key: b.add('rollout', rolloutParams, sampler(attempt1), [attempt1]), kind: 'rollout', iteration },
    );
    // Inputs: [rollout, the model that samples the candidates], or [rollout] for a remote policy.
    const relabelParams = {
      seed: config.seed,
      task: reward,
      strategy: relabel.strategy,
      samples: relabel.samples,
      turns: rollout.turns,
      stopOnSuccess: rollout.stopOnSuccess,
      ...(rollout.stopOnSuccess ? {} : { afterSuccess: rollout.afterSuccess }),
      contextWindow: rollout.contextWindow,
      ...sampling,
      feedback: config.feedback,
      instruction: config.instruction,
    } satisfies RelabelParams;
    const relabeler = relabel.strategy === 'expert' ? expert! : attempt1;
    const relabelKey = use(
      remoteRelabel !== null
        ? { key: b.add('relabel', { ...relabelParams, ...remoteRelabel.sampling, policy: remoteRelabel.params }, scoring, [rolloutKey]), kind: 'relabel', iteration, remote: remoteRelabel.settings }
        : { key: b.add('relabel', relabelParams, sampler(relabeler), [rolloutKey, relabeler]), kind: 'relabel', iteration },
    );
    collected.push(relabelKey);
    // Inputs: the relabeled episodes of this iteration, or of every iteration so far when aggregating.
    const filterKey = use({ key: b.add('filter', filter, {}, train.aggregate ? [...collected] : [relabelKey]), kind: 'filter', iteration });
    const multiTurn = train.format === 'multiTurn';
    const optimizer = { epochs: train.epochs, lr: train.lr, batchSize: train.batchSize, warmup: train.warmup, minLrRatio: train.minLrRatio, weightDecay: train.weightDecay, clipNorm: train.clipNorm } satisfies OptimizerSpec;
    const trainParams = {
      seed: config.seed,
      weighting: train.weighting,
      ...(train.weighting === 'rwr' ? { tau: train.tau } : {}),
      format: train.format,
      normalize: train.normalize,
      // Single-turn examples are the first question alone: no earlier attempts, no retry message.
      ...(multiTurn ? { contextWindow: rollout.contextWindow, feedback: config.feedback } : {}),
      instruction: config.instruction,
      optimizer,
      ...lora,
    } satisfies TrainParams;
    // Inputs: [filtered examples, the model training starts from].
    const init = train.initFrom === 'base' ? learner : current;
    const learnerModel = modelOf.get(learner)!;
    current = use({ key: b.add('train', trainParams, compute.training(learnerModel, optimizer, train.lora), [filterKey, init]), kind: 'train', iteration });
    modelOf.set(current, learnerModel);
    evaluateModel(iteration, current);
  }
  const stop = stopRule(config);
  if (stop === null) return { name, steps };
  return { name, steps, stop: { metric: stop.metric, evalSet: stop.evalSet ?? task.eval[0].name, minGain: stop.minGain, patience: stop.patience } };
}

/** The plan of every arm of a validated spec; throws if a data file's digest is missing. */
export function planExperiment(spec: ExperimentSpec, options: PlanOptions): Plan {
  const b = new PlanBuilder(options);
  const arms = Object.entries(spec.arms).map(([name, config]) => planArm(b, name, config));
  return { experiment: spec.name, steps: b.steps, arms, files: b.files };
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

/**
 * A plan read back from JSON (a run's stored plan, a file written by `rise plan --json`), or null when
 * there is none. The plan was written by `planExperiment`; the shape check catches a file that is
 * something else.
 */
export function planFromJson(value: unknown): Plan | null {
  if (value === null || value === undefined) return null;
  const plan = value as Partial<Plan>;
  if (typeof plan.experiment !== 'string' || typeof plan.steps !== 'object' || plan.steps === null || !Array.isArray(plan.arms) || typeof plan.files !== 'object') {
    throw new Error('not a plan (expected experiment, steps, arms and files, as `rise plan --json` writes them)');
  }
  return plan as Plan;
}
