/**
 * `rise extend RUN --iterations N` and `rise fork RUN --set path=value ... [--from iteration:K]`: a new
 * run from a run's stored spec, changed. A fork plans the changed spec as `rise run` plans any spec (with
 * `--from`, spliced onto the run's plan from iteration K on: src/plan/fork.ts); an extension splices the
 * added iterations after the run's last, so every step the run has is kept as it ran. Every step whose key
 * is done in the store is reused, and the table printed before the start says which steps are reused and,
 * for every other one, why its key is new (`explainChanges` against the run's plan).
 *
 * Both start a new run rather than continuing the old one: the old run's report stays what it was, and
 * the new run's plan covers every iteration, so its status and report show them all (the reused steps
 * cost nothing: an evaluation that is reused still writes its metrics for the new run).
 */

import { InvalidArgumentError, type Command } from 'commander';
import { forkPlan, ForkError, lastIteration } from '../plan/fork.ts';
import { planExperiment, planFromJson, type Plan } from '../plan/plan.ts';
import { parseReplayFrom } from '../plan/replay.ts';
import { explainChanges, placeOf } from '../plan/stale.ts';
import { SpecError } from '../spec/issues.ts';
import { applySettings, parseSetting, SettingError, type Setting } from '../spec/set.ts';
import type { ExperimentSpec } from '../spec/types.ts';
import { shortKey } from '../steps/index.ts';
import { stepStatuses, type StepState, type Store } from '../store/index.ts';
import { UsageError } from './errors.ts';
import { deviceOption, openStoreAndTemporal, positiveInt, startLocalDevice, superviseRun, type RunOptions } from './run.ts';
import { findRun, withStore } from './runs.ts';

interface LaunchFlags extends RunOptions {
  dryRun?: boolean;
}

interface ForkOptions extends LaunchFlags {
  set: Setting[];
  from?: string;
}

interface ExtendOptions extends LaunchFlags {
  iterations: number;
}

const out = (line: string) => process.stdout.write(`${line}\n`);

const ACTION: Record<StepState, string> = { done: 'reused', running: 'running now (waited for)', failed: 'run (failed before)', pending: 'run' };

/**
 * Every step of `plan` by arm and iteration: reused (done in the store) or to run, and for a step to
 * run, why its key is not the one `previous` had at its place.
 */
export function formatReuse(previous: Plan, plan: Plan, status: (key: string) => StepState): string {
  const changes = explainChanges(previous, plan);
  const lines: string[] = [];
  const counted = new Map<string, StepState>();
  for (const arm of plan.arms) {
    lines.push(`arm ${arm.name}`);
    let iteration = -1;
    for (const use of arm.steps) {
      if (use.iteration !== iteration) {
        iteration = use.iteration;
        lines.push(`  iteration ${iteration}${iteration === 0 ? ' (boost)' : ''}`);
      }
      const state = status(use.key);
      counted.set(use.key, state);
      const label = use.model ?? use.evalSet ?? '';
      lines.push(`    ${shortKey(use.key)}  ${use.kind.padEnd(8)} ${label.padEnd(10)} ${ACTION[state]}`);
      const why = changes.get(placeOf(arm, use));
      if (state !== 'done') lines.push(...(why ?? ['same key as the run\'s step, which did not finish']).map((reason) => `        why: ${reason}`));
    }
  }
  const reused = [...counted.values()].filter((s) => s === 'done').length;
  lines.push('', `${counted.size} distinct steps: ${reused} reused, ${counted.size - reused} to run`);
  return `${lines.join('\n')}\n`;
}

/** A run's stored spec and plan, or a usage error saying why it has none. */
async function storedRun(id: string): Promise<{ spec: ExperimentSpec; plan: Plan }> {
  return withStore(async (store) => {
    const run = await findRun(store, id);
    const plan = planFromJson(run.plan);
    if (plan === null) throw new UsageError(`run ${id} has no recorded plan; change and re-run its spec instead`);
    return { spec: run.spec as ExperimentSpec, plan };
  });
}

