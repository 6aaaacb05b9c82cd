/**
 * `rise run SPEC`: validates and plans the spec, connects to Temporal (the embedded dev server unless
 * TEMPORAL_ADDRESS is set), starts the experiment or attaches to the same plan's running one, runs a
 * worker in this process (by default with the dev server), follows progress, and prints the metrics.
 * `rise worker`: a standalone worker for a cluster or a second machine.
 */

import { InvalidArgumentError, Option, type Command } from 'commander';
import { planExperiment } from '../plan/plan.ts';
import { getRun, type Store } from '../store/index.ts';
import { applicationMessage } from '../temporal/failures.ts';
import type { TemporalSession } from '../client/temporal.ts';
import { UsageError } from './errors.ts';
import { loadSpecForCli } from './validate.ts';

/** The run failed; its error has been printed (exit code 1). */
export class RunFailedError extends Error {
  override name = 'RunFailedError';
}

export interface RunOptions {
  detach?: boolean;
  worker?: boolean;
  concurrency: number;
  /** Where the in-process worker runs models (`--device`). */
  device?: Device;
}

type Device = 'cpu' | 'cuda';

/** `--device`: where a worker runs models. */
export function deviceOption(): Option {
  return new Option('--device <device>', 'where models run: cuda fails at start-up, naming the cause, unless CUDA works here (`rise setup --gpu`, `rise doctor`)')
    .choices(['cpu', 'cuda'])
    .default('cpu');
}

/** Makes CUDA sessions possible before a worker starts, or fails naming why (a GPU worker must not quietly run on the CPU). */
async function startDevice(device: Device, who: string): Promise<void> {
  if (device !== 'cuda') return;
  const { CudaUnavailableError, enableCuda } = await import('../engine/cuda.ts');
  const { defaultToolsDir } = await import('../temporal/binary.ts');
  await enableCuda(defaultToolsDir()).catch((err: unknown) => {
    throw err instanceof CudaUnavailableError ? new CudaUnavailableError(`${who} --device cuda cannot start: ${err.message}`) : err;
  });
}

interface WorkerOptions {
  taskQueue?: string;
  slots: number;
  device: Device;
}

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

const out = (line: string) => process.stdout.write(`${line}\n`);

async function printMetrics(store: Store, runId: string): Promise<void> {
  const { loadRunReport } = await import('../report/data.ts');
  const { headlineText } = await import('../report/markdown.ts');
  const text = headlineText(await loadRunReport(store, (await getRun(store, runId))!));
  if (text !== '') out(`\n${text}`);
}

/** The store and a Temporal connection, as run and replay need them (the store is closed if connecting fails). */
export async function openStoreAndTemporal(): Promise<{ store: Store; temporal: TemporalSession }> {
  // Loaded here: the Temporal client and worker are needed by these commands only.
  const { openTemporal } = await import('../client/temporal.ts');
  const { openStore } = await import('../store/index.ts');
  const { installWorkerRuntime } = await import('../client/worker.ts');
  // Before the first connection, which would install the SDK's default (chatty) runtime.
  installWorkerRuntime();
  const store = await openStore();
  try {
    return { store, temporal: await openTemporal() };
  } catch (err) {
    await store.close();
    throw err;
  }
}

/** The in-process worker's device, checked before a command starts anything: a run must not wait for a worker that cannot start. */
export async function startLocalDevice(options: RunOptions, command: string): Promise<void> {
  if (options.worker !== false && !options.detach) await startDevice(options.device ?? 'cpu', command);
}

async function runExperiment(file: string, options: RunOptions): Promise<void> {
  const spec = await loadSpecForCli(file);
  await startLocalDevice(options, 'run');
  const { planInputs } = await import('../plan/inputs.ts');
  const plan = planExperiment(spec, await planInputs(spec));
  const { startOrAttach } = await import('../client/start.ts');
  const { store, temporal } = await openStoreAndTemporal();
  try {
    const { config, client } = temporal;
    if (temporal.uiUrl !== null) out(`Temporal Web UI: ${temporal.uiUrl}${temporal.startedServer ? ' (dev server started; it keeps running after this command)' : ''}`);
    const launch = await startOrAttach({ client, store, spec, plan, taskQueue: config.taskQueues.default, activities: config.activities });
    out(`${launch.attached ? 'attached to running' : 'started'} run ${launch.runId} of ${spec.name}: ${Object.keys(plan.steps).length} steps in ${plan.arms.length} arm(s)`);
    out(`  workflow ${launch.workflowId}${temporal.uiUrl !== null ? `  ${temporal.uiUrl}/namespaces/${config.connection.namespace}/workflows/${encodeURIComponent(launch.workflowId)}` : ''}`);
    await superviseRun(temporal, store, launch, options, `rise run ${file}`);
  } finally {
    await store.close();
    await temporal.close();
  }
}

export interface Supervised {
  runId: string;
  workflowId: string;
  handle: { result(): Promise<unknown> };
}

/**
 * After a start, attach or replay: returns at once with --detach; otherwise runs a worker here (by default
 * with the dev server), follows progress until the workflow closes, and prints the metrics, or the error
 * and how to go on.
 */
