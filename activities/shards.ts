/**
 * Sharded steps (src/steps/shards.ts): a rollout, relabel or evaluate step split into ranges of its
 * problems, each an activity on whichever worker takes it, all recording into the step's ledger; the
 * step's own activity then assembles it (its result row last) from what the shards recorded.
 *
 * `openShards` opens the step and cuts its problem list into ranges (none when the step is done);
 * `runShard` claims one range (src/store/shards.ts) and samples the problems of it the ledger lacks, so a
 * shard whose worker died resumes, on any worker, where the ledger stops.
 */

import { Context } from '@temporalio/activity';
import { shardLabel, shardRanges, isShardedKind, type ShardedKind, type ShardRange } from '../src/steps/shards.ts';
import { shortKey, type Step } from '../src/steps/index.ts';
import { claimShard, failShard, openShardedStep, recordShard, renewShardLease, type StepAttempt, type WriteGuard } from '../src/store/index.ts';
import type { StepContext } from './context.ts';
import { evaluateSampling } from './evaluate.ts';
import { inLedgerBatches, type Sampling } from './episodes.ts';
import { relabelSampling } from './relabel.ts';
import { rolloutSampling } from './rollout.ts';
import { activityLease, checkCompute, keepAlive, stepFailure, waitForOwner, type StepRun } from './step.ts';
import type { ShardInput, ShardOutcome, ShardsInput } from './types.ts';

const SAMPLINGS: { [K in ShardedKind]: Sampling<K> } = { rollout: rolloutSampling, relabel: relabelSampling, evaluate: evaluateSampling };

function shardedStep(step: Step): Step<ShardedKind> {
  if (!isShardedKind(step.kind)) throw new Error(`a ${step.kind} step runs as one activity: it has no shards`);
  return step as Step<ShardedKind>;
}

/** The kind's sampling, typed for the step (the map is keyed by kind, so they agree). */
function samplingOf(step: Step<ShardedKind>): Sampling<ShardedKind> {
  return SAMPLINGS[step.kind] as Sampling<ShardedKind>;
}

/**
 * The worker running this activity, as Temporal knows it (the worker's identity: `pid@host` unless the
 * worker was given a name).
 */
function workerIdentity(activity: Context): string {
  try {
    return activity.client.options.identity ?? 'unknown';
  } catch {
    return 'unknown'; // an activity run outside a worker (a test's mock environment) has no client
  }
}

/** Opens the step and returns its shards of `shardSize` problems (null: one shard); none when it is done. */
export async function openShards(ctx: StepContext, input: ShardsInput): Promise<ShardRange[]> {
  const step = shardedStep(input.step);
  const opened = await openShardedStep(ctx.store, { key: step.key, kind: step.kind, params: step.params, inputs: step.inputs }, input.runId);
  if (opened === 'done') return [];
  const problems = await samplingOf(step).problems(ctx, input, step);
  return shardRanges(problems.length, input.shardSize);
}

/** Samples one shard of an opened step into its ledger: the range's problems not yet recorded. */
export async function runShard(ctx: StepContext, input: ShardInput): Promise<ShardOutcome> {
  const activity = Context.current();
  const step = shardedStep(input.step);
  const { shard } = input;
  const what = `${step.kind} step ${shortKey(step.key)} shard ${shardLabel(shard)}`;
  // As for a whole step: a worker of another build must not record under this build's key.
  await checkCompute(ctx, input.step);
  const lease = activityLease(activity);
  const worker = workerIdentity(activity);
  const started = performance.now();
  let guard: WriteGuard | undefined;
  let attempt = 0;
  while (guard === undefined) {
    const claim = await claimShard(ctx.store, step.key, shard, lease, worker, input.runId);
    if (claim.kind === 'done' || claim.kind === 'recorded') return { key: step.key, shard: shard.shard, worker, state: claim.kind, resumed: 0, recorded: 0, seconds: 0 };
    if (claim.kind === 'claimed') ({ guard, attempt } = claim);
    else await waitForOwner(activity, `waiting for ${claim.owner} on ${claim.worker}, which is computing this shard`);
  }

  const held = guard;
  const alive = keepAlive(activity, () => renewShardLease(ctx.store, step.key, held, lease.ms), `${what} was taken over or marked stale while this attempt ran`);
  const stepAttempt: StepAttempt = { key: step.key, attempt, generation: held.generation };
  const run: StepRun = { step, attempt: stepAttempt, guard: held, progress: alive.progress };
  try {
    const sampling = samplingOf(step);
    const all = await sampling.problems(ctx, input, step);
    if (shard.end > all.length) throw new Error(`${what}: the step has only ${all.length} problems now (its problem list changed after it was cut into shards)`);
    const problems = all.slice(shard.start, shard.end);
    const { resumed, quarantined } = await inLedgerBatches(ctx, run, input.runId, problems, () => sampling.work(ctx, input, step), { start: shard.start, stepProblems: all.length });
    const recorded = problems.length - resumed - quarantined;
    await recordShard(ctx.store, step.key, held, { resumed, recorded });
    return { key: step.key, shard: shard.shard, worker, state: 'computed', resumed, recorded, seconds: (performance.now() - started) / 1000 };
  } catch (err) {
    await failShard(ctx.store, step.key, held, err);
    throw stepFailure(err, input, what);
  } finally {
    alive.stop();
  }
}
