/**
 * The activities a rise worker registers: one per step kind (named by the kind, as workflows call them)
 * `recordRun`, which closes a run in the store when its workflow ends, and `runUsage`, what a run has
 * spent so far (the budget's measure).
 */

import { runUsage, setRunStatus, type RunUsage } from '../src/store/index.ts';
import { boost } from './boost.ts';
import type { StepContext } from './context.ts';
import { evaluate } from './evaluate.ts';
import { filter } from './filter.ts';
import { relabel } from './relabel.ts';
import { rollout } from './rollout.ts';
import { train } from './train.ts';
import type { RunRecordInput, StepInput, StepOutcome } from './types.ts';

export { createStepContext, type StepContext, type StepContextOptions } from './context.ts';

type StepActivity = (input: StepInput) => Promise<StepOutcome>;

export interface RiseActivities {
  boost: StepActivity;
  rollout: StepActivity;
  relabel: StepActivity;
  filter: StepActivity;
  train: StepActivity;
  evaluate: StepActivity;
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
    async recordRun({ runId, status, error }) {
      await setRunStatus(ctx.store, runId, status, error);
    },
    async runUsage(runId) {
      return runUsage(ctx.store, runId);
    },
  };
}
