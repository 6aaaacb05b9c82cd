/**
 * The lifecycle every step activity shares: the store is the cache. A step whose key has a result is
 * returned as it is; one that another arm is computing right now is waited for; otherwise this activity
 * claims it, computes it (heartbeating progress, renewing its claim, honouring cancellation) and stores
 * the result last. A failure is recorded on the step, so `rise status` shows it, and rethrown with the
 * step named; its type (the error's class) decides whether Temporal retries it.
 */

import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { ComputeMismatchError, computeDifferences, computeOfStep } from '../src/plan/compute.ts';
import type { Progress } from '../src/rise/progress.ts';
import type { BoostParams } from '../src/steps/index.ts';
import { shortKey, stepOfKind, type Step, type StepKind, type StepOutputs } from '../src/steps/index.ts';
import { doneOutputs } from '../src/steps/stored.ts';
import type { ModelParams } from '../src/steps/models.ts';
import { LostStepError, claimStep, failStep, finishStep, getStep, renewLease, shardTotals, type Lease, type StepAttempt, type WriteGuard } from '../src/store/index.ts';
import type { StepContext } from './context.ts';
import type { MetricValues, StepInput, StepOutcome } from './types.ts';

/**
 * How long a claim on a step holds without renewal; renewed (with a heartbeat) every RENEW_MS while the
 * step computes. Longer than the default heartbeat timeout, so a lease lapses only after Temporal has
 * noticed the worker is gone; a retry of the same activity takes over at once anyway.
 */
const LEASE_MS = 180_000;
const RENEW_MS = 10_000;
/** How often an activity waiting for another arm's copy of a shared step looks again. */
const WAIT_POLL_MS = 1_000;

export interface StepRun<K extends StepKind = StepKind> {
  step: Step<K>;
  attempt: StepAttempt;
  /** Pass to every write of the step's rows: refused once this attempt no longer owns the step. */
  guard: WriteGuard;
  /** Heartbeats `{done, total, unit, stage}` (visible in the UI and to `rise run`); throws once cancelled. */
  progress(p: Progress): void;
}

/** What a step's computation returns: its kind's outputs but the seconds, which the lifecycle measures. */
export type Computed<K extends StepKind> = Omit<StepOutputs[K], 'seconds'>;

export interface StepResult<K extends StepKind> {
  outputs: StepOutputs[K];
  cached: boolean;
}

/** The model the boost or train step `key` produced, as its boost's params name it (a train step trains its arm's learner). */
async function modelParamsOf(ctx: StepContext, key: string): Promise<ModelParams> {
  const step = await getStep(ctx.store, key);
  if (step?.kind === 'boost') return (step.params as BoostParams).model;
  if (step?.kind === 'train') return modelParamsOf(ctx, step.inputs[1]);
  throw new ApplicationFailure(`step ${shortKey(key)}, whose model a step reads, is not a boost or train step in the store (${step?.kind ?? 'missing'})`, 'ModelFileError', true);
}

/**
 * Refuses (non-retryable) a step to compute whose key names compute this worker does not have: a worker
 * of another build would otherwise store its results under the key of the build that planned it. A step
 * already done passes, whoever computed it: its key names the build that did, and nothing is computed.
 */
export async function checkCompute(ctx: StepContext, step: Step): Promise<void> {
  if ((await doneOutputs(ctx.store, step.key, step.kind)) !== undefined) return;
  const differences = computeDifferences(step.compute, await computeOfStep(ctx.compute, step, (key) => modelParamsOf(ctx, key)));
  if (differences.length === 0) return;
  const error = new ComputeMismatchError(step, differences);
  throw ApplicationFailure.create({ message: error.message, type: error.name, nonRetryable: true });
}

/**
 * The lease of this attempt of the running activity: one owner per attempt of one activity of one
 * workflow execution (replay starts a new execution); earlier attempts of the same activity are its family.
 */
export function activityLease(activity: Context): Lease {
  const { workflowExecution, activityId, attempt } = activity.info;
  const family = `${workflowExecution?.workflowId ?? 'standalone'}/${workflowExecution?.runId ?? ''}/${activityId}#`;
  return { owner: `${family}${attempt}`, ms: LEASE_MS, family };
}

/** Waits while another owner computes what this activity would (a shared step, a shard). */
export async function waitForOwner(activity: Context, stage: string): Promise<void> {
  activity.heartbeat({ done: 0, total: 0, unit: 'steps', stage });
  await activity.sleep(WAIT_POLL_MS);
}

