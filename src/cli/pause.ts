/**
 * `rise pause RUN` and `rise resume RUN`: the `pause` / `resume` signals to the run's experiment
 * workflow, which passes them on to its arms and iterations. A paused run finishes the steps running
 * now and starts no other until it is resumed; the pause records who sent it (`user@host`) and when,
 * which `rise status` and `rise run`'s progress show. Neither starts a Temporal server: with none up,
 * no run of this home is running.
 */

import { hostname, userInfo } from 'node:os';
import type { Command } from 'commander';
import type { Budget } from '../plan/budget.ts';
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

/** A resume's new budget, from its flags; undefined when it sets none. */
function budgetFlags(options: ResumeOptions): Budget | undefined {
  if (options.hours === undefined && options.tokens === undefined) return undefined;
  const hours = options.hours === undefined ? null : Number(options.hours);
  const tokens = options.tokens === undefined ? null : Number(options.tokens);
  if (hours !== null && !(Number.isFinite(hours) && hours > 0)) throw new UsageError(`--hours: expected a number of hours > 0; found ${JSON.stringify(options.hours)}`);
  if (tokens !== null && !(Number.isSafeInteger(tokens) && tokens > 0)) throw new UsageError(`--tokens: expected a whole number of tokens > 0; found ${JSON.stringify(options.tokens)}`);
  return { hours, tokens };
}

interface ResumeOptions {
  hours?: string;
  tokens?: string;
}

async function signalRun(id: string, action: 'pause' | 'resume', budget?: Budget): Promise<void> {
  const run: RunRecord = await withStore(async (store) => findRun(store, id));
  if (run.workflowId === null) throw new UsageError(`run ${id} has no workflow to ${action}`);
  if (run.status !== 'running') throw new UsageError(`run ${id} is not running (it is ${run.status}); only a running run can be ${action}d`);
  const temporal = await reachTemporal();
  try {
    const { liveState } = await import('../client/start.ts');
    const { BUDGET_PAUSER, pauseSignal, resumeSignal } = await import('../../workflows/experiment.ts');
    const before = await liveState(temporal.client, run.workflowId);
    if (before.state === 'closed') throw new UsageError(`run ${id} is not running: its workflow ${run.workflowId} is not open in Temporal`);
    const by = sender();
    const handle = temporal.client.workflow.getHandle(run.workflowId);
    try {
      // Sent even when the run already looks paused (or not): the search attribute lags a signal that no
      // worker has taken yet, and a second pause keeps the first one's sender and time.
      await handle.signal(action === 'pause' ? pauseSignal : resumeSignal, { by, ...(budget ? { budget } : {}) });
    } catch (err) {
      if (err instanceof Error && err.name === 'WorkflowNotFoundError') throw new UsageError(`run ${id} is not running: its workflow ${run.workflowId} has closed`);
      throw err;
    }
    if (action === 'pause') {
      const already = before.state === 'paused' && before.pause !== null ? ` (it was already paused by ${before.pause.by})` : '';
      out(`paused run ${id} as ${by}${already}: steps running now finish, no new step starts; \`rise resume ${id}\` continues it`);
    } else {
      const lifted = before.state === 'paused' && before.pause?.by === BUDGET_PAUSER ? '; its budget is lifted (pass --hours or --tokens to set a new one)' : '';
      const set = budget ? `; budget now ${budget.tokens ?? 'no limit on'} tokens, ${budget.hours ?? 'no limit on'} compute hours` : lifted;
      out(`resumed run ${id} as ${by}${before.state === 'running' ? ' (it was not paused)' : ''}${set}`);
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
    .description('resume a paused run; one its budget paused goes on without a budget, or with the one --hours and --tokens give')
    .argument('<run>', 'run id (as `rise run` printed it)')
    .option('--hours <hours>', 'a new budget: compute hours the run may spend in all (replaces the old budget)')
    .option('--tokens <tokens>', 'a new budget: tokens the run may sample and train on in all (replaces the old budget)')
    .action(async (id: string, options: ResumeOptions) => {
      await signalRun(id, 'resume', budgetFlags(options));
    });
}
