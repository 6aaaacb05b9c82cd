/**
 * The validated experiment spec: what `validateSpec` and `loadSpec` return, every default filled in.
 * Derived from the schema (schema.ts), so a knob added there appears here; test/spec/defaults.test.ts
 * writes the defaults out in full against these types.
 */

import type { Static, TObject } from '@sinclair/typebox';
import type * as S from './schema.ts';

export type { TaskKind, Operator } from '../tasks/index.ts';
export type { FileTaskKind } from './schema.ts';

/**
 * A value after validation: the schema gives every field a default unless it is required (the
 * defaults test checks this), so every optional key is filled in.
 */
export type Filled<T> = T extends readonly (infer U)[] ? Filled<U>[] : T extends object ? { [K in keyof T]-?: Filled<T[K]> } : T;

/** Arithmetic evaluation-set knobs a spec may leave null, meaning the training set's value. */
type InheritedKnob = 'ops' | 'min' | 'max' | 'operators';

export type ArithmeticSet = Filled<Static<typeof S.ArithmeticSetSchema>>;
/** Knobs the schema lets an evaluation set leave null are resolved to the training set's. */
export type ArithmeticEvalSet = Omit<Filled<Static<typeof S.ArithmeticEvalSetSchema>>, InheritedKnob> & Pick<ArithmeticSet, InheritedKnob>;
/** `path` is absolute after `loadSpec` (resolved against the spec file's directory). */
export type FileSet = Filled<Static<typeof S.FileSetSchema>>;
export type FileEvalSet = Filled<Static<typeof S.FileEvalSetSchema>>;

type ArithmeticTaskInput = Extract<S.TaskInput, { kind?: 'arithmetic' }>;
export type ArithmeticTaskSpec = Omit<Filled<ArithmeticTaskInput>, 'eval'> & { eval: ArithmeticEvalSet[] };
export type FileTaskSpec = Filled<Exclude<S.TaskInput, ArithmeticTaskInput>>;
export type TaskSpec = ArithmeticTaskSpec | FileTaskSpec;

export type BuiltinModelConfig = Filled<Static<typeof S.BuiltinConfigSchema>>;
export type ModelSpec = Filled<Static<typeof S.ModelSchema>>;
export type BoostSpec = Filled<Static<typeof S.BoostSchema>>;
export type LoraSpec = Filled<Static<typeof S.LoraSchema>>;
/** AdamW with warmup and a cosine schedule, as the boost and the iterations' training both use it. */
export type OptimizerSpec = Filled<Static<TObject<ReturnType<typeof S.optimizerKnobs>>>>;
/** A model other than the learner (expert, weak-to-strong rollout policy), boosted once then fixed. */
export type PolicyModelSpec = Filled<Static<typeof S.PolicyModelSchema>>;

/** An API endpoint that samples attempts or relabels them. */
export type RemotePolicySpec = Filled<Static<typeof S.RemotePolicySchema>>;

export type DegenerateSpec = Filled<Static<typeof S.DegenerateSchema>>;
export type RolloutPolicy = Filled<Static<typeof S.RolloutPolicySchema>>;

/** A rollout policy that is an API endpoint. */
export function isRemotePolicy(policy: RolloutPolicy): policy is RemotePolicySpec {
  return typeof policy === 'object' && policy.kind === 'openai';
}

/** A rollout policy that is a model of its own, boosted once (weak-to-strong). */
export function isPolicyModel(policy: RolloutPolicy): policy is PolicyModelSpec {
  return typeof policy === 'object' && !isRemotePolicy(policy);
}
export type RolloutSpec = Filled<Static<typeof S.RolloutSchema>>;
export type RelabelSpec = Filled<Static<typeof S.RelabelSchema>>;
export type FilterSpec = Filled<Static<typeof S.FilterSchema>>;
export type TrainSpec = Filled<Static<typeof S.TrainSchema>>;
export type EvaluateSpec = Filled<Static<typeof S.EvaluateSchema>>;

/** Everything one arm runs with: the base with the arm's overrides merged in. */
export type ArmSpec = Omit<Filled<Static<TObject<typeof S.armKnobs>>>, 'task'> & { task: TaskSpec };

/** When an arm stops before its last iteration (see src/plan/stopping.ts). */
export type StopWhenSpec = Filled<Static<typeof S.StopWhenSchema>>;

/** The iterations an arm's plan holds (`iterations` or `iterations.max`). */
export function iterationCount(arm: Pick<ArmSpec, 'iterations'>): number {
  return typeof arm.iterations === 'number' ? arm.iterations : arm.iterations.max;
}

/** The arm's early stop, or null when it runs every planned iteration. */
export function stopRule(arm: Pick<ArmSpec, 'iterations'>): StopWhenSpec | null {
  return typeof arm.iterations === 'number' ? null : arm.iterations.stopWhen;
}

/** What a run may spend before it pauses; null fields are no limit. */
export type BudgetSpec = Filled<Static<typeof S.BudgetSchema>>;

/** The arm run when a spec declares none. */
export const DEFAULT_ARM = 'base';

type ExperimentInput = Static<typeof S.EXPERIMENT_SCHEMA>;

export type ExperimentSpec = ArmSpec &
  Filled<Pick<ExperimentInput, 'name' | 'description' | 'budget' | 'seeds'>> & {
    /**
     * Every arm, resolved: the base with that arm's overrides merged in and defaults filled. A spec
     * without arms has exactly one, `DEFAULT_ARM`, equal to the base. With `seeds`, every declared arm
     * once per seed (seeds.ts).
     */
    arms: Record<string, ArmSpec>;
  };
