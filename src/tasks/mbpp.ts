/**
 * MBPP: short Python programming problems. JSONL lines `{"text", "code", "test_list"}` (plus optional
 * `task_id`, `test_setup_code`). The answer is a program; its reward is 1 only when every test passes
 * in the sandbox.
 */

import { basename } from 'node:path';
import { fields, readJsonl, type JsonlRecord } from './jsonl.ts';
import { createSandbox, type Sandbox, type SandboxOptions } from './sandbox/index.ts';
import type { Problem, RewardOptions, Task } from './types.ts';

/**
 * The prompt shows the tests, as MBPP's own prompt does: without them the model cannot know the
 * function's name and signature. `test_setup_code`, when present, runs as the first test.
 */
const unixNewlines = (s: string) => s.replace(/\r\n?/g, '\n');

export function mbppProblems(records: JsonlRecord[], file: string): Problem[] {
  return records.map((record) => {
    const f = fields(record, file);
    // MBPP's programs come with Windows line endings; models and tokenizers see plain newlines.
    const text = unixNewlines(f.string('text'));
    const code = unixNewlines(f.string('code'));
    const testList = f.stringArray('test_list');
    if (testList.length === 0) f.fail('field "test_list" is empty: a problem needs at least one test');
    const setup = f.has('test_setup_code') ? f.string('test_setup_code') : '';
    return {
      id: f.id('task_id') ?? `${basename(file)}:${record.line}`,
      prompt: `${text}\nYour code should pass these tests:\n${testList.join('\n')}`,
      reference: code,
      solution: code,
      tests: setup.trim() === '' ? testList : [setup, ...testList],
    };
  });
}

export async function loadMbpp(file: string): Promise<Problem[]> {
  return mbppProblems(await readJsonl(file), file);
}

const FENCE = /```[ \t]*(?:python|py|python3)?[ \t]*\r?\n([\s\S]*?)```/g;

/**
 * The program in a response: the last fenced code block, else the text between MBPP's `[BEGIN]` and
 * `[DONE]`, else the whole response. Null only for an empty program.
 */
export function extractProgram(response: string): string | null {
  let program = response;
  const fenced = [...response.matchAll(FENCE)];
  const marked = /\[BEGIN\]([\s\S]*?)(?:\[DONE\]|$)/.exec(response);
  if (fenced.length > 0) program = fenced[fenced.length - 1][1];
  else if (marked) program = marked[1];
  return program.trim() === '' ? null : program;
}

export interface MbppTaskOptions extends RewardOptions {
  /** A sandbox to share (its concurrency limit then spans every task using it), or options for a new one. */
  sandbox?: Sandbox | SandboxOptions;
}

export function createMbppTask(options: MbppTaskOptions = {}): Task {
  const unparsable = options.unparsableReward ?? 0;
  const given = options.sandbox;
  const sandbox = given && 'run' in given ? given : createSandbox(given);
  return {
    kind: 'mbpp',
    extract: extractProgram,
    async reward(response: string, problem: Problem): Promise<number> {
      if (!problem.tests || problem.tests.length === 0) {
        throw new Error(`mbpp problem ${problem.id} has no tests to score against`);
      }
      const program = extractProgram(response);
      if (program === null) return unparsable;
      const result = await sandbox.run({ program, tests: problem.tests });
      return result.status === 'passed' ? 1 : 0;
    },
  };
}
