/**
 * MATH-style answer equivalence: two LaTeX answers are equal when they normalise to the same string,
 * or when both denote the same plain number ("0.5" = "\frac{1}{2}" = "1/2"). The normalisation removes
 * what authors vary without changing the answer: frac spellings, \left/\right, degrees, dollars, units
 * in \text, percent signs, leading zeros, spaces, "x = " prefixes.
 */

import { lastBoxed } from './boxed.ts';
import { canonicalNumber, parseNumber } from './numeric.ts';

/** A whole-string `\boxed{X}` / `\fbox{X}` (a box inside the box) → X. */
function unbox(s: string): string {
  for (;;) {
    const box = lastBoxed(s);
    if (!box || box.start !== 0 || (`\\boxed{${box.content}}` !== s && `\\fbox{${box.content}}` !== s)) return s;
    s = box.content.trim();
  }
}

/** `\frac12` → `\frac{1}{2}`, `\frac1{2}` → `\frac{1}{2}`, `\sqrt2` → `\sqrt{2}`: TeX's one-token arguments. */
function braceArguments(s: string): string {
  const groupOrToken = (t: string, i: number): [string, number] => {
    if (t[i] === '{') {
      let depth = 0;
      for (let j = i; j < t.length; j++) {
        if (t[j] === '{') depth++;
        else if (t[j] === '}' && --depth === 0) return [t.slice(i, j + 1), j + 1];
      }
      return [t.slice(i), t.length];
    }
    return i < t.length ? [`{${t[i]}}`, i + 1] : ['', i];
  };
  let out = '';
  let i = 0;
  while (i < s.length) {
    const m = /^\\(frac|sqrt)(?![a-zA-Z])/.exec(s.slice(i));
    if (!m) {
      out += s[i++];
      continue;
    }
    out += m[0];
    i += m[0].length;
    for (let arg = 0; arg < (m[1] === 'frac' ? 2 : 1); arg++) {
      if (m[1] === 'sqrt' && s[i] === '[') break; // \sqrt[3]{x}: leave the index form alone
      const [text, next] = groupOrToken(s, i);
      out += text;
      i = next;
    }
  }
  return out;
}

/** Units after the number: `5\text{ cm}`, `10\mbox{ inches}^2`; only when something precedes them. */
const TRAILING_UNITS = /(.)\\(?:text|mbox|mathrm)\{[^{}]*\}(?:\^\{?\d\}?)?$/;

export function normalizeMathAnswer(answer: string): string {
  let s = unbox(answer.trim())
    .replace(/\n/g, '')
    .replace(/\\(?:displaystyle|[!,;:]|q?quad)|\\ /g, ' ')
    .replace(/\\[dt]frac/g, '\\frac')
    .replace(/\\left|\\right/g, '')
    .replace(/\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\\degree|°/g, '')
    .replace(/\\?\$/g, '')
    .replace(/\\?%/g, '');
  while (TRAILING_UNITS.test(s)) s = s.replace(TRAILING_UNITS, '$1');
  s = s
    .replace(/\\(?:text|textbf|mbox|mathrm)\{([^{}]*)\}/g, '$1')
    .replace(/\s+/g, '');
  // "x=5", "k=-2": a short variable name on the left is a label, not part of the answer.
  const eq = s.split('=');
  if (eq.length === 2 && /^[a-zA-Z](?:_\{?\w+\}?)?$/.test(eq[0])) s = eq[1];
  s = braceArguments(s)
    .replace(/(^|[^\d])\.(\d)/g, (_, before: string, digit: string) => `${before}0.${digit}`)
    .replace(/\.$/, '');
  const ratio = /^(-?\d+)\/(\d+)$/.exec(s);
  if (ratio) s = `\\frac{${ratio[1]}}{${ratio[2]}}`;
  if (/^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$/.test(s)) s = s.replace(/,/g, '');
  return s;
}

/** The normalised content of the last `\boxed{…}` / `\fbox{…}`, or null (also for an empty box). */
export function extractMathAnswer(response: string): string | null {
  const box = lastBoxed(response);
  if (!box) return null;
  const normalized = normalizeMathAnswer(box.content);
  return normalized === '' ? null : normalized;
}

/** Equivalence of two answers; a missing answer (null) equals nothing, not even another missing one. */
export function mathAnswersEqual(a: string | null, b: string | null): boolean {
  if (a === null || b === null) return false;
  const x = normalizeMathAnswer(a);
  const y = normalizeMathAnswer(b);
  if (x === '' || y === '') return false;
  if (x === y) return true;
  const u = parseNumber(x);
  const v = parseNumber(y);
  return u !== null && v !== null && canonicalNumber(u) === canonicalNumber(v);
}
