/**
 * Records the event histories of a tiny two-arm experiment (experiment, arm and iteration workflows) into
 * test/workflows/histories/, for the replay test that guards the workflows' determinism. Re-record after
 * a workflow change that is meant to be incompatible (and keep the old files if running workflows must
 * still replay: then the change goes behind `patched()`).
 *
 *   node --import tsx scripts/record-histories.ts
 */

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { createStepContext } from '../activities/index.ts';
import { startOrAttach } from '../src/client/start.ts';
import { createRiseWorker, installWorkerRuntime } from '../src/client/worker.ts';
import { loadTemporalConfig } from '../temporal.config.ts';
import { startTestTemporalServer } from '../test/temporal/server.ts';
import { tinyPlan, tinySpec } from '../test/workflows/helpers.ts';
import { armWorkflowId, iterationWorkflowId } from '../workflows/experiment.ts';

const out = fileURLToPath(new URL('../test/workflows/histories/', import.meta.url));
installWorkerRuntime();
const server = await startTestTemporalServer();
const home = mkdtempSync(join(tmpdir(), 'rise-histories-'));
try {
  const env = await TestWorkflowEnvironment.createFromExistingServer({ address: server.address, namespace: server.namespace });
  const context = await createStepContext({ home });
  const spec = tinySpec('histories');
  const taskQueue = 'histories';
  const worker = await createRiseWorker({ connection: env.nativeConnection, namespace: server.namespace, taskQueue, context });
  const launch = await startOrAttach({ client: env.client, store: context.store, spec, plan: tinyPlan(spec), taskQueue, activities: loadTemporalConfig({}).activities });
  await worker.runUntil(launch.handle.result());
  const arm = armWorkflowId(launch.workflowId, 'rise');
  const recorded = { experiment: launch.workflowId, arm, 'iteration-0': iterationWorkflowId(arm, 0), 'iteration-1': iterationWorkflowId(arm, 1) };
  mkdirSync(out, { recursive: true });
  for (const [name, id] of Object.entries(recorded)) {
    const history = await env.client.workflow.getHandle(id).fetchHistory();
    // The workflow id travels with the history: child ids derive from it, so replay needs the original.
    writeFileSync(join(out, `${name}.json`), `{"workflowId": ${JSON.stringify(id)}, "history": ${historyToJSON(history)}}\n`);
    console.error(`recorded ${id} → ${name}.json (${history.events?.length} events)`);
  }
  await context.store.close();
  await env.teardown();
} finally {
  await server.stop();
  rmSync(home, { recursive: true, force: true });
}
