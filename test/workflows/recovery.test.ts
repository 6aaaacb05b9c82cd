/**
 * Finished work survives what goes wrong in a week-long run, on the real dev server: a worker killed
 * with SIGKILL in the middle of a rollout, the Temporal server stopped and restarted mid-run, and a step
 * that fails and is replayed. Assertions read the store: what was recorded, how often each step ran.
 */

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities, createStepContext } from '../../activities/index.ts';
import { runStep } from '../../activities/step.ts';
import type { StepInput } from '../../activities/types.ts';
import { startOrAttach } from '../../src/client/start.ts';
import { createRiseWorker, installWorkerRuntime, workflowBundle } from '../../src/client/worker.ts';
import type { Plan } from '../../src/plan/plan.ts';
import type { StepKind } from '../../src/steps/index.ts';
import { getRun, getStep, openStore, recordedProblems, type Store } from '../../src/store/index.ts';
import { freePort } from '../../src/temporal/devserver.ts';
import { loadTemporalConfig } from '../../temporal.config.ts';
import { startTestTemporalServer, useTestEnvironment } from '../temporal/server.ts';
import { uniqueTaskQueue } from '../temporal/worker.ts';
import { BIN, ROOT, rise, tempHome, tinyPlan, tinySpec, waitFor } from './helpers.ts';

installWorkerRuntime();

/** The keys of one arm's steps of a kind, in plan order. */
const keysOf = (plan: Plan, kind: StepKind, arm = plan.arms[0].name) => plan.arms.find((a) => a.name === arm)!.steps.filter((s) => s.kind === kind).map((s) => s.key);

async function recordedCount(store: Store, key: string): Promise<number | undefined> {
  try {
    return (await recordedProblems(store, key)).size;
  } catch {
    return undefined; // not started yet
  }
}

function sampleRows(store: Store, key: string): Map<number, string> {
  const rows = store.sqlite!
    .prepare('SELECT s.rowid AS id, s.text AS text, e.problem_id AS problem FROM samples s JOIN episodes e ON s.episode_id = e.id WHERE e.step_key = ?')
    .all(key) as { id: number; text: string; problem: string }[];
  return new Map(rows.map((r) => [r.id, `${r.problem}|${r.text}`]));
}

