/**
 * Worker capabilities on the real dev server: with a GPU queue configured, the steps that run the model
 * are taken by the `rise worker` polling it and filtering by the one on the default queue (read back from
 * the workflow histories: the queue each activity was scheduled on, the identity of the worker that ran
 * it); and a worker refuses to compute a step whose key names compute it does not have, storing nothing
 * under it, while a step already done under such a key is reused.
 */

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { describe, test } from 'node:test';
import type { Client } from '@temporalio/client';
import ort from 'onnxruntime-node';
import { createStepContext } from '../../activities/index.ts';
import { createRiseWorker, installWorkerRuntime } from '../../src/client/worker.ts';
import { startOrAttach } from '../../src/client/start.ts';
import { currentCompute, type ComputeFingerprint } from '../../src/plan/compute.ts';
import { planExperiment } from '../../src/plan/plan.ts';
import { finishStep, getRun, getStep, openStore, startStep } from '../../src/store/index.ts';
import { applicationMessage } from '../../src/temporal/failures.ts';
import { loadTemporalConfig } from '../../temporal.config.ts';
import { useTestEnvironment } from '../temporal/server.ts';
import { uniqueTaskQueue } from '../temporal/worker.ts';
import { BIN, ROOT, tempHome, tinyPlan, tinySpec, waitFor } from './helpers.ts';

installWorkerRuntime();

interface ActivityRun {
  type: string;
  queue: string;
  identity: string;
}

/** Every activity of a workflow and its children, recursively: its type, the queue it was scheduled on, the worker that started it. */
async function activityRuns(client: Client, workflowId: string): Promise<ActivityRun[]> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const scheduled = new Map<string, { type: string; queue: string }>();
  const runs: ActivityRun[] = [];
  const children: string[] = [];
  for (const event of history.events ?? []) {
    const s = event.activityTaskScheduledEventAttributes;
    if (s) scheduled.set(String(event.eventId), { type: s.activityType!.name!, queue: s.taskQueue!.name! });
    const started = event.activityTaskStartedEventAttributes;
    if (started) runs.push({ ...scheduled.get(String(started.scheduledEventId))!, identity: started.identity! });
    const child = event.childWorkflowExecutionStartedEventAttributes;
    if (child) children.push(child.workflowExecution!.workflowId!);
  }
  for (const id of children) runs.push(...(await activityRuns(client, id)));
  return runs;
}

/** A `rise worker` process; resolves with its identity once it polls. */
async function startWorker(t: { after(fn: () => void): void }, args: string[], env: Record<string, string>): Promise<{ identity: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [BIN, 'worker', ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => child.kill('SIGKILL'));
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const identity = await waitFor('the worker to poll', () => {
    if (child.exitCode !== null) throw new Error(`rise worker exited with ${child.exitCode}: ${stderr}`);
    return /^rise worker (\S+) polling task queue/m.exec(stdout)?.[1];
  });
  assert.match(stdout, /device cpu, 1 slot;/);
  return { identity, child };
}

