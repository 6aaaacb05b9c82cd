/**
 * Starting an experiment, or attaching to it. A spec launched while the same plan is already running
 * attaches to that run instead of starting a second one (the store knows the runs, Temporal knows which
 * is alive). A new run gets a row in the store (spec, plan, arms) and a workflow `rise/<experiment>/<run>`.
 */

import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client, type WorkflowExecutionDescription, type WorkflowHandle } from '@temporalio/client';
import { experimentProgressQuery, experimentWorkflow, experimentWorkflowId, type PauseInfo } from '../../workflows/experiment.ts';
import { hasLimit, type Budget } from '../plan/budget.ts';
import { canonicalJson } from '../plan/hash.ts';
import type { Plan } from '../plan/plan.ts';
import type { ExperimentSpec } from '../spec/types.ts';
import { createRun, listRuns, newRunId, setRunStatus, type Store } from '../store/index.ts';
import type { StepActivityConfigs } from '../temporal/activity-options.ts';
import { RISE_EXPERIMENT, RISE_STATUS } from '../temporal/search-attributes.ts';

export interface Launch {
  runId: string;
  workflowId: string;
  handle: WorkflowHandle<typeof experimentWorkflow>;
  /** True when an already running run of the same plan was found. */
  attached: boolean;
}

export interface LaunchOptions {
  client: Client;
  store: Store;
  spec: ExperimentSpec;
  plan: Plan;
  taskQueue: string;
  activities: StepActivityConfigs;
}

/** The workflow's description while it runs; null when it closed or was never started (other errors are thrown). */
async function describeRunning(client: Client, workflowId: string): Promise<WorkflowExecutionDescription | null> {
  try {
    const description = await client.workflow.getHandle(workflowId).describe();
    return description.status.name === 'RUNNING' ? description : null;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  }
}

/** Whether the workflow is running now. */
export async function isRunning(client: Client, workflowId: string): Promise<boolean> {
  return (await describeRunning(client, workflowId)) !== null;
}

/** A run's workflow as Temporal sees it now: closed (or never started), running, or paused (by whom and since when, when a worker said). */
export type LiveState =
  | { state: 'closed' }
  | { state: 'running' }
  | { state: 'paused'; pause: PauseInfo | null; why?: string };

/** How long `liveState` waits for a worker to answer who paused a run. */
const PAUSE_QUERY_MS = 5_000;

/**
 * Whether a run's experiment workflow is running, and whether it is paused. The pause itself is read
 * from the search attribute RiseStatus (no worker needed); who paused it and when from the `progress`
 * query, which a worker answers: without one in time, `pause` is null and `why` says so.
 */
export async function liveState(client: Client, workflowId: string, queryMs = PAUSE_QUERY_MS): Promise<LiveState> {
  const description = await describeRunning(client, workflowId);
  if (description === null) return { state: 'closed' };
  if (description.typedSearchAttributes.get(RISE_STATUS) !== 'paused') return { state: 'running' };
  try {
    const handle = client.workflow.getHandle(workflowId);
    const progress = await client.connection.withDeadline(Date.now() + queryMs, () => handle.query(experimentProgressQuery));
    return { state: 'paused', pause: progress.pause ?? null, ...(progress.pause ? {} : { why: 'its workflow code predates recording who paused it' }) };
  } catch (err) {
    return { state: 'paused', pause: null, why: `no worker answered the progress query (${(err as Error).message.split('\n')[0]})` };
  }
}

const samePlan = (a: unknown, b: Plan) => a !== null && canonicalJson(a as never) === canonicalJson(b as never);

export async function startOrAttach(o: LaunchOptions): Promise<Launch> {
  for (const run of await listRuns(o.store, o.spec.name)) {
    if (run.status !== 'running' || run.workflowId === null || !samePlan(run.plan, o.plan)) continue;
    if (await isRunning(o.client, run.workflowId)) {
      return { runId: run.id, workflowId: run.workflowId, handle: o.client.workflow.getHandle(run.workflowId), attached: true };
    }
  }
  const runId = newRunId();
  const workflowId = experimentWorkflowId(o.spec.name, runId);
  await createRun(o.store, { id: runId, experiment: o.spec.name, spec: o.spec, plan: o.plan, arms: o.spec.arms, workflowId });
  const handle = await startExperiment({ ...o, budget: o.spec.budget }, runId, workflowId);
  return { runId, workflowId, handle, attached: false };
}

/** Starts (a new execution of) a run's experiment workflow; used by a launch and by replay. */
export async function startExperiment(
  o: Pick<LaunchOptions, 'client' | 'store' | 'plan' | 'taskQueue' | 'activities'> & { budget?: Budget },
  runId: string,
  workflowId: string,
): Promise<WorkflowHandle<typeof experimentWorkflow>> {
  try {
    return await o.client.workflow.start(experimentWorkflow, {
      workflowId,
      taskQueue: o.taskQueue,
      args: [{ runId, plan: o.plan, activities: o.activities, ...(hasLimit(o.budget) ? { budget: o.budget } : {}) }],
      typedSearchAttributes: [
        { key: RISE_EXPERIMENT, value: o.plan.experiment },
        { key: RISE_STATUS, value: 'running' },
      ],
      staticSummary: `RISE experiment ${o.plan.experiment}, run ${runId}`,
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return o.client.workflow.getHandle(workflowId);
    await setRunStatus(o.store, runId, 'failed', `could not start the workflow: ${(err as Error).message}`);
    throw err;
  }
}
