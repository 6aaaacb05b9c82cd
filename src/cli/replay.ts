/**
 * `rise replay RUN --from iteration:N[:step]`: recompute that step (or the whole iteration) and everything
 * downstream of it, reusing the rest. The steps are marked stale in the store (their old results stay as
 * history) and a new execution of the run's experiment workflow starts; every other step finds its
 * result and returns at once.
 */

import type { Command } from 'commander';
import { replayKeys, parseReplayFrom } from '../plan/replay.ts';
import { planFromJson } from '../plan/plan.ts';
import { shortKey } from '../steps/index.ts';
import { dependents, markStale, setRunStatus } from '../store/index.ts';
import { UsageError } from './errors.ts';
import { deviceOption, openStoreAndTemporal, positiveInt, startLocalDevice, superviseRun, type RunOptions } from './run.ts';
import { findRun, withStore } from './runs.ts';

interface ReplayOptions extends RunOptions {
  from: string;
  arm?: string;
}

async function replay(id: string, options: ReplayOptions): Promise<void> {
  const { run, plan, keys } = await withStore(async (store) => {
    const run = await findRun(store, id);
    const plan = planFromJson(run.plan);
    if (plan === null || run.workflowId === null) throw new UsageError(`run ${id} has no recorded plan; re-run its spec instead`);
    let keys: string[];
    try {
      keys = replayKeys(plan, parseReplayFrom(options.from), options.arm);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    return { run, plan, keys };
  });
  await startLocalDevice(options, 'replay');
  const { isRunning, startExperiment } = await import('../client/start.ts');
  const { store, temporal } = await openStoreAndTemporal();
  try {
    const workflowId = run.workflowId!;
    if (await isRunning(temporal.client, workflowId)) throw new UsageError(`run ${id} is still running (workflow ${workflowId}); replay it once it has stopped`);
    // Steps of other runs built on these (another spec sharing them) are stale too, or they would keep
    // results made from the old ones.
    const elsewhere = (await dependents(store, keys)).filter((k) => !keys.includes(k));
    const marked = await markStale(store, [...keys, ...elsewhere]);
    out(`replaying run ${id} from ${options.from}${options.arm ? ` (arm ${options.arm})` : ''}: ${keys.length} step(s) to recompute, ${Object.keys(plan.steps).length - keys.length} reused`);
    for (const key of keys) out(`  ${shortKey(key)} ${plan.steps[key].kind}${marked.includes(key) ? ' (marked stale)' : ''}`);
    if (elsewhere.length > 0) out(`  and ${elsewhere.length} step(s) of other runs that were built on them (marked stale)`);
    await setRunStatus(store, id, 'running');
    const { config } = temporal;
    const handle = await startExperiment({ client: temporal.client, store, plan, taskQueue: config.taskQueues.default, activities: config.activities }, id, workflowId);
    await superviseRun(temporal, store, { runId: id, workflowId, handle }, options, `rise replay ${id} --from ${options.from}`);
  } finally {
    await store.close();
    await temporal.close();
  }
}

const out = (line: string) => process.stdout.write(`${line}\n`);

export function registerReplayCommand(program: Command): void {
  program
    .command('replay')
    .description('recompute a run from a step: that step (or iteration) and everything downstream; every other step is reused')
    .argument('<run>', 'run id (as `rise run` printed it)')
    .requiredOption('--from <where>', 'iteration:N (every step of iteration N; 0 is the boost) or iteration:N:STEP (boost, rollout, relabel, filter, train, evaluate)')
    .option('--arm <name>', 'only this arm\'s steps (steps it shares with other arms are recomputed for all)')
    .option('--detach', 'return once the replay is started')
    .option('--worker', 'run a worker in this process (default: only with the embedded dev server)')
    .option('--no-worker', 'do not run a worker in this process')
    .option('--concurrency <n>', 'activities the in-process worker runs at once', positiveInt, 2)
    .addOption(deviceOption())
    .action(async (id: string, options: ReplayOptions) => {
      await replay(id, options);
    });
}