describe('worker capabilities on the dev server', () => {
  const temporal = useTestEnvironment();

  test('a GPU queue takes the steps that run the model, the default queue filtering and the workflows', async (t) => {
    const { server, env } = temporal();
    const home = tempHome(t);
    const defaultQueue = uniqueTaskQueue('cpu');
    const gpuQueue = uniqueTaskQueue('gpu');
    const workerEnv = { RISE_HOME: home, TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: server.namespace };
    const [cpu, gpu] = await Promise.all([
      startWorker(t, ['--task-queue', defaultQueue, '--slots', '1'], workerEnv),
      // What a GPU machine runs with `--device cuda`; this one has no GPU, and routing does not depend on it.
      startWorker(t, ['--task-queue', gpuQueue, '--slots', '1', '--device', 'cpu'], workerEnv),
    ]);
    assert.notEqual(cpu.identity, gpu.identity);

    const store = await openStore({ home });
    t.after(async () => store.close());
    const spec = tinySpec('tiny-queues', { arms: { rise: {} } });
    const plan = tinyPlan(spec);
    const { activities } = loadTemporalConfig({ RISE_GPU_TASK_QUEUE: gpuQueue });
    const launch = await startOrAttach({ client: env.client, store, spec, plan, taskQueue: defaultQueue, activities });
    await launch.handle.result();

    const runs = await activityRuns(env.client, launch.workflowId);
    const where = new Map<string, Set<string>>();
    for (const run of runs) {
      const worker = run.identity === gpu.identity ? 'gpu worker' : run.identity === cpu.identity ? 'cpu worker' : run.identity;
      where.set(run.type, (where.get(run.type) ?? new Set()).add(`${run.queue === gpuQueue ? 'gpu' : run.queue === defaultQueue ? 'default' : run.queue} queue, ${worker}`));
    }
    assert.deepEqual(
      Object.fromEntries([...where].map(([type, places]) => [type, [...places].join(' | ')])),
      {
        boost: 'gpu queue, gpu worker',
        rollout: 'gpu queue, gpu worker',
        relabel: 'gpu queue, gpu worker',
        filter: 'default queue, cpu worker',
        train: 'gpu queue, gpu worker',
        evaluate: 'gpu queue, gpu worker',
        recordRun: 'default queue, cpu worker',
      },
    );
    assert.equal((await getRun(store, launch.runId))!.status, 'done');
  });

  test('a worker refuses to compute a step planned for other compute: the run fails naming the difference, nothing is stored under the key; a done step is reused', async (t) => {
    const { server, env } = temporal();
    const context = await createStepContext({ home: tempHome(t) });
    t.after(async () => context.store.close());
    // The plan of a client whose ONNX Runtime differs from this worker's.
    const own = currentCompute();
    const elsewhere: ComputeFingerprint = {
      ...own,
      training: (model, optimizer, lora) => ({ ...own.training(model, optimizer, lora), ort: '0.0.0-elsewhere' }),
      sampling: (model) => ({ ...own.sampling(model), ort: '0.0.0-elsewhere' }),
    };
    const spec = tinySpec('tiny-elsewhere', { arms: { rise: {} } });
    const plan = planExperiment(spec, { compute: elsewhere });
    const boost = Object.values(plan.steps).find((s) => s.kind === 'boost')!;
    const taskQueue = uniqueTaskQueue('elsewhere');
    const worker = await createRiseWorker({ connection: env.nativeConnection, namespace: server.namespace, taskQueue, context });
    const { activities } = loadTemporalConfig({});
    const launch = await startOrAttach({ client: env.client, store: context.store, spec, plan, taskQueue, activities });
    const err = await worker.runUntil(launch.handle.result().then(() => null, (e: unknown) => e));
    assert.ok(err !== null, 'the run failed');
    assert.match(
      applicationMessage(err),
      new RegExp(`boost step ${boost.key.slice(0, 12)} was planned for other compute than this worker's.*\\n  ort: the plan names 0\\.0\\.0-elsewhere, this worker has ${ort.env.versions.common}`, 's'),
    );
    assert.equal(await getStep(context.store, boost.key), undefined, 'not claimed, not computed, not stored');
    assert.equal((await getRun(context.store, launch.runId))!.status, 'failed');

    // A step already done under that key (by a worker of that build) is reused as it is; the next one to compute is refused.
    await startStep(context.store, boost, launch.runId);
    await finishStep(context.store, boost.key, { placeholder: true });
    const again = await startOrAttach({ client: env.client, store: context.store, spec, plan, taskQueue, activities });
    const another = await createRiseWorker({ connection: env.nativeConnection, namespace: server.namespace, taskQueue, context });
    const second = applicationMessage(await another.runUntil(again.handle.result().then(() => null, (e: unknown) => e)));
    const refused = /(\w+) step (\w{12}) was planned for other compute than this worker's/.exec(second);
    assert.ok(refused !== null, second);
    assert.ok(['evaluate', 'rollout'].includes(refused[1]), second);
    assert.notEqual(refused[2], boost.key.slice(0, 12));
    assert.equal((await getStep(context.store, boost.key))!.attempts, 1, 'the done boost was not computed again');
  });
});
