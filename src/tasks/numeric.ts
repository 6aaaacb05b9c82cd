/**
 * Numeric final answers (GSM8K and the built-in arithmetic suite): references end with `#### N`; model
 * output is read from its last `\boxed{…}` or answer marker, whichever comes later. Numbers are
 * compared as numbers, not strings, so "1,000" = "1000", "5.0" = "5", "$-3" = "-3", "1/2" = "0.5".
 *
 * Fallback, documented because it decides what counts as unparsable: inside the chosen marker the whole
 * content is tried as a number, then the part after its last "=", then its last number
 * ("#### 18 dollars" → 18). A response with no marker at all is unparsable; we do not guess at the
 * last number in free text, so the unparsable reward keeps teaching the answer format.
 */

import { lastBoxed } from './boxed.ts';
import type { Problem, RewardOptions, Task, TaskKind } from './types.ts';

/** GSM8K's final-answer marker; also the built-in arithmetic format's. */
export const ANSWER_MARKER = '####';

const PLAIN = /^[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?$|^[-+]?\.\d+$/;
const FRACTION = /^([-+]?)(?:\\frac\{(-?\d+)\}\{(-?\d+)\}|(\d+)\/(\d+))$/;
const ANY_NUMBER = /[-+]?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|[-+]?\.\d+/g;

/** Strips what decorates a number without changing it: currency, percent, units, LaTeX spacing. */
function undecorate(text: string): string {
  return text
    .replace(/\\(?:text|mbox|mathrm)\{[^{}]*\}/g, '')
    .replace(/\\[dt]frac/g, '\\frac')
    .replace(/\\frac(\d)(\d)/g, '\\frac{$1}{$2}')
    .replace(/\u2212/g, '-') // Unicode minus, common in model output
    .replace(/\\left|\\right|\\[!,;:]|\{,\}|\\?[$%]/g, '')
    .trim()
    .replace(/\.$/, '')
    .trim();
}

function strictValue(text: string): number | null {
  if (PLAIN.test(text)) return Number(text.replace(/,/g, ''));
  const f = FRACTION.exec(text);
  if (!f) return null;
  const num = Number(f[2] ?? f[4]);
  const den = Number(f[3] ?? f[5]);
  if (den === 0) return null;
  return (f[1] === '-' ? -1 : 1) * (num / den);
}

/** The number a whole answer string denotes ("2,125", "$18.00", "\frac{1}{2}", "50%"), or null. */
export function parseNumber(text: string): number | null {
  return strictValue(undecorate(text));
}

/** Lenient reading of a marker's content; see the module comment for the order of attempts. */
function findNumber(text: string): number | null {
  const clean = undecorate(text);
  const whole = strictValue(clean);
  if (whole !== null) return whole;
  const eq = clean.lastIndexOf('=');
  if (eq >= 0) {
    const rhs = strictValue(clean.slice(eq + 1).trim());
    if (rhs !== null) return rhs;
  }
  const all = clean.match(ANY_NUMBER);
  return all ? Number(all[all.length - 1].replace(/,/g, '')) : null;
}

/**
 * One spelling per value, so extracted answers can be compared and majority-voted as strings.
 * Twelve significant digits fold float noise (1/3 from "1/3" and from "\frac{1}{3}") together.
 */
export function canonicalNumber(value: number): string {
  if (Number.isInteger(value)) return String(value === 0 ? 0 : value);
  return String(Number(value.toPrecision(12)));
}

/** The canonical number at the last `\boxed{…}` or `marker` in `response`, or null. */
export function extractNumber(response: string, marker: string = ANSWER_MARKER): string | null {
  const box = lastBoxed(response);
  const at = response.lastIndexOf(marker);
  let content: string;
  if (at >= 0 && (!box || at > box.start)) {
    const rest = response.slice(at + marker.length);
    const eol = rest.indexOf('\n');
    content = eol < 0 ? rest : rest.slice(0, eol);
  } else if (box) {
    content = box.content;
  } else {
    return null;
  }
  const value = findNumber(content);
  return value === null || !Number.isFinite(value) ? null : canonicalNumber(value);
}

export interface NumericTaskOptions extends RewardOptions {
  /** The answer marker the task's prompts ask for; `####` unless a suite declares another. */
  marker?: string;
}

export function createNumericTask(kind: TaskKind, options: NumericTaskOptions = {}): Task {
  const marker = options.marker ?? ANSWER_MARKER;
  const unparsable = options.unparsableReward ?? 0;
  const extract = (response: string): string | null => extractNumber(response, marker);
  return {
    kind,
    extract,
    reward(response: string, problem: Problem): number {
      const expected = parseNumber(problem.reference);
      if (expected === null) {
        throw new Error(`${kind} problem ${problem.id}: reference ${JSON.stringify(problem.reference)} is not a number`);
      }
      const got = extract(response);
      if (got === null) return unparsable;
      return got === canonicalNumber(expected) ? 1 : 0;
    },
  };
}
