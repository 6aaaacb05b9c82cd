/**
 * What sharding a step costs and buys: one rollout step (the boosted model over `--problems` training
 * problems) run unsharded on one worker, the reference, and sharded (`--shard` problems per shard) on 1, 2
 * and 4 `rise worker` processes over one store, on an embedded dev server. Each configuration runs the
 * step `--repeats` times (replayed: a new generation each time), once every worker polls, and keeps every
 * wall time (the first includes each worker process's first model load and session); the last
 * repeat's workflow history gives each activity's time waiting in the queue and running.
 *
 * On a machine with few cores this measures orchestration, not speed-up: the workers share the cores.
 * `overhead` is the sharded step on one worker less the unsharded one, per step and per shard: scheduling
 * the shard activities, loading the model once per shard, assembling the step.
 *
 *   npx tsx bench/shards.ts [--problems 256] [--shard 32] [--workers 1,2,4] [--max-tokens 32] [--repeats 3] [--out bench/results/shards.json]
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time.js';
import { NativeConnection } from '@temporalio/worker';
import { createStepContext } from '../activities/index.ts';
import { createRiseWorker, installWorkerRuntime } from '../src/client/worker.ts';
import { currentCompute } from '../src/plan/compute.ts';
import { planExperiment } from '../src/plan/plan.ts';
import { validateSpec } from '../src/spec/validate.ts';
import { markStale, stepShardsOf } from '../src/store/index.ts';
import { freePort, startDevServer } from '../src/temporal/devserver.ts';
import { iterationWorkflow, planPart } from '../workflows/experiment.ts';
import { loadTemporalConfig } from '../temporal.config.ts';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : process.argv[i + 1];
}
const root = fileURLToPath(new URL('..', import.meta.url));
const problems = Number(flag('problems', '256'));
const shardSize = Number(flag('shard', '32'));
const workerCounts = flag('workers', '1,2,4').split(',').map(Number);
const maxTokens = Number(flag('max-tokens', '32'));
const repeats = Number(flag('repeats', '3'));
const out = flag('out', join(root, 'bench/results/shards.json'));

const spec = validateSpec({
  name: 'bench-shards',
  seed: 5,
  task: { kind: 'arithmetic', train: { count: problems, ops: [1, 2], min: 1, max: 20 }, eval: [{ name: 'in-dist', count: 8 }] },
  model: { kind: 'builtin', config: { layers: 2, dim: 64, heads: 4, context: 128 } },
  boost: { epochs: 1, lr: 0.01, batchSize: 32 },
  iterations: 1,
  rollout: { maxTokens },
  arms: { a: {} },
});
const plan = planExperiment(spec, { compute: currentCompute() });
const [arm] = plan.arms;
const boost = arm.steps.filter((s) => s.kind === 'boost');
const rollout = arm.steps.filter((s) => s.iteration === 1 && s.kind === 'rollout');
const rolloutKey = rollout[0].key;

installWorkerRuntime();
const home = mkdtempSync(join(os.tmpdir(), 'rise-bench-shards-'));
const server = await startDevServer({ port: await freePort(), uiPort: 'off', dbPath: null, logPath: null, statePath: null, reuse: false });
const connection = await Connection.connect({ address: server.address });
const client = new Client({ connection, namespace: server.namespace });
const load = [os.loadavg()];
let sequence = 0;

/** Runs `uses` of the arm as one iteration workflow on `taskQueue`; its wall seconds and its history's activities. */
async function runIteration(taskQueue: string, uses: typeof rollout, env: Record<string, string>) {
  const { activities } = loadTemporalConfig(env);
  const started = performance.now();
  const handle = await client.workflow.start(iterationWorkflow, {
    taskQueue,
    workflowId: `bench-shards/${process.pid}/${sequence++}`,
    args: [{ runId: 'bench', plan: planPart(plan, uses), activities, arm: arm.name, iteration: uses[0].iteration, uses }],
  });
  await handle.result();
  const seconds = (performance.now() - started) / 1000;
  return { seconds, activities: activityTimes(await handle.fetchHistory()) };
}

interface ActivityTime {
  type: string;
  queuedMs: number;
  runMs: number;
}

/** Every activity of a workflow history: how long it waited for a worker, and how long it ran (its last attempt). */
function activityTimes(history: Awaited<ReturnType<Awaited<ReturnType<typeof client.workflow.start>>['fetchHistory']>>): ActivityTime[] {
  const scheduled = new Map<string, { type: string; at: number }>();
  const startedAt = new Map<string, number>();
  const times: ActivityTime[] = [];
  for (const e of history.events ?? []) {
    const at = tsToMs(e.eventTime);
    if (e.activityTaskScheduledEventAttributes) scheduled.set(String(e.eventId), { type: e.activityTaskScheduledEventAttributes.activityType?.name ?? '?', at });
    if (e.activityTaskStartedEventAttributes) startedAt.set(String(e.activityTaskStartedEventAttributes.scheduledEventId), at);
    const done = e.activityTaskCompletedEventAttributes;
    if (done) {
      const id = String(done.scheduledEventId);
      const s = scheduled.get(id)!;
      const start = startedAt.get(id) ?? s.at;
      times.push({ type: s.type, queuedMs: start - s.at, runMs: at - start });
    }
  }
  return times;
}

