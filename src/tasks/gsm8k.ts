/**
 * GSM8K: grade-school word problems. JSONL lines `{"question", "answer"}` where `answer` is a worked
 * solution ending in `#### N` (N may carry commas: "#### 2,125").
 */

import { basename } from 'node:path';
import { fields, readJsonl, type JsonlRecord } from './jsonl.ts';
import { ANSWER_MARKER, createNumericTask, parseNumber, type NumericTaskOptions } from './numeric.ts';
import type { Problem, Task } from './types.ts';

/** The final answer of a worked solution as GSM8K writes it (what follows its last `####`), or null without one. */
export function gsm8kFinalAnswer(solution: string): string | null {
  const at = solution.lastIndexOf(ANSWER_MARKER);
  return at < 0 ? null : solution.slice(at + ANSWER_MARKER.length).trim();
}

/**
 * Ids are `<file name>:<line>` unless the line has an `id`: GSM8K has no ids of its own, and file:line
 * is what a person looks up when a problem misbehaves.
 */
export function gsm8kProblems(records: JsonlRecord[], file: string): Problem[] {
  return records.map((record) => {
    const f = fields(record, file);
    const question = f.string('question');
    const answer = f.string('answer');
    const reference =
      gsm8kFinalAnswer(answer) ?? f.fail(`field "answer" has no final answer: expected "${ANSWER_MARKER} N" at its end`);
    if (parseNumber(reference) === null) {
      f.fail(`field "answer": final answer after "${ANSWER_MARKER}" must be a number, got ${JSON.stringify(reference)}`);
    }
    return {
      id: f.id('id') ?? `${basename(file)}:${record.line}`,
      prompt: question,
      reference,
      solution: answer,
    };
  });
}

export async function loadGsm8k(file: string): Promise<Problem[]> {
  return gsm8kProblems(await readJsonl(file), file);
}

export function createGsm8kTask(options: NumericTaskOptions = {}): Task {
  return createNumericTask('gsm8k', options);
}
