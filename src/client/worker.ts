/**
 * A rise worker: the workflows (bundled once per process) and the step activities over one store, on one
 * task queue. `rise run` runs one in-process; `rise worker` runs one standalone.
 */

import { fileURLToPath } from 'node:url';
import { DefaultLogger, Runtime, Worker, bundleWorkflowCode, type NativeConnection, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createActivities, type StepContext } from '../../activities/index.ts';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../../workflows/index.ts', import.meta.url));

let bundle: Promise<WorkflowBundleWithSourceMap> | null = null;

/** The workflow code, bundled (webpack) the first time a worker is created in this process. */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: new DefaultLogger('WARN') });
  return bundle;
}

let runtimeInstalled = false;

/** The SDK's own logging at WARN, so a progress display is not drowned; once per process, before any worker. */
export function installWorkerRuntime(): void {
  if (runtimeInstalled) return;
  try {
    Runtime.install({ logger: new DefaultLogger('WARN') });
  } catch {
    // Already installed by the embedding process (e.g. a test harness): keep its logger.
  }
  runtimeInstalled = true;
}

export interface RiseWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  context: StepContext;
  /** Activities run at once (default 2: steps of different arms can overlap). */
  maxConcurrentActivities?: number;
  /** How Temporal and the store (which worker ran each shard) name this worker; default `pid@host`. */
  identity?: string;
}

export async function createRiseWorker(o: RiseWorkerOptions): Promise<Worker> {
  installWorkerRuntime();
  return Worker.create({
    connection: o.connection,
    namespace: o.namespace,
    taskQueue: o.taskQueue,
    workflowBundle: await workflowBundle(),
    activities: createActivities(o.context),
    maxConcurrentActivityTaskExecutions: o.maxConcurrentActivities ?? 2,
    ...(o.identity !== undefined ? { identity: o.identity } : {}),
  });
}
