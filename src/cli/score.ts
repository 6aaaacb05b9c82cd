/**
 * `rise score`: score a file of model responses with a task's checker, outside any experiment. Useful
 * to check a checker against another tool's outputs, or to score responses from any model.
 *
 * Input: JSONL, one `{"response": "...", "reference": "..."}` per line; MBPP lines carry
 * `"tests": ["assert ...", ...]` (a `reference` program there is optional and only echoed back).
 * A reference may be the bare final answer or written as the dataset writes it (GSM8K's `answer`, MATH's
 * `solution`), so a file joined from model outputs and dataset lines needs no preprocessing; the final
 * answer is read from it exactly as the dataset loaders read it.
 * Output: JSONL, one `{"line", "reward", "extracted", "reference"}` per input line (`reference`: the final
 * answer scored against), and a summary.
 */

import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { DataError, TASK_KINDS, createTask, type Problem, type Task, type TaskKind } from '../tasks/index.ts';
import { hasBox } from '../tasks/boxed.ts';
import { gsm8kFinalAnswer } from '../tasks/gsm8k.ts';
import { fields, readJsonl, type JsonlRecord } from '../tasks/jsonl.ts';
import { mathFinalAnswer } from '../tasks/math.ts';
import { parseNumber } from '../tasks/numeric.ts';
import { UsageError } from './errors.ts';

interface ScoredLine {
  line: number;
  reward: number;
  extracted: string | null;
  reference: string;
}

interface ScoreSummary {
  n: number;
  /** Lines with reward 1. */
  correct: number;
  /** Lines whose response had no extractable answer. */
  unparsable: number;
  accuracy: number;
}

interface Item {
  line: number;
  response: string;
  problem: Problem;
}

/**
 * The final answer a line's reference states for `kind`: the reference itself, or, when it is written as
 * the dataset writes it, the answer the dataset loader would take from it. Numbers may be JSON numbers.
 */
function referenceOf(kind: TaskKind, record: JsonlRecord, f: ReturnType<typeof fields>): string {
  const raw = record.value.reference;
  if (kind === 'mbpp') return raw === undefined ? '' : f.string('reference');
  if (kind === 'math') {
    const text = f.string('reference');
    // A solution ends in a box; a bare answer has none, or is one whole box, whose content is the same answer.
    const reference = hasBox(text) ? (mathFinalAnswer(text) ?? f.fail('field "reference": its last \\boxed{ is never closed')) : text;
    return reference.trim() === '' ? f.fail('field "reference" is empty') : reference;
  }
  const text = typeof raw === 'number' ? String(raw) : f.string('reference');
  const reference = kind === 'gsm8k' ? (gsm8kFinalAnswer(text) ?? text) : text;
  return parseNumber(reference) === null
    ? f.fail(
        `field "reference" must be a number (like "1,250", "-3" or "2.5")` +
          `${kind === 'gsm8k' ? ' or a worked solution ending "#### N"' : ''}, got ${JSON.stringify(reference)}`,
      )
    : reference;
}

/** Checks every line before any is scored, so a bad line 900 fails in a second, not after 899 sandbox runs. */
function scoreItems(kind: TaskKind, records: JsonlRecord[], file: string): Item[] {
  return records.map((record) => {
    const f = fields(record, file);
    const response = f.string('response');
    const problem: Problem = { id: `${file}:${record.line}`, prompt: '', reference: referenceOf(kind, record, f) };
    if (kind === 'mbpp') {
      problem.tests = f.stringArray('tests');
      if (problem.tests.length === 0) f.fail('field "tests" is empty: MBPP lines need at least one test');
    }
    return { line: record.line, response, problem };
  });
}

async function scoreAll(task: Task, items: Item[]): Promise<{ lines: ScoredLine[]; summary: ScoreSummary }> {
  const lines = await Promise.all(
    items.map(async (item): Promise<ScoredLine> => ({
      line: item.line,
      reward: await task.reward(item.response, item.problem),
      extracted: task.extract(item.response),
      reference: item.problem.reference,
    })),
  );
  const correct = lines.filter((l) => l.reward === 1).length;
  const unparsable = lines.filter((l) => l.extracted === null).length;
  const n = lines.length;
  return { lines, summary: { n, correct, unparsable, accuracy: n === 0 ? 0 : correct / n } };
}

function defaultOutPath(input: string): string {
  return input.endsWith('.jsonl') ? `${input.slice(0, -'.jsonl'.length)}.scored.jsonl` : `${input}.scored.jsonl`;
}

function number(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError('expected a number');
  return n;
}

function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

interface ScoreOptions {
  task: string;
  out?: string;
  unparsableReward: number;
  concurrency: number;
}

export function registerScoreCommand(program: Command): void {
  program
    .command('score')
    .description('score a JSONL file of model responses against references with a task\'s checker')
    .argument('<file>', 'JSONL: {"response", "reference"} per line (MBPP: {"response", "tests": [...]})')
    .addOption(new Option('--task <kind>', 'which checker to use').choices(TASK_KINDS).makeOptionMandatory())
    .option('--out <file>', 'where to write per-line results (default: FILE.scored.jsonl beside the input)')
    .option('--unparsable-reward <n>', 'reward for a response with no extractable answer', number, 0)
    .option('--concurrency <n>', 'MBPP programs run at once in the sandbox', positiveInteger, availableParallelism())
    .addHelpText(
      'after',
      '\nA reference is the bare final answer ("18", "\\frac{1}{2}") or written as the\n' +
        'dataset writes it: for gsm8k a worked solution ending "#### 18" (the dataset\'s\n' +
        '"answer" field), for math a solution whose last \\boxed{…} holds the answer\n' +
        '(the "solution" field). The answer is read from it as the dataset loaders read it.',
    )
    .action(async (file: string, options: ScoreOptions) => {
      const kind = options.task as TaskKind; // commander's choices() has checked it
      const out = options.out ?? defaultOutPath(file);
      if (resolve(out) === resolve(file)) throw new UsageError(`--out ${out} is the input file; scoring would overwrite it`);
      const records = await readJsonl(file);
      if (records.length === 0) throw new DataError(file, undefined, 'no records: expected one JSON object per line');
      const task = createTask(kind, {
        unparsableReward: options.unparsableReward,
        sandbox: { concurrency: options.concurrency },
      });
      const { lines, summary } = await scoreAll(task, scoreItems(kind, records, file));
      await writeFile(out, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
      process.stdout.write(
        `${kind}: accuracy ${summary.accuracy.toFixed(4)}  ` +
          `(n=${summary.n} correct=${summary.correct} unparsable=${summary.unparsable})\n` +
          `wrote ${out}\n`,
      );
    });
}
