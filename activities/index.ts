/**
 * The activities a rise worker registers: one per step kind (named by the kind, as workflows call them),
 * `openShards` and `runShard` (the shards of a rollout, relabel or evaluate step, shards.ts), `recordRun`,
 * which closes a run in the store when its workflow ends, and `runUsage`, what a run has spent so far (the
 * budget's measure).
 */

import type { ShardRange } from '../src/steps/shards.ts';
import { runUsage, setRunStatus, type RunUsage } from '../src/store/index.ts';
import { boost } from './boost.ts';
import type { StepContext } from './context.ts';
import { evaluate } from './evaluate.ts';
import { filter } from './filter.ts';
import { relabel } from './relabel.ts';
import { rollout } from './rollout.ts';
import { openShards, runShard } from './shards.ts';
import { train } from './train.ts';
import type { RunRecordInput, ShardInput, ShardOutcome, ShardsInput, StepInput, StepOutcome } from './types.ts';

export { createStepContext, type StepContext, type StepContextOptions } from './context.ts';

type StepActivity = (input: StepInput) => Promise<StepOutcome>;

export interface RiseActivities {
  boost: StepActivity;
  rollout: StepActivity;
  relabel: StepActivity;
  filter: StepActivity;
  train: StepActivity;
  evaluate: StepActivity;
  openShards(input: ShardsInput): Promise<ShardRange[]>;
  runShard(input: ShardInput): Promise<ShardOutcome>;
  recordRun(input: RunRecordInput): Promise<void>;
  runUsage(runId: string): Promise<RunUsage>;
}

export function createActivities(ctx: StepContext): RiseActivities {
  return {
    boost: (input) => boost(ctx, input),
    rollout: (input) => rollout(ctx, input),
    relabel: (input) => relabel(ctx, input),
    filter: (input) => filter(ctx, input),
    train: (input) => train(ctx, input),
    evaluate: (input) => evaluate(ctx, input),
    openShards: (input) => openShards(ctx, input),
    runShard: (input) => runShard(ctx, input),
    async recordRun({ runId, status, error }) {
      await setRunStatus(ctx.store, runId, status, error);
    },
    async runUsage(runId) {
      return runUsage(ctx.store, runId);
    },
  };
}