function spawnWorkers(n: number, taskQueue: string): ChildProcess[] {
  return Array.from({ length: n }, () =>
    spawn(process.execPath, [join(root, 'bin/rise.js'), 'worker'], {
      cwd: root,
      env: { ...process.env, RISE_HOME: home, TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: server.namespace, RISE_TASK_QUEUE: taskQueue },
      stdio: ['ignore', 'ignore', 'inherit'],
    }),
  );
}

/** temporal.api.enums.v1.TaskQueueType's activity queue. */
const TASK_QUEUE_TYPE_ACTIVITY = 2;

/** Until `n` workers poll `taskQueue` for activities (a worker process bundles the workflows first, for seconds). */
async function waitForPollers(taskQueue: string, n: number): Promise<void> {
  for (;;) {
    const { pollers } = await connection.workflowService.describeTaskQueue({ namespace: server.namespace, taskQueue: { name: taskQueue }, taskQueueType: TASK_QUEUE_TYPE_ACTIVITY });
    if ((pollers?.length ?? 0) >= n) return;
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function stopWorkers(workers: ChildProcess[]): Promise<void> {
  await Promise.all(workers.map((w) => new Promise((r) => (w.exitCode !== null ? r(null) : (w.on('exit', r), w.kill('SIGTERM'))))));
}

const mean = (xs: number[]) => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);

try {
  // The boosted model, once, on an in-process worker.
  const native = await NativeConnection.connect({ address: server.address });
  const context = await createStepContext({ home });
  const boostQueue = `bench-shards-boost-${process.pid}`;
  const worker = await createRiseWorker({ connection: native, namespace: server.namespace, taskQueue: boostQueue, context });
  await worker.runUntil(runIteration(boostQueue, boost, {}));
  await native.close();
  const store = context.store;

  const configs = [{ workers: 1, sharded: false }, ...workerCounts.map((workers) => ({ workers, sharded: true }))];
  const results = [];
  for (const config of configs) {
    const taskQueue = `bench-shards-${process.pid}-${config.workers}-${config.sharded ? 'sharded' : 'whole'}`;
    const workers = spawnWorkers(config.workers, taskQueue);
    try {
      await waitForPollers(taskQueue, config.workers);
      const env = { RISE_ROLLOUT_SHARD_SIZE: config.sharded ? String(shardSize) : 'none', RISE_ROLLOUT_SHARD_FAN_OUT: String(Math.max(8, 2 * config.workers)) };
      const walls: number[] = [];
      let last: Awaited<ReturnType<typeof runIteration>> | undefined;
      for (let r = 0; r < repeats; r++) {
        markStale(store, [rolloutKey]); // a fresh generation: the step is computed again, from the same model
        last = await runIteration(taskQueue, rollout, env);
        walls.push(last.seconds);
      }
      const shards = await stepShardsOf(store, rolloutKey);
      const shardTimes = last!.activities.filter((a) => a.type === 'runShard');
      const of = (type: string) => last!.activities.find((a) => a.type === type);
      const best = Math.min(...walls);
      results.push({
        ...config,
        shards: shards.length,
        workersUsed: new Set(shards.map((s) => s.worker)).size,
        wallSeconds: walls,
        bestSeconds: best,
        problemsPerSecond: problems / best,
        openSeconds: (of('openShards')?.runMs ?? 0) / 1000,
        assembleSeconds: (of('rollout')?.runMs ?? 0) / 1000,
        shardQueuedMs: { mean: mean(shardTimes.map((a) => a.queuedMs)), max: Math.max(0, ...shardTimes.map((a) => a.queuedMs)) },
        shardRunSeconds: { mean: mean(shardTimes.map((a) => a.runMs)) / 1000, sum: shardTimes.reduce((a, b) => a + b.runMs, 0) / 1000 },
      });
      console.log(`${config.sharded ? `sharded (${shards.length} shards)` : 'unsharded'} on ${config.workers} worker(s): ${walls.map((w) => w.toFixed(2)).join(', ')} s`);
    } finally {
      await stopWorkers(workers);
    }
  }
  load.push(os.loadavg());
  store.close();

  const whole = results.find((r) => !r.sharded)!;
  const one = results.find((r) => r.sharded && r.workers === 1);
  const overhead = one && { perStepSeconds: one.bestSeconds - whole.bestSeconds, perShardSeconds: (one.bestSeconds - whole.bestSeconds) / one.shards };
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(
    out,
    `${JSON.stringify({ date: new Date().toISOString(), cores: os.availableParallelism(), load, problems, shardSize, maxTokens, repeats, model: spec.model, results, overhead }, null, 2)}\n`,
  );
  console.log(overhead ? `overhead of sharding on one worker: ${overhead.perStepSeconds.toFixed(2)} s per step, ${overhead.perShardSeconds.toFixed(3)} s per shard; ${out}` : out);
} finally {
  await connection.close();
  await server.stop();
  rmSync(home, { recursive: true, force: true });
}
