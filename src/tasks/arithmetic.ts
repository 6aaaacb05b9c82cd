/**
 * The built-in task: seeded multi-step arithmetic, small enough for a character-level transformer
 * with a 256-character context to learn from scratch on a CPU, so an embedded RISE run finishes in
 * minutes and still has room for two attempts and the retry message in one context.
 *
 * Operations apply in order to a running value (no precedence to learn):
 *
 *   prompt:    Start with 23, plus 7, times 4, minus 5.
 *   solution:  23+7=30
 *              30*4=120
 *              120-5=115
 *              #### 115
 *
 * One line per step, `a<op>b=c`, a negative operand in parentheses (`30-(-3)=33`), then the GSM8K
 * final-answer marker, so the same numeric checker scores both suites.
 */

import { createHash } from 'node:crypto';
import { Rng } from '../engine/random.ts';
import { ANSWER_MARKER, createNumericTask, type NumericTaskOptions } from './numeric.ts';
import type { Problem, Task } from './types.ts';

export type Operator = '+' | '-' | '*';

export const OPERATORS: readonly Operator[] = ['+', '-', '*'];

// Short words: the prompt is repeated in every retry message, so each character costs context twice.
const WORDS: Record<Operator, string> = { '+': 'plus', '-': 'minus', '*': 'times' };

export interface ArithmeticOptions {
  seed: number;
  count: number;
  /** Operations per problem: exactly n, or one of a list (chosen uniformly), e.g. [2, 3]. Default [2, 3]. */
  ops?: number | readonly number[];
  /** Inclusive operand range; default 1..20. Out-of-distribution sets raise `ops` or these. */
  min?: number;
  max?: number;
  /** Default all of + - *. */
  operators?: readonly Operator[];
}

interface Resolved {
  seed: number;
  count: number;
  ops: number[];
  min: number;
  max: number;
  operators: Operator[];
}

function resolve(options: ArithmeticOptions): Resolved {
  const fail = (field: string, want: string, got: unknown): never => {
    throw new Error(`arithmetic: "${field}" must be ${want}, got ${JSON.stringify(got)}`);
  };
  const { seed, count } = options;
  if (!Number.isSafeInteger(seed)) fail('seed', 'an integer', seed);
  if (!Number.isSafeInteger(count) || count < 0) fail('count', 'a non-negative integer', count);
  const rawOps = options.ops ?? [2, 3];
  const ops = typeof rawOps === 'number' ? [rawOps] : [...rawOps];
  if (ops.length === 0 || ops.some((n) => !Number.isInteger(n) || n < 1)) {
    fail('ops', 'a positive integer or a non-empty list of them', rawOps);
  }
  const min = options.min ?? 1;
  const max = options.max ?? 20;
  if (!Number.isSafeInteger(min)) fail('min', 'an integer', min);
  if (!Number.isSafeInteger(max) || max < min) fail('max', `an integer >= min (${min})`, max);
  const operators = [...(options.operators ?? OPERATORS)];
  if (operators.length === 0 || operators.some((op) => !OPERATORS.includes(op))) {
    fail('operators', `a non-empty list of ${OPERATORS.map((o) => `"${o}"`).join(', ')}`, options.operators);
  }
  return { seed, count, ops, min, max, operators };
}

function apply(a: number, op: Operator, b: number): number {
  if (op === '+') return a + b;
  if (op === '-') return a - b;
  return a * b;
}

const operand = (n: number): string => (n < 0 ? `(${n})` : String(n));

/**
 * `count` problems, a pure function of the options: problem i depends only on (seed, knobs, i), so a
 * larger count extends a set without changing its start. Different splits need different seeds.
 */
export function generateArithmetic(options: ArithmeticOptions): Problem[] {
  const o = resolve(options);
  // Ids carry a hash of the knobs, so sets generated with different knobs never share an id.
  const knobs = JSON.stringify([o.seed, o.ops, o.min, o.max, o.operators]);
  const tag = createHash('sha256').update(knobs).digest('hex').slice(0, 8);
  const problems: Problem[] = [];
  for (let i = 0; i < o.count; i++) {
    // One stream per item: problem i does not depend on how many problems came before it.
    const rng = new Rng(o.seed, 'arithmetic', i);
    const pick = <T>(items: readonly T[]): T => items[rng.int(items.length)];
    const operandValue = () => o.min + rng.int(o.max - o.min + 1);
    const steps = pick(o.ops);
    let value = operandValue();
    const words = [`Start with ${value}`];
    const lines: string[] = [];
    for (let s = 0; s < steps; s++) {
      const op = pick(o.operators);
      const b = operandValue();
      const next = apply(value, op, b);
      words.push(`${WORDS[op]} ${b}`);
      lines.push(`${value}${op}${operand(b)}=${next}`);
      value = next;
    }
    lines.push(`${ANSWER_MARKER} ${value}`);
    problems.push({
      id: `arithmetic/${tag}/${i}`,
      prompt: `${words.join(', ')}.`,
      reference: String(value),
      solution: lines.join('\n'),
    });
  }
  return problems;
}

export function createArithmeticTask(options: NumericTaskOptions = {}): Task {
  return createNumericTask('arithmetic', options);
}
