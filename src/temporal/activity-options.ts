/**
 * Activity options per step kind, as plain data.
 *
 * This module is imported by workflow code, so it must stay pure: no Node imports, no `process`, only
 * type imports from the SDK. The values below are the defaults `temporal.config.ts` (repo root) adopts;
 * src/temporal/config.ts applies environment overrides in the worker/client process, and the resolved
 * `StepActivityConfigs` travel to workflows as workflow input (they are JSON), so a workflow never reads
 * the environment itself.
 */

import type { Duration } from '@temporalio/common';
import type { ActivityOptions } from '@temporalio/workflow';
import type { StepKind } from '../steps/kinds.ts';

/** `ActivityOptions.cancellationType` values (the SDK's `ActivityCancellationType`, spelled as strings). */
export const CANCELLATION_TYPES = ['TRY_CANCEL', 'WAIT_CANCELLATION_COMPLETED', 'ABANDON'] as const;
export type CancellationType = (typeof CANCELLATION_TYPES)[number];

/**
 * Error types that retrying cannot fix. They match `ApplicationFailure.type`, which for a plain thrown
 * error is its class name (`error.constructor.name`): a bad spec, bad data, a missing model file, NaN loss, nothing left to train on,
 * a remote policy that refused a call (or has no API key), a spent call budget, a step planned for compute this worker does not have.
 */
export const NON_RETRYABLE_ERROR_TYPES: readonly string[] = [
  'SpecError',
  'UsageError',
  'DataError',
  'ModelFileError',
  'NonFiniteLossError',
  'EmptyDatasetError',
  'TokenizerError',
  'RemotePolicyError',
  'CallBudgetError',
  'ComputeMismatchError',
];

export interface StepRetryConfig {
  /** Delay before the first retry. */
  initialInterval: Duration;
  /** Each retry waits this many times longer than the one before, up to `maximumInterval`. */
  backoffCoefficient: number;
  maximumInterval: Duration;
  /** Attempts in all, the first included; 1 means no retries, 0 means unlimited. */
  maximumAttempts: number;
  nonRetryableErrorTypes: string[];
}

export interface StepActivityConfig {
  /** Task queue for this step's activity; null means the default queue (`taskQueues.default`). Resolved, it holds the GPU queue for `gpu` kinds (STEP_DEVICES). */
  taskQueue: string | null;
  /** Upper bound for ONE attempt; the server cannot notice a crashed worker before it without heartbeats. */
  startToCloseTimeout: Duration;
  /** A missed heartbeat for this long fails the attempt (crash detection); activities heartbeat well inside it. */
  heartbeatTimeout: Duration;
  /** Optional bound on all attempts together; null means none. */
  scheduleToCloseTimeout: Duration | null;
  /** Set explicitly: left unset, the SDK's core uses TRY_CANCEL, which lets a workflow move on before a cancelled activity has stopped. */
  cancellationType: CancellationType;
  retry: StepRetryConfig;
  /** Rollout, relabel and evaluate only; absent (as in runs started before sharding existed): one activity. */
  shards?: ShardSettings;
}

/**
 * How a rollout, relabel or evaluate step is split into shards, activities of their own that any worker
 * may run (src/steps/shards.ts). Sharding changes no key and no sample: only how the work is spread.
 */
export interface ShardSettings {
  /** Problems per shard; null: the step runs as one activity. */
  size: number | null;
  /** Shards of one step in flight at once. */
  fanOut: number;
}

export type StepActivityConfigs = Record<StepKind, StepActivityConfig>;

/**
 * Where each step kind's work is heavy: `gpu` steps run the model (training, and sampling from it), `cpu`
 * steps only read and write the store. With a GPU queue configured (RISE_GPU_TASK_QUEUE), `gpu` steps go
 * there unless their kind names a queue of its own; the rest stay on the default queue.
 */
export const STEP_DEVICES: Readonly<Record<StepKind, 'gpu' | 'cpu'>> = {
  boost: 'gpu',
  rollout: 'gpu',
  relabel: 'gpu',
  filter: 'cpu',
  train: 'gpu',
  evaluate: 'gpu',
};

function step(startToCloseTimeout: Duration, heartbeatTimeout: Duration): StepActivityConfig {
  return {
    taskQueue: null,
    startToCloseTimeout,
    heartbeatTimeout,
    scheduleToCloseTimeout: null,
    cancellationType: 'WAIT_CANCELLATION_COMPLETED',
    retry: {
      initialInterval: '10s',
      backoffCoefficient: 2,
      maximumInterval: '10m',
      maximumAttempts: 5,
      nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES],
    },
  };
}

/**
 * Unsharded unless configured: on one worker, shards only add the cost of scheduling them and loading the
 * model once per shard (bench/shards.ts measures it).
 */
export const DEFAULT_SHARDS: ShardSettings = { size: null, fanOut: 8 };

/**
 * Defaults: long steps get a generous bound per attempt but a short heartbeat timeout, so a dead worker
 * is noticed in minutes while a healthy multi-hour step is never cut off. Activities resume from their
 * last heartbeat details (and their per-sample ledger) on retry.
 */
export const DEFAULT_STEP_ACTIVITY_CONFIGS: StepActivityConfigs = {
  boost: step('12h', '2m'),
  rollout: { ...step('12h', '2m'), shards: { ...DEFAULT_SHARDS } },
  relabel: { ...step('12h', '2m'), shards: { ...DEFAULT_SHARDS } },
  filter: step('1h', '2m'),
  train: step('24h', '2m'),
  evaluate: { ...step('12h', '2m'), shards: { ...DEFAULT_SHARDS } },
};

/**
 * The SDK `ActivityOptions` for one step kind's config, for `proxyActivities` in a workflow.
 * `defaultTaskQueue` is used when the step has no queue of its own; if neither is set the activity runs
 * on the workflow's own task queue.
 */
export function toActivityOptions(config: StepActivityConfig, defaultTaskQueue?: string): ActivityOptions {
  const options: ActivityOptions = {
    startToCloseTimeout: config.startToCloseTimeout,
    heartbeatTimeout: config.heartbeatTimeout,
    cancellationType: config.cancellationType,
    retry: {
      initialInterval: config.retry.initialInterval,
      backoffCoefficient: config.retry.backoffCoefficient,
      maximumInterval: config.retry.maximumInterval,
      maximumAttempts: config.retry.maximumAttempts,
      nonRetryableErrorTypes: [...config.retry.nonRetryableErrorTypes],
    },
  };
  const taskQueue = config.taskQueue ?? defaultTaskQueue;
  if (taskQueue !== undefined) options.taskQueue = taskQueue;
  if (config.scheduleToCloseTimeout !== null) options.scheduleToCloseTimeout = config.scheduleToCloseTimeout;
  return options;
}
