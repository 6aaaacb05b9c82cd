/**
 * Step params (as src/spec/plan.ts writes them) → the algorithm's `RiseConfig`, in one place. Each step's
 * params hold only the knobs that change its result; the rest of the config keeps its defaults, which
 * that step never reads.
 */

import { resolveRiseConfig, type RiseConfig } from '../src/rise/config.ts';
import type { Json } from '../src/spec/hash.ts';
import type { BoostSpec, DegenerateSpec, EvaluateSpec, FilterSpec, OptimizerSpec, TaskKind } from '../src/spec/types.ts';

type Params = { [name: string]: Json };

interface TaskParams {
  kind: TaskKind;
  unparsableReward: number;
}

interface SamplingParams {
  temperature: number;
  topP: number;
  maxTokens: number;
  degenerate: DegenerateSpec;
}

export interface BoostParams {
  seed: number;
  model: { kind: 'builtin'; config: Record<string, Json> };
  boost: BoostSpec;
  train: Json;
  instruction: string | null;
}

export interface EvaluateParams {
  seed: number;
  task: TaskParams;
  set: Json;
  train?: Json;
  evaluate: EvaluateSpec;
  feedback: string;
  instruction: string | null;
}

export interface RolloutParams extends SamplingParams {
  seed: number;
  iteration: number;
  task: TaskParams;
  train: Json;
  samples: number;
  instruction: string | null;
}

export interface RelabelParams extends SamplingParams {
  seed: number;
  task: TaskParams;
  strategy: 'self' | 'expert';
  samples: number;
  turns: number;
  stopOnSuccess: boolean;
  contextWindow: number | null;
  feedback: string;
  instruction: string | null;
}

export type FilterParams = FilterSpec;

export interface TrainParams {
  seed: number;
  weighting: 'rwr' | 'uniform';
  tau?: number;
  format: 'multiTurn' | 'singleTurn';
  normalize: 'example' | 'token';
  contextWindow?: number | null;
  feedback?: string;
  instruction: string | null;
  optimizer: OptimizerSpec;
}

export function paramsOf<T>(params: Params): T {
  return params as unknown as T;
}

const sampling = (p: SamplingParams) => ({ temperature: p.temperature, topP: p.topP, maxTokens: p.maxTokens, degenerate: p.degenerate });

export function boostConfig(p: BoostParams): RiseConfig {
  return resolveRiseConfig({ seed: p.seed, instruction: p.instruction, boost: { epochs: Math.max(1, p.boost.epochs), lr: p.boost.lr, batchSize: p.boost.batchSize, pack: p.boost.pack } });
}

export function evaluateConfig(p: EvaluateParams): RiseConfig {
  return resolveRiseConfig({ seed: p.seed, feedback: p.feedback, instruction: p.instruction, unparsableReward: p.task.unparsableReward, evaluate: p.evaluate });
}

/** Rollout steps draw attempt 1 only; the relabel step continues the episodes. */
export function rolloutConfig(p: RolloutParams): RiseConfig {
  return resolveRiseConfig({ seed: p.seed, instruction: p.instruction, unparsableReward: p.task.unparsableReward, rollout: { turns: 1, ...sampling(p) } });
}

export function relabelConfig(p: RelabelParams): RiseConfig {
  return resolveRiseConfig({
    seed: p.seed,
    feedback: p.feedback,
    instruction: p.instruction,
    unparsableReward: p.task.unparsableReward,
    rollout: { turns: p.turns, stopOnSuccess: p.stopOnSuccess, contextWindow: p.contextWindow, ...sampling(p) },
    relabel: { strategy: p.strategy, samples: p.samples },
  });
}

export function trainConfig(p: TrainParams): RiseConfig {
  return resolveRiseConfig({
    seed: p.seed,
    instruction: p.instruction,
    ...(p.feedback !== undefined ? { feedback: p.feedback } : {}),
    ...(p.contextWindow !== undefined ? { rollout: { contextWindow: p.contextWindow } } : {}),
    train: { weighting: p.weighting, ...(p.tau !== undefined ? { tau: p.tau } : {}), format: p.format, normalize: p.normalize, epochs: p.optimizer.epochs, lr: p.optimizer.lr, batchSize: p.optimizer.batchSize },
  });
}