/**
 * Keeps a claim alive while it computes: `renew` (false: the claim was lost) and a heartbeat every
 * RENEW_MS, also between progress reports (loading a model, building a graph), so neither the lease nor
 * the heartbeat timeout lapses while the work is alive. `progress` heartbeats and throws once the
 * activity is cancelled or the claim lost; `stop` ends the renewals.
 */
export function keepAlive(activity: Context, renew: () => boolean | Promise<boolean>, lostMessage: string): { progress(p: Progress): void; stop(): void } {
  let lost = false;
  let last: Progress = { done: 0, total: 0, unit: 'steps', stage: 'starting' };
  activity.heartbeat(last);
  const renewal = setInterval(
    () => {
      // An unwritable store also counts as lost: stop rather than compute what cannot be recorded.
      Promise.resolve()
        .then(renew)
        .then((held) => (lost ||= !held), () => (lost = true));
      activity.heartbeat(last);
    },
    Math.min(RENEW_MS, (activity.info.heartbeatTimeoutMs || Infinity) / 3), // a heartbeat timeout set shorter must hold too
  );
  return {
    progress(p) {
      activity.cancellationSignal.throwIfAborted();
      if (lost) throw new LostStepError(lostMessage);
      last = p;
      activity.heartbeat(p);
    },
    stop: () => clearInterval(renewal),
  };
}

/**
 * The error a failed step activity (or shard of one) throws: an ApplicationFailure naming the step, whose
 * type is the error's class, which decides whether Temporal retries it.
 */
export function stepFailure(err: unknown, input: StepInput, what: string): unknown {
  if (err instanceof ApplicationFailure || Context.current().cancellationSignal.aborted) return err;
  const message = err instanceof Error ? err.message : String(err);
  return ApplicationFailure.create({
    message: `${what} (${input.arm}, iteration ${input.iteration}): ${message}`,
    type: err instanceof Error ? err.constructor.name : 'Error',
    cause: err instanceof Error ? err : undefined,
  });
}

export async function runStep<K extends StepKind>(ctx: StepContext, input: StepInput, kind: K, compute: (run: StepRun<K>) => Promise<Computed<K>>): Promise<StepResult<K>> {
  const activity = Context.current();
  const step = stepOfKind(input.step, kind);
  await checkCompute(ctx, input.step);
  const lease = activityLease(activity);
  const planned = { key: step.key, kind: step.kind, params: step.params, inputs: step.inputs };

  let attempt: StepAttempt | undefined;
  while (attempt === undefined) {
    const claim = await claimStep(ctx.store, planned, lease, input.runId);
    // Written by this kind's activity under this key, so the outputs are this kind's (see src/steps/stored.ts).
    if (claim.kind === 'done') return { outputs: claim.outputs as StepOutputs[K], cached: true };
    if (claim.kind === 'claimed') attempt = claim.attempt;
    else await waitForOwner(activity, `waiting for ${claim.owner}, which is computing this shared step`);
  }

  const started = performance.now();
  const guard: WriteGuard = { owner: lease.owner, generation: attempt.generation };
  const alive = keepAlive(activity, () => renewLease(ctx.store, step.key, lease), `step ${shortKey(step.key)} was taken over or marked stale while this attempt ran`);
  const run: StepRun<K> = { step, attempt, guard, progress: alive.progress };
  try {
    const computed = await compute(run);
    // A sharded step's compute is its shards' too.
    const seconds = (performance.now() - started) / 1000 + (await shardTotals(ctx.store, step.key)).seconds;
    const outputs = { ...computed, seconds } as StepOutputs[K];
    await finishStep(ctx.store, step.key, outputs, guard);
    return { outputs, cached: false };
  } catch (err) {
    await failStep(ctx.store, step.key, err, guard);
    throw stepFailure(err, input, `${step.kind} step ${shortKey(step.key)}`);
  } finally {
    alive.stop();
  }
}

/** The small summary a step activity returns to its workflow. */
export function outcome<K extends StepKind>(input: StepInput, result: StepResult<K>, metrics?: MetricValues): StepOutcome {
  return { key: input.step.key, kind: input.step.kind, cached: result.cached, seconds: result.outputs.seconds, ...(metrics ? { metrics } : {}) };
}
