/**
 * The task suites by kind: what the spec's `task.kind` and `rise score --task` select.
 */

import { createArithmeticTask } from './arithmetic.ts';
import { createGsm8kTask, loadGsm8k } from './gsm8k.ts';
import { createMathTask, loadMath } from './math.ts';
import { createMbppTask, loadMbpp, type MbppTaskOptions } from './mbpp.ts';
import { JUDGE_VERSION } from './sandbox/index.ts';
import type { Problem, Task, TaskKind } from './types.ts';

export { TASK_KINDS, type Problem, type Task, type TaskKind, type RewardOptions } from './types.ts';
export { DataError } from './jsonl.ts';
export { generateArithmetic, OPERATORS, type ArithmeticOptions, type Operator } from './arithmetic.ts';

/** Options every kind accepts; `sandbox` matters to code tasks only. */
export type TaskOptions = MbppTaskOptions;

export function createTask(kind: TaskKind, options: TaskOptions = {}): Task {
  switch (kind) {
    case 'arithmetic':
      return createArithmeticTask(options);
    case 'gsm8k':
      return createGsm8kTask(options);
    case 'math':
      return createMathTask(options);
    case 'mbpp':
      return createMbppTask(options);
  }
}

/**
 * What judges a task's answers beyond the task's own code, by version: code tasks depend on the sandbox
 * that runs the model's programs. Empty for tasks whose checker is the code itself.
 */
export function judgeOf(kind: TaskKind): Record<string, number> {
  return kind === 'mbpp' ? { sandbox: JUDGE_VERSION } : {};
}

/** Problems from a user's JSONL file; the arithmetic suite is generated, not loaded (generateArithmetic). */
export function loadProblems(kind: Exclude<TaskKind, 'arithmetic'>, file: string): Promise<Problem[]> {
  switch (kind) {
    case 'gsm8k':
      return loadGsm8k(file);
    case 'math':
      return loadMath(file);
    case 'mbpp':
      return loadMbpp(file);
  }
}
