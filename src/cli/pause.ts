/**
 * `rise pause RUN` and `rise resume RUN`: the `pause` / `resume` signals to the run's experiment
 * workflow, which passes them on to its arms and iterations. A paused run finishes the steps running
 * now and starts no other until it is resumed; the pause records who sent it (`user@host`) and when,
 * which `rise status` and `rise run`'s progress show. Neither starts a Temporal server: with none up,
 * no run of this home is running.
 */

import { hostname, userInfo } from 'node:os';
import type { Command } from 'commander';
import type { RunRecord } from '../store/index.ts';
import { UsageError } from './errors.ts';
import { findRun, reachTemporal, withStore } from './runs.ts';

const out = (line: string) => process.stdout.write(`${line}\n`);

/** Who sends the signal: `user@host`. */
export function sender(): string {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    user = process.env.USER ?? process.env.USERNAME ?? 'unknown'; // no passwd entry (some containers)
  }
  return `${user}@${hostname()}`;
}

async function signalRun(id: string, action: 'pause' | 'resume'): Promise<void> {
  const run: RunRecord = await withStore(async (store) => findRun(store, id));
  if (run.workflowId === null) throw new UsageError(`run ${id} has no workflow to ${action}`);
  if (run.status !== 'running') throw new UsageError(`run ${id} is not running (it is ${run.status}); only a running run can be ${action}d`);
  const temporal = await reachTemporal();
  try {
    const { liveState } = await import('../client/start.ts');
    const { pauseSignal, resumeSignal } = await import('../../workflows/experiment.ts');
    const before = await liveState(temporal.client, run.workflowId);
    if (before.state === 'closed') throw new UsageError(`run ${id} is not running: its workflow ${run.workflowId} is not open in Temporal`);
    const by = sender();
    const handle = temporal.client.workflow.getHandle(run.workflowId);
    try {
      // Sent even when the run already looks paused (or not): the search attribute lags a signal that no
      // worker has taken yet, and a second pause keeps the first one's sender and time.
      await handle.signal(action === 'pause' ? pauseSignal : resumeSignal, { by });
    } catch (err) {
      if (err instanceof Error && err.name === 'WorkflowNotFoundError') throw new UsageError(`run ${id} is not running: its workflow ${run.workflowId} has closed`);
      throw err;
    }
    if (action === 'pause') {
      const already = before.state === 'paused' && before.pause !== null ? ` (it was already paused by ${before.pause.by})` : '';
      out(`paused run ${id} as ${by}${already}: steps running now finish, no new step starts; \`rise resume ${id}\` continues it`);
    } else {
      out(`resumed run ${id} as ${by}${before.state === 'running' ? ' (it was not paused)' : ''}`);
    }
  } finally {
    await temporal.close();
  }
}

export function registerPauseCommands(program: Command): void {
  program
    .command('pause')
    .description('pause a running run between steps (steps running now finish); records who paused it and when')
    .argument('<run>', 'run id (as `rise run` printed it)')
    .action(async (id: string) => {
      await signalRun(id, 'pause');
    });
  program
    .command('resume')
    .description('resume a paused run')
    .argument('<run>', 'run id (as `rise run` printed it)')
    .action(async (id: string) => {
      await signalRun(id, 'resume');
    });
}