export async function superviseRun(temporal: TemporalSession, store: Store, launch: Supervised, options: RunOptions, rerun: string): Promise<void> {
  const { config, client } = temporal;
  const { follow } = await import('../client/progress.ts');
  const localWorker = options.worker ?? config.devServer.enabled;
  if (options.detach) {
    out(localWorker ? 'detached: start a worker (`rise worker`) to run it, if none polls this task queue' : 'detached');
    out(`follow it with \`rise status ${launch.runId}\``);
    return;
  }
  const result = launch.handle.result();
  try {
    if (localWorker) {
      const { createStepContext } = await import('../../activities/index.ts');
      const { createRiseWorker } = await import('../client/worker.ts');
      const context = await createStepContext({ home: store.home, session: { device: options.device ?? 'cpu' } });
      if (config.taskQueues.gpu !== null) out(`steps that run the model go to task queue ${config.taskQueues.gpu} (RISE_GPU_TASK_QUEUE), which the worker here does not poll: they wait for \`rise worker --device cuda --task-queue ${config.taskQueues.gpu}\``);
      const worker = await createRiseWorker({
        connection: temporal.nativeConnection,
        namespace: config.connection.namespace,
        taskQueue: config.taskQueues.default,
        context,
        maxConcurrentActivities: options.concurrency,
      });
      try {
        await worker.runUntil(follow(client, launch.workflowId, result, out));
      } finally {
        await context.store.close();
      }
    } else {
      await follow(client, launch.workflowId, result, out);
    }
  } catch (err) {
    if (!(err instanceof Error && err.name === 'WorkflowFailedError')) throw err;
    process.stderr.write(`run ${launch.runId} failed: ${applicationMessage(err)}\n`);
    process.stderr.write(`  see \`rise status ${launch.runId}\`; after a fix, \`${rerun}\` again resumes from the failed step (finished steps are reused), or \`rise replay ${launch.runId} --from iteration:N[:step]\` recomputes from a step\n`);
    throw new RunFailedError(`run ${launch.runId} failed`);
  }
  await printMetrics(store, launch.runId);
  out(`\nrun ${launch.runId} done. Report: rise report ${launch.runId}`);
}

async function runWorker(options: WorkerOptions): Promise<void> {
  // Before connecting: a GPU worker that cannot use the GPU must not take GPU steps and run them on the CPU.
  await startDevice(options.device, 'worker');
  const { openTemporal } = await import('../client/temporal.ts');
  const { createStepContext } = await import('../../activities/index.ts');
  const { createRiseWorker, installWorkerRuntime } = await import('../client/worker.ts');
  installWorkerRuntime();
  const temporal = await openTemporal();
  const taskQueue = options.taskQueue ?? temporal.config.taskQueues.default;
  const context = await createStepContext({ session: { device: options.device } });
  try {
    const worker = await createRiseWorker({
      connection: temporal.nativeConnection,
      namespace: temporal.config.connection.namespace,
      taskQueue,
      context,
      maxConcurrentActivities: options.slots,
    });
    out(
      `rise worker ${worker.options.identity} polling task queue ${taskQueue} at ${temporal.config.connection.address} (namespace ${temporal.config.connection.namespace}); ` +
        `device ${options.device}, ${options.slots} slot${options.slots === 1 ? '' : 's'}; store ${context.store.location}, artifacts ${context.store.artifacts.url}. Ctrl-C stops it.`,
    );
    // The SDK shuts the worker down on SIGINT/SIGTERM, letting running activities finish or fail over.
    await worker.run();
  } finally {
    await context.store.close();
    await temporal.close();
  }
}

export function registerRunCommands(program: Command): void {
  program
    .command('run')
    .description('run an experiment spec: start it (or attach to the same plan\'s running run), follow progress, print the metrics; steps finished before (any run, any arm) are reused')
    .argument('<spec>', 'experiment spec (JSON)')
    .option('--detach', 'return once the run is started')
    .option('--worker', 'run a worker in this process (default: only with the embedded dev server)')
    .option('--no-worker', 'do not run a worker in this process (workers elsewhere poll the task queue)')
    .option('--concurrency <n>', 'activities the in-process worker runs at once', positiveInt, 2)
    .addOption(deviceOption())
    .addHelpText(
      'after',
      '\nWith no TEMPORAL_ADDRESS the embedded dev server is started (database under $RISE_HOME, Web UI on a free port) or reused.\nTEMPORAL_ADDRESS, TEMPORAL_NAMESPACE and TEMPORAL_TLS_* select a cluster instead (see temporal.config.ts).',
    )
    .action(async (file: string, options: RunOptions) => {
      if (options.detach && options.worker === true) throw new UsageError('--detach and --worker exclude each other: a detached run has no worker in this process');
      await runExperiment(file, options);
    });

  program
    .command('worker')
    .description('run a standalone worker: the workflows and every step activity, over the store at $RISE_HOME')
    .option('--task-queue <name>', 'task queue to poll (default: RISE_TASK_QUEUE; otherwise, with the embedded dev server, "rise-<8 hex digits of $RISE_HOME>", the queue rise run uses there, or "rise" with TEMPORAL_ADDRESS). A GPU worker polls the GPU queue (RISE_GPU_TASK_QUEUE on the client)')
    .option('--slots <n>', 'activities run at once', positiveInt, 2)
    .addOption(deviceOption())
    .action(async (options: WorkerOptions) => {
      await runWorker(options);
    });
}
