/**
 * The orchestration end to end on the real dev server: a tiny two-arm experiment through the
 * experiment → arm → iteration workflows and every step activity, over a real store.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createStepContext } from '../../activities/index.ts';
import { createRiseWorker, installWorkerRuntime } from '../../src/client/worker.ts';
import { startOrAttach } from '../../src/client/start.ts';
import { stepArms } from '../../src/plan/plan.ts';
import { RISE_STATUS } from '../../src/temporal/search-attributes.ts';
import {
  armProgressQuery,
  armWorkflowId,
  experimentProgressQuery,
  iterationProgressQuery,
  metricsQuery,
  pauseSignal,
  resumeSignal,
} from '../../workflows/experiment.ts';
import { getRun, getStep, readMetrics } from '../../src/store/index.ts';
import { loadTemporalConfig } from '../../temporal.config.ts';
import { useTestEnvironment } from '../temporal/server.ts';
import { uniqueTaskQueue } from '../temporal/worker.ts';
import { tempHome, tinyPlan, tinySpec, waitFor } from './helpers.ts';

installWorkerRuntime();

describe('experiments on the dev server', () => {
  const temporal = useTestEnvironment();

  test('two arms share their common steps: each runs once, and both arms get metrics', async (t) => {
    const { server, env } = temporal();
    const context = await createStepContext({ home: tempHome(t) });
    t.after(async () => context.store.close());
    const spec = tinySpec('tiny-shared');
    const plan = tinyPlan(spec);
    const taskQueue = uniqueTaskQueue('e2e');
    const worker = await createRiseWorker({ connection: env.nativeConnection, namespace: server.namespace, taskQueue, context });
    const { activities } = loadTemporalConfig({});
    const launch = await startOrAttach({ client: env.client, store: context.store, spec, plan, taskQueue, activities });
    // Launching the same spec again while it runs attaches to the run instead of starting a second one.
    const again = await startOrAttach({ client: env.client, store: context.store, spec, plan, taskQueue, activities });
    assert.deepEqual([again.attached, again.runId, again.workflowId], [true, launch.runId, launch.workflowId]);
    const metrics = await worker.runUntil(launch.handle.result());

    assert.deepEqual(Object.keys(metrics).sort(), ['rise', 'uniform']);
    for (const arm of ['rise', 'uniform']) {
      assert.deepEqual(Object.keys(metrics[arm]).sort(), ['0', '1']);
      assert.ok(typeof metrics[arm][1]['in-dist']['m1@t1'] === 'number');
    }
    const shared = [...stepArms(plan)].filter(([, arms]) => arms.length === 2).map(([key]) => key);
    const kinds = shared.map((k) => plan.steps[k].kind).sort();
    assert.deepEqual(kinds, ['boost', 'evaluate', 'filter', 'relabel', 'rollout']);
    for (const key of shared) assert.equal((await getStep(context.store, key))!.attempts, 1, `${plan.steps[key].kind} ran once`);
    for (const key of Object.keys(plan.steps)) assert.equal((await getStep(context.store, key))!.status, 'done');
    assert.equal((await getRun(context.store, launch.runId))!.status, 'done');
    const rows = await readMetrics(context.store, { runId: launch.runId });
    assert.deepEqual([...new Set(rows.map((r) => `${r.arm}/${r.iteration}`))].sort(), ['rise/0', 'rise/1', 'uniform/0', 'uniform/1']);
  });

  test('pause holds the run between steps (children too), resume continues it; progress and metrics answer queries', async (t) => {
    const { server, env } = temporal();
    const context = await createStepContext({ home: tempHome(t) });
    t.after(async () => context.store.close());
    const spec = tinySpec('tiny-pause', { arms: { rise: {} } });
    const plan = tinyPlan(spec);
    const taskQueue = uniqueTaskQueue('pause');
    const worker = await createRiseWorker({ connection: env.nativeConnection, namespace: server.namespace, taskQueue, context });
    const { activities } = loadTemporalConfig({});
    await worker.runUntil(async () => {
      const launch = await startOrAttach({ client: env.client, store: context.store, spec, plan, taskQueue, activities });
      const armId = armWorkflowId(launch.workflowId, 'rise');
      // Pause once the first iteration is under way, so the signal has a child to reach.
      const iteration = await waitFor('iteration 0 to start', async () => {
        const p = await env.client.workflow.getHandle(armId).query(armProgressQuery).catch(() => undefined);
        return p?.current ?? undefined;
      });
      await launch.handle.signal(pauseSignal);
      const held = await waitFor('the iteration to hold between steps', async () => {
        const p = await env.client.workflow.getHandle(iteration).query(iterationProgressQuery);
        return p.pause !== null && !p.steps.some((s) => s.state === 'running') ? p : undefined;
      });
      const doneWhenHeld = held.steps.filter((s) => s.state !== 'pending').length;
      await sleep(1500);
      const still = await env.client.workflow.getHandle(iteration).query(iterationProgressQuery);
      assert.equal(still.steps.filter((s) => s.state !== 'pending').length, doneWhenHeld, 'no step started while paused');
      assert.ok(doneWhenHeld < still.steps.length || still.iteration === 0, 'paused before the end');
      assert.equal((await launch.handle.query(experimentProgressQuery)).pause !== null, true);
      assert.equal((await launch.handle.describe()).typedSearchAttributes.get(RISE_STATUS), 'paused');

      await launch.handle.signal(resumeSignal);
      const metrics = await launch.handle.result();
      assert.deepEqual(await launch.handle.query(metricsQuery), metrics);
      assert.deepEqual(Object.keys(metrics.rise).sort(), ['0', '1']);
      const progress = await launch.handle.query(experimentProgressQuery);
      assert.deepEqual(progress.arms.map((a) => [a.name, a.state]), [['rise', 'done']]);
    });
  });
});
