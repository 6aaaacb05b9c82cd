/** Worker-side helpers for the Temporal tests: a quiet runtime and one workflow bundle per process. */

import { fileURLToPath } from 'node:url';
import { DefaultLogger, Runtime, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';

let installed = false;

/** Worker logs at WARN (call before any connection or worker is created: one Runtime per process). */
export function installQuietRuntime(): void {
  if (installed) return;
  Runtime.install({ logger: new DefaultLogger('WARN') });
  installed = true;
}

let bundle: Promise<WorkflowBundleWithSourceMap> | null = null;

/** test/temporal/fixtures/workflows.ts, bundled once per test process. */
export function fixtureWorkflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({
    workflowsPath: fileURLToPath(new URL('./fixtures/workflows.ts', import.meta.url)),
    logger: new DefaultLogger('WARN'),
  });
  return bundle;
}

/** A task queue name no other test uses. */
export function uniqueTaskQueue(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