/** Plans the changed spec (spliced onto the run's plan from iteration `from` on, when given), prints the reuse table, and starts it unless --dry-run. */
async function launch(id: string, previous: Plan, spec: ExperimentSpec, from: number | null, options: LaunchFlags, command: 'extend' | 'fork', rerun: string): Promise<void> {
  if (options.detach && options.worker === true) throw new UsageError('--detach and --worker exclude each other: a detached run has no worker in this process');
  const { planInputs } = await import('../plan/inputs.ts');
  const whole = planExperiment(spec, await planInputs(spec));
  let plan: Plan;
  try {
    plan = from === null ? whole : forkPlan(previous, whole, from);
  } catch (err) {
    if (err instanceof ForkError) throw new UsageError(err.message);
    throw err;
  }
  const statuses = await withStore(async (store: Store) => stepStatuses(store, Object.keys(plan.steps)));
  const table = formatReuse(previous, plan, (key) => statuses.get(key) ?? 'pending');
  out(`from run ${id}${from === null ? '' : ` (new from iteration ${from} on)`}:`);
  process.stdout.write(table);
  if (options.dryRun) return;
  await startLocalDevice(options, command);
  const { startOrAttach } = await import('../client/start.ts');
  const { store, temporal } = await openStoreAndTemporal();
  try {
    const { config, client } = temporal;
    const started = await startOrAttach({ client, store, spec, plan, taskQueue: config.taskQueues.default, activities: config.activities });
    out(`${started.attached ? 'attached to running' : 'started'} run ${started.runId} of ${spec.name}`);
    out(`  workflow ${started.workflowId}`);
    await superviseRun(temporal, store, started, options, rerun);
  } finally {
    await store.close();
    await temporal.close();
  }
}

function specError(err: unknown): never {
  if (err instanceof SettingError || err instanceof SpecError) throw new UsageError(err.message);
  throw err;
}

/**
 * The setting that gives `spec` `n` iterations: its `iterations.max` when it declares `{max, stopWhen}` (a
 * plain `iterations=n` would drop the stop rule), else `iterations` itself.
 */
export function iterationsSetting(spec: ExperimentSpec, n: number): Setting {
  return parseSetting(typeof spec.iterations === 'object' ? `iterations.max=${n}` : `iterations=${n}`);
}

async function extend(id: string, options: ExtendOptions): Promise<void> {
  const { spec, plan } = await storedRun(id);
  const current = lastIteration(plan);
  if (options.iterations <= current) throw new UsageError(`--iterations ${options.iterations}: run ${id} already has ${current}; extend to more`);
  let extended: ExperimentSpec;
  try {
    extended = applySettings(spec, [iterationsSetting(spec, options.iterations)]);
  } catch (err) {
    specError(err);
  }
  // Spliced after the run's last iteration: every step of the run is kept as it ran.
  await launch(id, plan, extended, current + 1, options, 'extend', `rise extend ${id} --iterations ${options.iterations}`);
}

async function fork(id: string, options: ForkOptions): Promise<void> {
  if (options.set.length === 0) throw new UsageError('rise fork needs at least one --set PATH=VALUE (to run the same spec again, `rise replay` or `rise run` it)');
  let from: number | null = null;
  if (options.from !== undefined) {
    try {
      const where = parseReplayFrom(options.from);
      if (where.kind !== undefined) throw new Error(`--from ${options.from}: a fork changes whole iterations; use iteration:K`);
      from = where.iteration;
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  const { spec, plan } = await storedRun(id);
  let changed: ExperimentSpec;
  try {
    changed = applySettings(spec, options.set);
  } catch (err) {
    specError(err);
  }
  const sets = options.set.map((s) => `--set '${s.text}'`).join(' ');
  await launch(id, plan, changed, from, options, 'fork', `rise fork ${id} ${sets}${options.from ? ` --from ${options.from}` : ''}`);
}

function collectSetting(text: string, previous: Setting[]): Setting[] {
  try {
    return [...previous, parseSetting(text)];
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function launchOptions(command: Command): Command {
  return command
    .option('--dry-run', 'print which steps are reused and which run, and why; start nothing')
    .option('--detach', 'return once the run is started')
    .option('--worker', 'run a worker in this process (default: only with the embedded dev server)')
    .option('--no-worker', 'do not run a worker in this process')
    .option('--concurrency <n>', 'activities the in-process worker runs at once', positiveInt, 2)
    .addOption(deviceOption());
}

export function registerForkCommands(program: Command): void {
  launchOptions(
    program
      .command('extend')
      .description('continue a run for more iterations, as a new run: every finished step is reused, the new run reports every iteration')
      .argument('<run>', 'run id (as `rise run` printed it)')
      .requiredOption('--iterations <n>', 'iterations the new run has (more than the run has now)', positiveInt),
  ).action(async (id: string, options: ExtendOptions) => {
    await extend(id, options);
  });

  launchOptions(
    program
      .command('fork')
      .description('start a new run from a run\'s spec changed by --set; prints which steps are reused and why the others are new')
      .argument('<run>', 'run id (as `rise run` printed it)')
      .option('--set <path=value>', 'a dotted spec path and a JSON value, e.g. relabel.samples=32, evaluate.turns=10, task.eval=[...]; arms.NAME.path for one arm (repeatable)', collectSetting, [])
      .option('--from <where>', 'iteration:K — the change applies from iteration K on; earlier iterations keep the run\'s steps'),
  ).action(async (id: string, options: ForkOptions) => {
    await fork(id, options);
  });
}