describe('recovery', () => {
  const temporal = useTestEnvironment();

  test('a worker killed with SIGKILL mid-rollout: a new worker finishes, keeping every recorded sample, once', async (t) => {
    const { server, env } = temporal();
    const home = tempHome(t);
    const store = await openStore({ home });
    t.after(async () => store.close());
    const problems = 320;
    const spec = tinySpec('killed-worker', {
      task: { kind: 'arithmetic', train: { count: problems, ops: [1], min: 1, max: 5 }, eval: [{ name: 'in-dist', count: 8 }] },
      boost: { epochs: 1, lr: 0.01, batchSize: 32 },
      rollout: { maxTokens: 32 },
      arms: { rise: {} },
    });
    const plan = tinyPlan(spec);
    const [rolloutKey] = keysOf(plan, 'rollout');
    const taskQueue = uniqueTaskQueue('kill');
    const config = loadTemporalConfig({ RISE_ROLLOUT_HEARTBEAT: '5s', RISE_ROLLOUT_RETRY_INITIAL: '200ms', RISE_ROLLOUT_RETRY_MAX_INTERVAL: '1s' });

    const first = spawn(process.execPath, [BIN, 'worker'], {
      cwd: ROOT,
      env: { ...process.env, RISE_HOME: home, TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: server.namespace, RISE_TASK_QUEUE: taskQueue },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let firstErr = '';
    first.stderr.on('data', (d) => (firstErr += d));
    const exited = new Promise((r) => first.on('exit', r));
    t.after(() => first.kill('SIGKILL'));

    const launch = await startOrAttach({ client: env.client, store, spec, plan, taskQueue, activities: config.activities });
    const atKill = await waitFor('the rollout to be partly recorded', async () => {
      if (first.exitCode !== null) throw new Error(`worker exited early: ${firstErr}`);
      const n = await recordedCount(store, rolloutKey);
      if (n === problems) throw new Error('the rollout finished before the worker could be killed');
      return n !== undefined && n > 0 ? n : undefined;
    });
    first.kill('SIGKILL');
    await exited;
    const before = sampleRows(store, rolloutKey);
    assert.ok(before.size >= atKill);

    const context = await createStepContext({ home });
    t.after(async () => context.store.close());
    const second = await createRiseWorker({ connection: env.nativeConnection, namespace: server.namespace, taskQueue, context });
    await second.runUntil(launch.handle.result());

    const step = (await getStep(store, rolloutKey))!;
    assert.equal(step.status, 'done');
    assert.ok(step.attempts >= 2, 'the killed attempt and the one that finished');
    assert.ok((step.outputs as { resumed: number }).resumed >= before.size, 'the retry skipped every recorded problem');
    const episodes = store.sqlite!.prepare('SELECT COUNT(*) AS n, COUNT(DISTINCT problem_id) AS distinct_problems FROM episodes WHERE step_key = ?').get(rolloutKey) as { n: number; distinct_problems: number };
    assert.deepEqual(episodes, { n: problems, distinct_problems: problems }, 'every problem recorded exactly once');
    const after = sampleRows(store, rolloutKey);
    for (const [id, row] of before) assert.equal(after.get(id), row, `sample row ${id} recorded before the kill is unchanged`);
    assert.equal((await getRun(store, launch.runId))!.status, 'done');
  });

  test('the dev server stopped and restarted mid-run (persistent database): the run completes', async (t) => {
    const home = tempHome(t);
    const dir = mkdtempSync(join(tmpdir(), 'rise-restart-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const port = await freePort();
    const serverOptions = { port, dbPath: join(dir, 'temporal.db'), logPath: join(dir, 'temporal.log') };
    let own = await startTestTemporalServer(serverOptions);
    t.after(() => own.stop());

    const context = await createStepContext({ home });
    t.after(async () => context.store.close());
    const spec = tinySpec('server-restart', { arms: { rise: {} } });
    const plan = tinyPlan(spec);
    const taskQueue = uniqueTaskQueue('restart');
    const { activities } = loadTemporalConfig({});
    const connect = async () => {
      const connection = await Connection.connect({ address: own.address });
      return { connection, client: new Client({ connection, namespace: own.namespace }), native: await NativeConnection.connect({ address: own.address }) };
    };
    const a = await connect();
    const worker = await createRiseWorker({ connection: a.native, namespace: own.namespace, taskQueue, context });
    const running = worker.run();
    running.catch(() => undefined);
    const launch = await startOrAttach({ client: a.client, store: context.store, spec, plan, taskQueue, activities });
    const [boostKey] = keysOf(plan, 'boost');
    await waitFor('the boost step to finish', async () => ((await getStep(context.store, boostKey))?.status === 'done' ? true : undefined));

    await own.stop();
    own = await startTestTemporalServer(serverOptions);
    // The worker reconnects by itself; if it gave up while the server was away, a new one takes over.
    const b = await connect();
    let replacement: Worker | undefined;
    const state = await Promise.race([running.then(() => 'stopped', () => 'failed'), new Promise((r) => setTimeout(() => r('running'), 500))]);
    if (state !== 'running') replacement = await createRiseWorker({ connection: b.native, namespace: own.namespace, taskQueue, context });
    const result = b.client.workflow.getHandle(launch.workflowId).result();
    const metrics = replacement ? await replacement.runUntil(result) : await result;
    assert.deepEqual(Object.keys(metrics), ['rise']);
    assert.equal((await getRun(context.store, launch.runId))!.status, 'done');
    assert.equal((await getStep(context.store, boostKey))!.attempts, 1, 'the boost finished before the restart is reused');
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await running.catch(() => undefined);
    await Promise.all([a.connection.close(), b.connection.close(), a.native.close().catch(() => undefined), b.native.close()]);
  });

  test('a failing step fails the run, visibly in `rise status`; `rise replay` resumes from it without recomputing earlier steps', async (t) => {
    const { server, env } = temporal();
    const home = tempHome(t);
    const context = await createStepContext({ home });
    t.after(async () => context.store.close());
    const spec = tinySpec('replay-fault', { arms: { rise: {} } });
    const plan = tinyPlan(spec);
    const taskQueue = uniqueTaskQueue('fault');
    const { activities } = loadTemporalConfig({ RISE_TRAIN_RETRY_MAX_ATTEMPTS: '1' });

    // The fault is injected into the train step's computation only; the step lifecycle around it is the real one.
    class InjectedFault extends Error {}
    const faulty = await Worker.create({
      connection: env.nativeConnection,
      namespace: server.namespace,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: {
        ...createActivities(context),
        train: (input: StepInput) =>
          runStep(context, input, 'train', async () => {
            throw new InjectedFault('the disk is on fire');
          }).then(() => assert.fail('unreachable')),
      },
    });
    const launch = await startOrAttach({ client: env.client, store: context.store, spec, plan, taskQueue, activities });
    await assert.rejects(faulty.runUntil(launch.handle.result()), /Workflow execution failed/);

    const run = (await getRun(context.store, launch.runId))!;
    assert.equal(run.status, 'failed');
    assert.match(run.error ?? '', /the disk is on fire/);
    const cli = { RISE_HOME: home, TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: server.namespace, RISE_TASK_QUEUE: taskQueue };
    const status = await rise(['status', launch.runId], cli);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /failed/);
    assert.match(status.stdout, /the disk is on fire/);

    const [trainKey] = keysOf(plan, 'train');
    const earlier = Object.keys(plan.steps).filter((k) => !['train', 'evaluate'].includes(plan.steps[k].kind) || keysOf(plan, 'evaluate')[0] === k);
    const attemptsBefore = new Map<string, number>();
    for (const k of earlier) attemptsBefore.set(k, (await getStep(context.store, k))!.attempts);
    assert.equal((await getStep(context.store, trainKey))!.status, 'failed');

    const replay = await rise(['replay', launch.runId, '--from', 'iteration:1:train', '--worker'], cli);
    assert.equal(replay.code, 0, replay.stderr);
    assert.match(replay.stdout, /m1@t1/);
    for (const [key, attempts] of attemptsBefore) assert.equal((await getStep(context.store, key))!.attempts, attempts, `${plan.steps[key].kind} was not recomputed`);
    assert.equal((await getStep(context.store, trainKey))!.status, 'done');
    assert.equal((await getStep(context.store, trainKey))!.attempts, 2);
    for (const key of Object.keys(plan.steps)) assert.equal((await getStep(context.store, key))!.status, 'done');
    assert.equal((await getRun(context.store, launch.runId))!.status, 'done');
  });
});
