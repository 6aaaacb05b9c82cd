/**
 * Steering a run on the dev server: an arm whose metric stalls stops early by its stop rule (the rest of
 * its planned iterations never run, and `rise status` says where and why); a run that reaches its token
 * budget pauses between steps, says so in `rise status`, and `rise resume --tokens` takes it to the end
 * with no finished step computed twice.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createStepContext } from '../../activities/index.ts';
import { follow } from '../../src/client/progress.ts';
import { startOrAttach } from '../../src/client/start.ts';
import { createRiseWorker, installWorkerRuntime } from '../../src/client/worker.ts';
import { getRun, getStep, runUsage, stepStatuses } from '../../src/store/index.ts';
import { loadTemporalConfig } from '../../temporal.config.ts';
import { armProgressQuery, armWorkflowId, experimentProgressQuery } from '../../workflows/experiment.ts';
import { useTestEnvironment } from '../temporal/server.ts';
import { uniqueTaskQueue } from '../temporal/worker.ts';
import { rise, tempHome, tinyPlan, tinySpec, waitFor } from './helpers.ts';

installWorkerRuntime();

describe('steering on the dev server', () => {
  const temporal = useTestEnvironment();

  test('an arm stops when its metric stalls: later iterations never run, and status says why', async (t) => {
    const { server, env } = temporal();
    const home = tempHome(t);
    const context = await createStepContext({ home });
    t.after(async () => context.store.close());
    // No iteration can beat iteration 0 by 100 points unless it goes from 0 to 100 %: the arm stops after iteration 1.
    const spec = tinySpec('tiny-stop', { arms: { rise: {} }, iterations: { max: 3, stopWhen: { metric: 'm1@t1', minGain: 100, patience: 1 } } });
    const plan = tinyPlan(spec);
    assert.deepEqual([...new Set(plan.arms[0].steps.map((s) => s.iteration))], [0, 1, 2, 3], 'the plan holds every iteration up to max');
    const taskQueue = uniqueTaskQueue('stop');
    const cli = { RISE_HOME: home, TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: server.namespace, RISE_TASK_QUEUE: taskQueue };
    const { activities } = loadTemporalConfig({});
    const worker = await createRiseWorker({ connection: env.nativeConnection, namespace: server.namespace, taskQueue, context });
    const launch = await startOrAttach({ client: env.client, store: context.store, spec, plan, taskQueue, activities });
    await worker.runUntil(async () => {
      const metrics = await launch.handle.result();
      assert.deepEqual(Object.keys(metrics.rise), ['0', '1']);
      const arm = await env.client.workflow.getHandle(armWorkflowId(launch.workflowId, 'rise')).query(armProgressQuery);
      assert.equal(arm.stopped?.iteration, 1);
      assert.match(arm.stopped!.reason, /^m1@t1 on in-dist gained less than 100 points over its best/);
    });
    assert.equal((await getRun(context.store, launch.runId))!.status, 'done');
    const later = plan.arms[0].steps.filter((s) => s.iteration > 1);
    assert.ok(later.length > 0);
    for (const use of later) assert.equal(await getStep(context.store, use.key), undefined, `${use.kind} of iteration ${use.iteration} never started`);
    const status = await rise(['status', launch.runId], cli);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /stopped early after iteration 1: m1@t1 on in-dist gained less than 100 points/);
    assert.match(status.stdout, /iteration 2 .*stopped early/);
  });

  test('a run pauses at its token budget and resumes to completion, computing nothing twice', async (t) => {
    const { server, env } = temporal();
    const home = tempHome(t);
    const context = await createStepContext({ home });
    t.after(async () => context.store.close());
    // The boost trains on more than one token, so the check before the next step pauses the run.
    const spec = tinySpec('tiny-budget', { arms: { rise: {} }, budget: { tokens: 1 } });
    const plan = tinyPlan(spec);
    const taskQueue = uniqueTaskQueue('budget');
    const cli = { RISE_HOME: home, TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: server.namespace, RISE_TASK_QUEUE: taskQueue };
    const { activities } = loadTemporalConfig({});
    const worker = await createRiseWorker({ connection: env.nativeConnection, namespace: server.namespace, taskQueue, context });
    const launch = await startOrAttach({ client: env.client, store: context.store, spec, plan, taskQueue, activities });
    const lines: string[] = [];
    await worker.runUntil(async () => {
      const followed = follow(env.client, launch.workflowId, launch.handle.result(), (line) => lines.push(line), false);
      const pause = await waitFor('the budget to pause the run', async () => (await launch.handle.query(experimentProgressQuery).catch(() => undefined))?.pause ?? undefined);
      assert.equal(pause.by, 'budget');
      assert.match(pause.reason ?? '', /^budget reached: \d+ tokens of 1 \(spent \d+ tokens of 1, /);
      const statuses = await stepStatuses(context.store, Object.keys(plan.steps));
      const done = Object.keys(plan.steps).filter((k) => statuses.get(k) === 'done');
      assert.deepEqual(done.map((k) => plan.steps[k].kind), ['boost'], 'held after the first step');
      assert.ok((await runUsage(context.store, launch.runId)).tokens > 1);

      const status = await rise(['status', launch.runId], cli);
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, /paused by budget since .* \(budget reached: \d+ tokens of 1/);
      assert.match(status.stdout, /budget: spent \d+ tokens of 1, /);

      const bad = await rise(['resume', launch.runId, '--tokens', 'lots'], cli);
      assert.equal(bad.code, 2, bad.stderr);
      assert.match(bad.stderr, /--tokens: expected a whole number of tokens > 0; found "lots"/);
      const resumed = await rise(['resume', launch.runId, '--tokens', '100000000'], cli);
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.match(resumed.stdout, /budget now 100000000 tokens, no limit on compute hours/);
      const metrics = await followed;
      assert.deepEqual(Object.keys(metrics.rise), ['0', '1']);
    });
    assert.ok(lines.some((l) => /^paused by budget since \d\d:\d\d:\d\d \(budget reached: \d+ tokens of 1 /.test(l)), lines.join('\n'));
    assert.equal((await getRun(context.store, launch.runId))!.status, 'done');
    for (const key of Object.keys(plan.steps)) {
      const step = (await getStep(context.store, key))!;
      assert.equal(step.status, 'done');
      assert.equal(step.attempts, 1, `${step.kind} ${key.slice(0, 12)} computed once`);
    }
  });
});
