/**
 * `rise validate SPEC...`: check experiment specs without running anything. Every issue of every file
 * is printed at once (file:line:column, JSON path, expected, found, did-you-mean); exit code 2 if any.
 */

import type { Command } from 'commander';
import { loadSpec } from '../spec/load.ts';
import { SpecError } from '../spec/issues.ts';
import { iterationCount, stopRule, type ArmSpec, type ExperimentSpec } from '../spec/types.ts';
import { UsageError } from './errors.ts';

/** `loadSpec` with its failures as messages for the user (exit code 2), not stack traces. */
export async function loadSpecForCli(file: string): Promise<ExperimentSpec> {
  try {
    return await loadSpec(file);
  } catch (err) {
    if (err instanceof SpecError) throw new UsageError(err.message);
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR' || code === 'EACCES') throw new UsageError(`${file}: cannot read the spec (${code})`);
    throw err;
  }
}

function describeTask(arm: ArmSpec): string {
  const { task } = arm;
  const train = task.kind === 'arithmetic' ? `${task.train.count}` : task.train.count === null ? 'all' : `${task.train.count}`;
  const evals = task.eval.map((set) => `${set.name} ${set.count ?? 'all'}`).join(', ');
  return `${task.kind} (train ${train}; eval ${evals})`;
}

function describeModel({ model, train }: ExperimentSpec): string {
  const tuning = train.lora === null ? 'full fine-tuning' : `LoRA rank ${train.lora.rank}`;
  if (model.kind === 'pretrained') return `pretrained ${model.name}, context ${model.context ?? "the model's"}, ${tuning}`;
  return `builtin ${model.config.layers} layers × ${model.config.dim} dim, context ${model.config.context}`;
}

function summarize(file: string, spec: ExperimentSpec): string {
  const arms = Object.keys(spec.arms);
  const iterations = [...new Set(Object.values(spec.arms).map((a) => `${stopRule(a) === null ? '' : 'at most '}${iterationCount(a)}`))].join('/');
  return [
    `${file}: valid`,
    `  experiment ${spec.name}, ${spec.seeds === null ? `seed ${spec.seed}` : `seeds ${spec.seeds.join(', ')} (every arm once per seed)`}`,
    `  task ${describeTask(spec)}`,
    `  model ${describeModel(spec)}; ${iterations} iterations`,
    `  ${arms.length} arm${arms.length === 1 ? '' : 's'}: ${arms.join(', ')}`,
  ].join('\n');
}

export function registerValidateCommand(program: Command): void {
  program
    .command('validate')
    .description('check experiment specs against the schema; print every error with its JSON path')
    .argument('<specs...>', 'experiment spec files (JSON)')
    .action(async (files: string[]) => {
      const failures: string[] = [];
      for (const file of files) {
        try {
          process.stdout.write(`${summarize(file, await loadSpecForCli(file))}\n`);
        } catch (err) {
          if (!(err instanceof UsageError)) throw err;
          failures.push(err.message);
        }
      }
      if (failures.length > 0) throw new UsageError(failures.join('\n'));
    });
}
