/**
 * `rise plan SPEC`: the DAG a spec compiles to, per arm and iteration — each step's short key, kind,
 * inputs, whether it is already done, and what a run would compute — with the steps arms share.
 * `--json` prints the plan itself (save it to compare later), `--against OLD.json` says why each step
 * whose key changed since then will not be reused, `--verbose` prints the params behind every key.
 */

import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { explainChanges, flattenParams, placeOf } from '../plan/stale.ts';
import { planExperiment, planFromJson, stepArms, type Plan, type StepUse } from '../plan/plan.ts';
import { shortKey } from '../steps/index.ts';
import type { StepState } from '../store/index.ts';
import { UsageError } from './errors.ts';
import { loadSpecForCli, registerValidateCommand } from './validate.ts';

/** As the store reports a step key (src/store's `stepStatus`). */

/** Looks a step key up. */
export type StatusLookup = (key: string) => StepState;

/**
 * Reads the statuses of a plan's steps from the store (src/cli/store-status.ts); null when there is no
 * store to read, and then nothing is done yet.
 */
export type StatusSource = ((keys: readonly string[]) => Promise<StatusLookup>) | null;

const noStore: StatusLookup = () => 'pending';

export interface FormatOptions {
  status: StatusLookup;
  /** Whether `status` comes from a real store; without one the output says so. */
  store: boolean;
  /** Reasons by place, from `explainChanges`. */
  changes?: Map<string, string[]>;
  verbose?: boolean;
}

const ACTION: Record<StepState, string> = { done: 'done, reused', failed: 'rerun (failed)', running: 'running now', pending: 'run' };

function label(use: StepUse): string {
  return use.model ?? use.evalSet ?? '';
}

export function formatPlan(plan: Plan, options: FormatOptions): string {
  const arms = stepArms(plan);
  const status = new Map(Object.keys(plan.steps).map((key) => [key, options.status(key)]));
  const lines = [`experiment ${plan.experiment}`];
  if (!options.store) lines.push('no store yet: every step shows as not done');
  lines.push('each step: key, kind, model or eval set, what a run does, ← input keys');

  for (const arm of plan.arms) {
    lines.push('', `arm ${arm.name}`);
    let iteration = -1;
    for (const use of arm.steps) {
      if (use.iteration !== iteration) {
        iteration = use.iteration;
        lines.push(`  iteration ${iteration}${iteration === 0 ? ' (boost)' : ''}`);
      }
      const step = plan.steps[use.key];
      const users = arms.get(use.key)!.length;
      const inputs = step.inputs.length === 0 ? '-' : step.inputs.map(shortKey).join(',');
      const shared = users > 1 ? `  shared by ${users} arms` : '';
      lines.push(`    ${shortKey(use.key)}  ${use.kind.padEnd(8)} ${label(use).padEnd(10)} ${ACTION[status.get(use.key)!].padEnd(14)} ← ${inputs}${shared}`);
      const why = options.changes?.get(placeOf(arm, use));
      if (why) lines.push(...why.map((reason) => `        changed: ${reason}`));
      if (options.verbose) {
        lines.push(...[...flattenParams(step.params)].map(([name, value]) => `        ${name} = ${value}`));
        lines.push(...Object.entries(step.compute).map(([name, value]) => `        computed by ${name} ${value}`));
      }
    }
  }

  const uses = plan.arms.reduce((n, arm) => n + arm.steps.length, 0);
  const unique = Object.keys(plan.steps).length;
  const shared = [...arms.values()].filter((users) => users.length > 1).length;
  const count = (s: StepState) => [...status.values()].filter((v) => v === s).length;
  lines.push(
    '',
    `${plan.arms.length} arm${plan.arms.length === 1 ? '' : 's'}, ${uses} step uses, ${unique} distinct steps; ${shared} shared by several arms, saving ${uses - unique} step runs`,
    `${count('done')} done, ${count('running')} running, ${count('failed')} failed, ${count('failed') + count('pending')} to run`,
  );
  return `${lines.join('\n')}\n`;
}

async function readPlan(file: string): Promise<Plan> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`--against ${file}: cannot read a plan (${(err as Error).message})`);
  }
  const plan = (() => {
    try {
      return planFromJson(value);
    } catch {
      return null;
    }
  })();
  if (plan === null) throw new UsageError(`--against ${file}: not a plan; write one with \`rise plan SPEC --json > ${file}\``);
  return plan;
}

interface PlanCommandOptions {
  json?: boolean;
  against?: string;
  verbose?: boolean;
  estimate: boolean;
  calibrate?: boolean;
}

export function registerPlanCommand(program: Command, source: StatusSource = null): void {
  program
    .command('plan')
    .description('print the steps a spec compiles to, per arm and iteration, with keys, inputs, status and sharing')
    .argument('<spec>', 'experiment spec file (JSON)')
    .option('--json', 'print the plan as JSON (keep it to compare with --against later)')
    .option('--against <plan>', 'a plan saved with --json: explain why each changed step will not be reused')
    .option('--verbose', 'print the params that went into every key')
    .option('--no-estimate', 'leave out the estimate of tokens and time')
    .option('--calibrate', "time the plan's decode and training graphs on this machine first, for steps no finished step in the store has timed (seconds to a minute)")
    .action(async (file: string, options: PlanCommandOptions) => {
      const spec = await loadSpecForCli(file);
      // Loaded here, not at startup: it brings in ONNX Runtime and the engine, which `rise validate` never needs.
      const { planInputs } = await import('../plan/inputs.ts');
      const plan = planExperiment(spec, await planInputs(spec));
      if (options.json) {
        process.stdout.write(`${JSON.stringify(plan, null, 2)}\n`);
        return;
      }
      const changes = options.against === undefined ? undefined : explainChanges(await readPlan(options.against), plan);
      const status = source === null ? noStore : await source(Object.keys(plan.steps));
      process.stdout.write(formatPlan(plan, { status, store: source !== null, changes, verbose: options.verbose }));
      if (!options.estimate) return;
      const { estimateSection } = await import('./estimate.ts');
      const done = (key: string) => status(key) === 'done';
      process.stdout.write(await estimateSection(plan, done, options.calibrate === true, (line) => process.stderr.write(`${line}\n`)));
    });
}

/** The commands that read a spec without running it: `rise validate` and `rise plan`. */
export function registerSpecCommands(program: Command, source: StatusSource = null): void {
  registerValidateCommand(program);
  registerPlanCommand(program, source);
}
