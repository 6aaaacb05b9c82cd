/**
 * Sharded steps on the real dev server: a two-arm experiment whose rollout, relabel and evaluate steps
 * are split into shards run by two workers over one store records exactly the ledger, and reaches exactly
 * the metrics, of the same experiment run unsharded on one worker; the store names the worker of every
 * shard. And a worker killed with SIGKILL in the middle of a shard: another worker takes the shard over
 * once its heartbeat times out, resumes it from the ledger, and every sample is recorded once.
 */

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { hostname } from 'node:os';
import { describe, test, type TestContext } from 'node:test';
import { createStepContext } from '../../activities/index.ts';
import { startOrAttach } from '../../src/client/start.ts';
import { createRiseWorker, installWorkerRuntime } from '../../src/client/worker.ts';
import type { Plan } from '../../src/plan/plan.ts';
import type { ExperimentSpec } from '../../src/spec/types.ts';
import { stepOfKind, type TrainOutputs } from '../../src/steps/index.ts';
import { isShardedKind } from '../../src/steps/shards.ts';
import { problemSet, rolloutProblems } from '../../activities/problems.ts';
import { getRun, getStep, openStore, readEpisodes, recordedProblems, stepShardsOf, type LedgerEpisode, type Store } from '../../src/store/index.ts';
import { loadTemporalConfig } from '../../temporal.config.ts';
import { useTestEnvironment, type TestEnvironment } from '../temporal/server.ts';
import { uniqueTaskQueue } from '../temporal/worker.ts';
import { shardLines } from '../../src/cli/shards.ts';
import { startPostgres } from '../store/postgres.ts';
import { BIN, ROOT, tempHome, tinyPlan, tinySpec, waitFor } from './helpers.ts';

installWorkerRuntime();

const SHARDED = { RISE_ROLLOUT_SHARD_SIZE: '5', RISE_RELABEL_SHARD_SIZE: '5', RISE_EVALUATE_SHARD_SIZE: '5' };

