/**
 * MATH (Hendrycks et al.): competition problems. JSONL lines `{"problem", "solution"}` whose solution
 * puts the final answer in `\boxed{…}`; an `answer` field, where a file has one (MATH-500), is used as
 * the reference instead.
 */

import { basename } from 'node:path';
import { lastBoxed } from './boxed.ts';
import { fields, readJsonl, type JsonlRecord } from './jsonl.ts';
import { extractMathAnswer, mathAnswersEqual } from './math-answer.ts';
import type { Problem, RewardOptions, Task } from './types.ts';

/** The final answer of a solution as MATH writes it (the content of its last `\boxed{…}`), or null without one. */
export function mathFinalAnswer(solution: string): string | null {
  return lastBoxed(solution)?.content ?? null;
}

export function mathProblems(records: JsonlRecord[], file: string): Problem[] {
  return records.map((record) => {
    const f = fields(record, file);
    const problem = f.string('problem');
    const solution = f.string('solution');
    let reference: string;
    if (f.has('answer')) {
      reference = f.string('answer');
    } else {
      reference = mathFinalAnswer(solution) ?? f.fail('field "solution" has no final answer: expected \\boxed{…} (or an "answer" field)');
    }
    if (reference.trim() === '') f.fail('final answer is empty');
    return {
      id: f.id('unique_id') ?? f.id('id') ?? `${basename(file)}:${record.line}`,
      prompt: problem,
      reference,
      solution,
    };
  });
}

export async function loadMath(file: string): Promise<Problem[]> {
  return mathProblems(await readJsonl(file), file);
}

export function createMathTask(options: RewardOptions = {}): Task {
  const unparsable = options.unparsableReward ?? 0;
  return {
    kind: 'math',
    extract: extractMathAnswer,
    reward(response: string, problem: Problem): number {
      const got = extractMathAnswer(response);
      if (got === null) return unparsable;
      return mathAnswersEqual(got, problem.reference) ? 1 : 0;
    },
  };
}
