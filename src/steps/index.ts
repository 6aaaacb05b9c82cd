/**
 * One contract per step kind: the params the plan writes, the outputs the activity records, and the
 * version that is part of the step's key. Everything that reads a step — the activities, `rise status`,
 * reports, exports — reads it through these types.
 *
 * Pure types and constants: workflow code may import this file.
 */

import type { BoostOutputs, BoostParams } from './boost.ts';
import { BOOST_VERSION } from './boost.ts';
import type { EvaluateOutputs, EvaluateParams } from './evaluate.ts';
import { EVALUATE_VERSION } from './evaluate.ts';
import type { FilterOutputs, FilterParams } from './filter.ts';
import { FILTER_VERSION } from './filter.ts';
import { shortKey, type StepKind } from './kinds.ts';
import type { RelabelOutputs, RelabelParams } from './relabel.ts';
import { RELABEL_VERSION } from './relabel.ts';
import type { RolloutOutputs, RolloutParams } from './rollout.ts';
import { ROLLOUT_VERSION } from './rollout.ts';
import type { TrainOutputs, TrainParams } from './train.ts';
import { TRAIN_VERSION } from './train.ts';

export { STEP_KINDS, shortKey, type StepKind } from './kinds.ts';
export type { BoostOutputs, BoostParams, EvaluateOutputs, EvaluateParams, FilterOutputs, FilterParams, RelabelOutputs, RelabelParams, RolloutOutputs, RolloutParams, TrainOutputs, TrainParams };
export type { EpisodeOutputs, SamplingParams } from './episodes.ts';
export type { FitOutputs, ModelRef } from './fit.ts';
export type { ProblemSetParams, PromptParams, RewardParams } from './problems.ts';
export type { RemoteCallSettings, RemotePolicyParams } from './remote.ts';

export interface StepParams {
  boost: BoostParams;
  rollout: RolloutParams;
  relabel: RelabelParams;
  filter: FilterParams;
  train: TrainParams;
  evaluate: EvaluateParams;
}

/** What a finished step's result row holds: its kind's outputs and the compute seconds of the attempt. */
export type StepOutputs = {
  [K in StepKind]: { boost: BoostOutputs; rollout: RolloutOutputs; relabel: RelabelOutputs; filter: FilterOutputs; train: TrainOutputs; evaluate: EvaluateOutputs }[K] & { seconds: number };
};

export const STEP_VERSIONS: Readonly<Record<StepKind, number>> = Object.freeze({
  boost: BOOST_VERSION,
  rollout: ROLLOUT_VERSION,
  relabel: RELABEL_VERSION,
  filter: FILTER_VERSION,
  train: TRAIN_VERSION,
  evaluate: EVALUATE_VERSION,
});

/** What computes a step besides its code: ONNX Runtime's version, the checkpoint format, the SHA-256 of each graph it runs. */
export type StepCompute = Record<string, string | number>;

/** One step of a plan, of kind K. */
export type Step<K extends StepKind = StepKind> = {
  [Kind in K]: {
    /** 64 hex digits: the hash of what the step computes from (everything below): its cache key. */
    key: string;
    /**
     * What the step's random numbers derive from: the hash of its kind, version, params and its inputs'
     * seed keys. It leaves out `compute`, so the same experiment under a new engine or ONNX Runtime draws
     * the same random streams (and a comparison across engines compares like with like).
     */
    seedKey: string;
    kind: Kind;
    version: number;
    compute: StepCompute;
    params: StepParams[Kind];
    /** Keys of the steps whose outputs this one reads, in a kind-specific order (see the plan). */
    inputs: string[];
  };
}[K];

/**
 * The step as a step of kind K, or an error naming both kinds (a workflow routed it to the wrong
 * activity). The one place a step is narrowed: TypeScript cannot relate `step.kind === kind` to the
 * generic K by itself.
 */
export function stepOfKind<K extends StepKind>(step: Step, kind: K): Step<K> {
  if (step.kind !== kind) throw new Error(`expected a ${kind} step; got a ${step.kind} step (${shortKey(step.key)})`);
  return step as Step<K>;
}
