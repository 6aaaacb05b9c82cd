/**
 * What a workflow hands a step activity and what it gets back: keys, names and small summaries only.
 * The data itself (models, episodes, examples) lives in the store under the step's key.
 *
 * Pure types: workflow code imports this file.
 */

import type { StepUse } from '../src/plan/plan.ts';
import type { Step, StepKind } from '../src/steps/index.ts';
import type { ShardRange } from '../src/steps/shards.ts';

export interface StepInput {
  runId: string;
  experiment: string;
  arm: string;
  iteration: number;
  /** The step's place in the arm (kind, iteration, model role, evaluation set). */
  use: StepUse;
  /** The step itself: kind, params and the keys of its inputs. */
  step: Step;
  /** Content digest → path of the data files the plan reads. */
  files: Record<string, string>;
}

/** Headline figures of an evaluation: metric name (m1@t1, p1@t5, …) → fraction correct. */
export type MetricValues = Record<string, number>;

export interface StepOutcome {
  key: string;
  kind: StepKind;
  /** Done before this activity ran (another arm, an earlier run): nothing was computed. */
  cached: boolean;
  /** Compute seconds of the attempt that produced the result. */
  seconds: number;
  /** For evaluate steps. */
  metrics?: MetricValues;
}

export interface RunRecordInput {
  runId: string;
  status: 'done' | 'failed' | 'cancelled';
  error?: string;
}

/** A sharded step to cut into shards of `shardSize` problems (null: one shard). */
export interface ShardsInput extends StepInput {
  shardSize: number | null;
}

/** One shard of a sharded step: problems `[shard.start, shard.end)` of the step's list. */
export interface ShardInput extends StepInput {
  shard: ShardRange;
}

export interface ShardOutcome {
  key: string;
  shard: number;
  /** The Temporal worker identity that ran the activity. */
  worker: string;
  /** `computed` by this activity; `recorded` by an earlier one; `done`: the step had its result already. */
  state: 'computed' | 'recorded' | 'done';
  /** Problems of the range found recorded (resumed from a dead attempt), and recorded now. */
  resumed: number;
  recorded: number;
  seconds: number;
}
