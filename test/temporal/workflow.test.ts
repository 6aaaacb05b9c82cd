/**
 * End to end against the real dev server: a bundled workflow runs an activity on a real worker, sets
 * rise's search attributes, and the client reads them back through describe() and a visibility query.
 * Activity options come from temporal.config.ts as data (the path rise's workflows take).
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ActivityFailure, ApplicationFailure, WorkflowFailedError, type Client } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { connect, loadTemporalConfig } from '../../temporal.config.ts';
import { RISE_ARM, RISE_EXPERIMENT, RISE_ITERATION, RISE_STATUS, RISE_STEP } from '../../src/temporal/search-attributes.ts';
import * as activities from './fixtures/activities.ts';
import { badDataWorkflow, greetWorkflow } from './fixtures/workflows.ts';
import { useTestEnvironment } from './server.ts';
import { fixtureWorkflowBundle, installQuietRuntime, uniqueTaskQueue } from './worker.ts';

installQuietRuntime();

/** Visibility is eventually consistent: poll a query until it returns `n` workflow ids. */
async function listIds(client: Client, query: string, n: number, timeoutMs = 20_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ids: string[] = [];
    for await (const wf of client.workflow.list({ query })) ids.push(wf.workflowId);
    if (ids.length >= n || Date.now() > deadline) return ids;
    await sleep(200);
  }
}

describe('workflows on the dev server', () => {
  const temporal = useTestEnvironment();

  test('runs a workflow and an activity end to end; search attributes read back by describe and list', async () => {
    const { server, env } = temporal();
    const config = loadTemporalConfig({ RISE_EVALUATE_START_TO_CLOSE: '1m', RISE_EVALUATE_HEARTBEAT: '20s' });
    const taskQueue = uniqueTaskQueue('e2e');
    const experiment = `exp-${taskQueue}`;
    const worker = await Worker.create({
      connection: env.nativeConnection,
      namespace: server.namespace,
      taskQueue,
      workflowBundle: await fixtureWorkflowBundle(),
      activities,
    });
    const workflowId = `rise/${experiment}/run-1/rise/iter-2`;
    const result = await worker.runUntil(
      env.client.workflow.execute(greetWorkflow, {
        taskQueue,
        workflowId,
        args: [{ name: 'RISE', step: config.activities.evaluate }],
        typedSearchAttributes: [
          { key: RISE_EXPERIMENT, value: experiment },
          { key: RISE_ARM, value: 'rise' },
        ],
      }),
    );
    assert.equal(result, 'hello, RISE (attempt 1)');

    const description = await env.client.workflow.getHandle(workflowId).describe();
    assert.equal(description.status.name, 'COMPLETED');
    const sa = description.typedSearchAttributes;
    assert.equal(sa.get(RISE_EXPERIMENT), experiment);
    assert.equal(sa.get(RISE_ARM), 'rise');
    assert.equal(sa.get(RISE_STEP), 'evaluate');
    assert.equal(sa.get(RISE_ITERATION), 2);
    assert.equal(sa.get(RISE_STATUS), 'done');

    const ids = await listIds(
      env.client,
      `RiseExperiment = "${experiment}" AND RiseIteration = 2 AND RiseStep = "evaluate" AND RiseStatus = "done"`,
      1,
    );
    assert.deepEqual(ids, [workflowId]);
  });

  test('connect() from temporal.config.ts gives a Client and a NativeConnection a worker can use', async () => {
    const { server } = temporal();
    const config = loadTemporalConfig({ TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: server.namespace });
    assert.equal(config.devServer.enabled, false);
    const connections = await connect(config);
    try {
      const taskQueue = uniqueTaskQueue('connect');
      const worker = await Worker.create({
        connection: connections.nativeConnection,
        namespace: config.connection.namespace,
        taskQueue,
        workflowBundle: await fixtureWorkflowBundle(),
        activities,
      });
      const result = await worker.runUntil(
        connections.client.workflow.execute(greetWorkflow, {
          taskQueue,
          workflowId: `connect-${taskQueue}`,
          args: [{ name: 'config', step: config.activities.rollout }],
        }),
      );
      assert.equal(result, 'hello, config (attempt 1)');
    } finally {
      await connections.close();
    }
  });

  test('a non-retryable error type from the config fails the activity on its first attempt', async () => {
    const { server, env } = temporal();
    const config = loadTemporalConfig({ RISE_FILTER_RETRY_INITIAL: '100ms', RISE_FILTER_RETRY_MAX_ATTEMPTS: '5' });
    assert.ok(config.activities.filter.retry.nonRetryableErrorTypes.includes('DataError'));
    const taskQueue = uniqueTaskQueue('nonretry');
    const worker = await Worker.create({
      connection: env.nativeConnection,
      namespace: server.namespace,
      taskQueue,
      workflowBundle: await fixtureWorkflowBundle(),
      activities,
    });
    const workflowId = `nonretry-${taskQueue}`;
    const run = env.client.workflow.execute(badDataWorkflow, {
      taskQueue,
      workflowId,
      args: [{ name: 'row 7', step: config.activities.filter }],
    });
    const err = await worker.runUntil(run.then(() => null, (e: unknown) => e));
    assert.ok(err instanceof WorkflowFailedError, String(err));
    assert.ok(err.cause instanceof ActivityFailure);
    assert.ok(err.cause.cause instanceof ApplicationFailure);
    assert.equal(err.cause.cause.type, 'DataError');
    assert.match(err.cause.cause.message, /bad data: row 7/);
    assert.deepEqual([...activities.attempts.values()], [1]);
  });
});