/** A `rise worker` process over the store at `home`, polling `taskQueue`; killed when the test ends. */
function spawnWorker(t: TestContext, temporal: TestEnvironment, home: string, taskQueue: string, env: Record<string, string> = {}): { child: ChildProcess; identity: string; stderr: () => string } {
  const { server } = temporal;
  const child = spawn(process.execPath, [BIN, 'worker', '--task-queue', taskQueue], {
    cwd: ROOT,
    env: { ...process.env, RISE_HOME: home, TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: server.namespace, RISE_TASK_QUEUE: taskQueue, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  t.after(() => child.kill('SIGKILL'));
  // The SDK's default worker identity, which activities find in their context and the store records.
  return { child, identity: `${child.pid}@${hostname()}`, stderr: () => stderr };
}

/**
 * Runs the experiment to its end over a fresh store under `env`'s Temporal settings: on one in-process
 * worker, or on `workers` worker processes.
 */
async function runOn(t: TestContext, temporal: TestEnvironment, spec: ExperimentSpec, plan: Plan, env: Record<string, string>, workers = 0, ledgerBatch?: number) {
  const { server, env: testEnv } = temporal;
  const home = tempHome(t);
  const taskQueue = uniqueTaskQueue('shards');
  const { activities } = loadTemporalConfig(env);
  const context = await createStepContext({ home, ...(ledgerBatch !== undefined ? { ledgerBatch } : {}) });
  t.after(async () => context.store.close());
  const store = context.store;
  const spawned = Array.from({ length: workers }, () => spawnWorker(t, temporal, home, taskQueue));
  const launch = await startOrAttach({ client: testEnv.client, store, spec, plan, taskQueue, activities });
  const result = launch.handle.result();
  const metrics = workers > 0 ? await result : await (await createRiseWorker({ connection: testEnv.nativeConnection, namespace: server.namespace, taskQueue, context })).runUntil(result);
  assert.equal((await getRun(store, launch.runId))!.status, 'done');
  return { store, metrics, workers: spawned, launch };
}

/** Every sampled step's ledger, as the workflows left it: episodes in the order they read back, samples and all. */
async function ledgers(store: Store, plan: Plan): Promise<Record<string, LedgerEpisode[]>> {
  const ledger: Record<string, LedgerEpisode[]> = {};
  for (const s of Object.values(plan.steps)) if (isShardedKind(s.kind)) ledger[s.key] = await readEpisodes(store, s.key);
  return ledger;
}

/** The ledgers with every sample's log-probability taken out, and those log-probabilities in order. */
function splitLogprobs(ledger: Record<string, LedgerEpisode[]>): { rest: unknown; logprobs: number[] } {
  const logprobs: number[] = [];
  const rest = JSON.parse(JSON.stringify(ledger, (name, value) => (name === 'logprob' ? (logprobs.push(value), undefined) : value)));
  return { rest, logprobs };
}

describe('sharded steps', () => {
  const temporal = useTestEnvironment();

  test('a two-arm experiment sharded over two workers: shards spread over both, and the ledger, models and metrics are the unsharded run\'s', async (t) => {
    const spec = tinySpec('sharded');
    const plan = tinyPlan(spec);
    const reference = await runOn(t, temporal(), spec, plan, {});
    // Unsharded, but decoding the problems in batches of the shards' size: the same shapes as the shards.
    const aligned = await runOn(t, temporal(), spec, plan, {}, 0, 5);
    const sharded = await runOn(t, temporal(), spec, plan, SHARDED, 2);

    for (const step of Object.values(plan.steps)) assert.equal((await getStep(sharded.store, step.key))?.status, 'done', `${step.kind} ${step.key.slice(0, 12)}`);
    const shardsOf = (kind: string) => Object.values(plan.steps).filter((s) => s.kind === kind).map((s) => stepShardsOf(sharded.store, s.key));
    const rollouts = await Promise.all(shardsOf('rollout'));
    // 24 problems in shards of 5; every shard recorded, by a named worker, all its problems at once.
    for (const shards of rollouts) {
      assert.deepEqual(shards.map((s) => [s.start, s.end, s.state]), [[0, 5, 'recorded'], [5, 10, 'recorded'], [10, 15, 'recorded'], [15, 20, 'recorded'], [20, 24, 'recorded']]);
      assert.deepEqual(shards.map((s) => s.recorded), [5, 5, 5, 5, 4]);
    }
    const all = (await Promise.all([...shardsOf('rollout'), ...shardsOf('relabel'), ...shardsOf('evaluate')])).flat();
    // Relabel continues the rollout's 24 episodes in shards of 5 too; each evaluation set (8 problems less
    // those in the training set) is at least one shard.
    assert.ok(all.length >= 5 + 5 + 3, `${all.length} shards`);
    assert.deepEqual([...new Set(all.map((s) => s.worker))].sort(), sharded.workers.map((w) => w.identity).sort(), 'both workers ran shards');
    // `rise status RUN` says so: every sharded step, its shards recorded, and the workers that ran them.
    const status = await shardLines(sharded.store, plan);
    const rolloutLines = status.filter((line) => / rollout [0-9a-f]{12}: 5 \(5 recorded\) on /.test(line));
    assert.equal(rolloutLines.length, Object.values(plan.steps).filter((s) => s.kind === 'rollout').length, status.join('\n'));
    for (const w of sharded.workers) assert.ok(status.some((line) => line.includes(w.identity)), `${w.identity} in\n${status.join('\n')}`);
    assert.equal((await Promise.all(shardsOf('evaluate'))).flat().every((s) => s.state === 'recorded'), true);
    // The unsharded run has no shard rows: its steps ran as one activity, as before.
    for (const s of Object.values(plan.steps)) assert.deepEqual(await stepShardsOf(reference.store, s.key), []);

    // Decoded in the same batches, the shards recorded the unsharded run's ledger bit for bit.
    assert.deepEqual(await ledgers(sharded.store, plan), await ledgers(aligned.store, plan), 'every sample, in the same order, log-probabilities and all');
    // Against batches of the default size: the same samples token for token (each request's random stream is
    // its own), their log-probabilities rounded differently by the other shapes, as between any two batchings.
    const [got, want] = [splitLogprobs(await ledgers(sharded.store, plan)), splitLogprobs(await ledgers(reference.store, plan))];
    assert.deepEqual(got.rest, want.rest, 'every sample, token for token, in the same order');
    assert.equal(got.logprobs.length, want.logprobs.length);
    got.logprobs.forEach((lp, i) => assert.ok(Math.abs(lp - want.logprobs[i]) <= 1e-6 * Math.max(1, Math.abs(lp)), `log-probability ${i}: ${lp} vs ${want.logprobs[i]}`));
    const outputsOf = async (store: Store) => {
      const outputs = new Map<string, unknown>();
      for (const s of Object.values(plan.steps)) outputs.set(s.key, (await getStep(store, s.key))!.outputs);
      return outputs;
    };
    const [shardedOutputs, alignedOutputs, referenceOutputs] = [await outputsOf(sharded.store), await outputsOf(aligned.store), await outputsOf(reference.store)];
    const trained = (outputs: Map<string, unknown>) =>
      Object.values(plan.steps)
        .filter((s) => s.kind === 'train')
        .map((s) => {
          const o = outputs.get(s.key) as TrainOutputs;
          return [o.examples, o.train, o.losses.sha256];
        });
    assert.deepEqual(trained(shardedOutputs), trained(referenceOutputs), 'training saw the same examples in the same order');
    assert.deepEqual(trained(alignedOutputs), trained(referenceOutputs));
    assert.deepEqual(sharded.metrics, reference.metrics);
    // Every step's outputs but its compute seconds; a sharded step resumed nothing (its shards computed it all).
    const withoutSeconds = (outputs: Map<string, unknown>) => Object.values(plan.steps).map((s) => ({ ...(outputs.get(s.key) as object), seconds: 0 }));
    assert.deepEqual(withoutSeconds(shardedOutputs), withoutSeconds(referenceOutputs));
    assert.deepEqual(aligned.metrics, reference.metrics);
  });

  test('a worker killed with SIGKILL mid-shard: the other takes the shard over when its heartbeat times out, resumes it from the ledger, and every sample is recorded once', async (t) => {
    const problems = 240;
    const spec = tinySpec('killed-shard', {
      task: { kind: 'arithmetic', train: { count: problems, ops: [1], min: 1, max: 5 }, eval: [{ name: 'in-dist', count: 8 }] },
      boost: { epochs: 1, lr: 0.01, batchSize: 32 },
      rollout: { maxTokens: 32 },
      arms: { rise: {} },
    });
    const plan = tinyPlan(spec);
    const rollout = stepOfKind(Object.values(plan.steps).find((s) => s.kind === 'rollout')!, 'rollout');
    const ids = rolloutProblems(await problemSet(rollout.params.train, rollout.params.seed, {}), rollout.params.samples).map((p) => p.id);
    const home = tempHome(t);
    const store = await openStore({ home });
    t.after(async () => store.close());
    const taskQueue = uniqueTaskQueue('kill-shard');
    // Shards of 120 problems are two ledger batches (64 by default) each: a kill can land between them.
    const { activities } = loadTemporalConfig({ RISE_ROLLOUT_SHARD_SIZE: '120', RISE_ROLLOUT_HEARTBEAT: '5s', RISE_ROLLOUT_RETRY_INITIAL: '200ms', RISE_ROLLOUT_RETRY_MAX_INTERVAL: '1s' });
    const workers = [spawnWorker(t, temporal(), home, taskQueue), spawnWorker(t, temporal(), home, taskQueue)];
    const launch = await startOrAttach({ client: temporal().env.client, store, spec, plan, taskQueue, activities });

    const recordedIn = (range: { start: number; end: number }, recorded: Set<string>) => ids.slice(range.start, range.end).filter((id) => recorded.has(id)).length;
    const atKill = await waitFor('a shard to be partly recorded', async () => {
      for (const w of workers) if (w.child.exitCode !== null) throw new Error(`a worker exited early: ${w.stderr()}`);
      const shards = await stepShardsOf(store, rollout.key);
      if (shards.length === 0) return undefined;
      const recorded = await recordedProblems(store, rollout.key);
      if (recorded.size === problems) throw new Error('the rollout finished before a worker could be killed');
      const partial = shards.find((s) => s.state === 'running' && recordedIn(s, recorded) > 0 && recordedIn(s, recorded) < s.end - s.start);
      return partial && { shard: partial, recorded: recordedIn(partial, recorded), victim: workers.find((w) => w.identity === partial.worker)! };
    });
    const exited = new Promise((r) => atKill.victim.child.on('exit', r));
    atKill.victim.child.kill('SIGKILL');
    await exited;
    const survivor = workers.find((w) => w !== atKill.victim)!;
    const before = new Map((await readEpisodes(store, rollout.key)).map((e) => [e.problemId, JSON.stringify(e)]));

    await launch.handle.result();
    assert.equal((await getRun(store, launch.runId))!.status, 'done');
    const episodes = await readEpisodes(store, rollout.key);
    assert.deepEqual(episodes.map((e) => e.problemId), ids, 'every problem recorded once, in problem order');
    assert.equal(episodes.flatMap((e) => e.turns.flatMap((turn) => turn.samples)).length, problems, 'one attempt-1 sample each, none twice');
    for (const [id, row] of before) assert.equal(JSON.stringify(episodes.find((e) => e.problemId === id)), row, `${id}, recorded before the kill, is unchanged`);
    const taken = (await stepShardsOf(store, rollout.key)).find((s) => s.start === atKill.shard.start)!;
    assert.equal(taken.state, 'recorded');
    assert.equal(taken.worker, survivor.identity, 'the surviving worker finished the shard');
    assert.ok(taken.attempts >= 2, 'the killed attempt and the one that took over');
    assert.ok(taken.resumed! >= atKill.recorded, `resumed after ${taken.resumed} recorded problems (${atKill.recorded} at the kill)`);
    const step = (await getStep(store, rollout.key))!;
    assert.equal(step.status, 'done');
    assert.equal((step.outputs as { resumed: number }).resumed, taken.resumed, 'the step resumed what the killed shard had recorded');
  });

  test('on PostgreSQL, three workers on two task queues, each with its own home (separate machines sharing the store and an artifact directory): shards spread over the GPU-queue workers, one is SIGKILLed mid-shard, and the run equals the single-worker SQLite run', async (t) => {
    const postgres = await startPostgres();
    t.after(() => postgres.stop());
    const problems = 256;
    const spec = tinySpec('cluster', {
      task: { kind: 'arithmetic', train: { count: problems, ops: [1], min: 1, max: 5 }, eval: [{ name: 'in-dist', count: 64 }] },
      boost: { epochs: 1, lr: 0.01, batchSize: 32 },
      rollout: { maxTokens: 32 },
    });
    const plan = tinyPlan(spec);
    const reference = await runOn(t, temporal(), spec, plan, {});

    const gpuQueue = uniqueTaskQueue('cluster-gpu');
    // Shards of 128 problems are two ledger batches (64) each, so a kill can land inside one, and decoding
    // batches as the unsharded run does (log-probabilities bit for bit).
    const cluster = { RISE_GPU_TASK_QUEUE: gpuQueue, RISE_ROLLOUT_SHARD_SIZE: '128', RISE_RELABEL_SHARD_SIZE: '128', RISE_EVALUATE_SHARD_SIZE: '64', RISE_ROLLOUT_HEARTBEAT: '5s', RISE_ROLLOUT_RETRY_INITIAL: '200ms', RISE_ROLLOUT_RETRY_MAX_INTERVAL: '1s' };
    const shared = { RISE_STORE: postgres.url, RISE_ARTIFACTS: tempHome(t) };
    const store = await openStore({ home: tempHome(t), database: postgres.url, env: shared });
    t.after(async () => store.close());
    const taskQueue = uniqueTaskQueue('cluster');
    const { activities } = loadTemporalConfig(cluster);
    const workflows = spawnWorker(t, temporal(), tempHome(t), taskQueue, shared);
    const gpu = [spawnWorker(t, temporal(), tempHome(t), gpuQueue, shared), spawnWorker(t, temporal(), tempHome(t), gpuQueue, shared)];
    const launch = await startOrAttach({ client: temporal().env.client, store, spec, plan, taskQueue, activities });

    const [firstRollout] = Object.values(plan.steps).filter((s) => s.kind === 'rollout');
    const atKill = await waitFor('a rollout shard to be partly recorded', async () => {
      for (const w of [workflows, ...gpu]) if (w.child.exitCode !== null) throw new Error(`a worker exited early: ${w.stderr()}`);
      const shards = await stepShardsOf(store, firstRollout.key);
      const recorded = await recordedProblems(store, firstRollout.key).catch(() => new Set<string>());
      if (recorded.size === problems) throw new Error('the rollout finished before a worker could be killed');
      const partial = shards.find((s) => s.state === 'running' && recorded.size > 0);
      return partial && { shard: partial, victim: gpu.find((w) => w.identity === partial.worker)! };
    }, 300_000);
    const exited = new Promise((r) => atKill.victim.child.on('exit', r));
    atKill.victim.child.kill('SIGKILL');
    await exited;
    const metrics = await launch.handle.result();
    assert.equal((await getRun(store, launch.runId))!.status, 'done');

    // Every sampled step ran in shards, on the GPU-queue workers only; the killed shard was finished by the survivor.
    const survivor = gpu.find((w) => w !== atKill.victim)!;
    const shards = [];
    for (const s of Object.values(plan.steps)) if (isShardedKind(s.kind)) shards.push(...(await stepShardsOf(store, s.key)));
    assert.ok(shards.length > 0 && shards.every((s) => s.state === 'recorded'));
    // Both GPU-queue workers took shards (the victim held one when it died); the workflow worker none.
    assert.ok(shards.every((s) => gpu.some((w) => w.identity === s.worker)), 'no shard on the workflow worker');
    assert.equal(atKill.shard.worker, atKill.victim.identity);
    const taken = (await stepShardsOf(store, firstRollout.key)).find((s) => s.start === atKill.shard.start)!;
    assert.equal(taken.worker, survivor.identity);
    assert.ok(taken.attempts >= 2, 'the killed attempt and the one that took over');

    // Every sample recorded exactly once, equal to the single-worker SQLite run's; so are the models and metrics.
    assert.deepEqual(await ledgers(store, plan), await ledgers(reference.store, plan), 'every sample, once, in the same order, log-probabilities and all');
    assert.deepEqual(metrics, reference.metrics);
    for (const s of Object.values(plan.steps).filter((step) => step.kind === 'train')) {
      const [got, want] = [(await getStep(store, s.key))!.outputs as TrainOutputs, (await getStep(reference.store, s.key))!.outputs as TrainOutputs];
      assert.deepEqual([got.examples, got.train, got.losses.sha256], [want.examples, want.train, want.losses.sha256]);
    }
  });
});
