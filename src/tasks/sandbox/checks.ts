/**
 * A job's tests as checks, and each check's verdict from what the sandbox reported.
 *
 * Tests are compiled by checks.py, outside the sandbox: `assert EXPR == LITERAL` becomes an expression
 * the sandbox evaluates and an expected value that stays here; the verdict is Python's `==` between
 * the value the sandbox sent (decoded strictly, values.ts) and the literal, computed in this process.
 * Any other test runs inside as a statement and passes when it raises nothing: the candidate shares
 * that interpreter, so such a verdict holds only against a careless program, not a hostile one.
 */

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { isPlainObject } from '../../util/objects.ts';
import { decodeValue, pyEqual, type PyValue } from './values.ts';

const COMPILER = fileURLToPath(new URL('./checks.py', import.meta.url));

export type Check = { expr: string; expected: PyValue; literal: string } | { statement: string };

/** What the harness is sent: never the expected value. */
export function forSandbox(check: Check): { expr: string } | { statement: string } {
  return 'expr' in check ? { expr: check.expr } : { statement: check.statement };
}

type Compiled = { expr: string; expected: unknown; literal: string } | { statement: string };

function runCompiler(python: string, lists: (readonly string[])[]): Promise<Compiled[][]> {
  return new Promise((resolve, reject) => {
    // -E -s rather than -I: checks.py imports the harness's encoder from its own directory.
    const child = spawn(python, ['-E', '-s', '-B', COMPILER], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(JSON.parse(stdout) as Compiled[][]);
      else reject(new Error(`sandbox: compiling tests failed (${python} ${COMPILER}): ${stderr.trim()}`));
    });
    child.stdin.end(JSON.stringify(lists));
  });
}

/**
 * A compiler of test lists that starts one checks.py for all the lists asked for in the same tick (a
 * batch of rewards asks for all of its problems at once) and remembers each list's checks.
 */
export function checkCompiler(python: string): (tests: readonly string[]) => Promise<Check[]> {
  const compiled = new Map<string, Promise<Check[]>>();
  let pending: { tests: readonly string[]; resolve: (checks: Check[]) => void; reject: (err: unknown) => void }[] = [];
  const flush = () => {
    const batch = pending;
    pending = [];
    runCompiler(python, batch.map((p) => p.tests)).then(
      (lists) =>
        batch.forEach((p, i) =>
          p.resolve(lists[i].map((c) => ('expr' in c ? { expr: c.expr, expected: decodeValue(c.expected), literal: c.literal } : c))),
        ),
      (err) => batch.forEach((p) => p.reject(err)),
    );
  };
  return (tests) => {
    const key = JSON.stringify(tests);
    let checks = compiled.get(key);
    if (!checks) {
      checks = new Promise<Check[]>((resolve, reject) => {
        if (pending.length === 0) setImmediate(flush);
        pending.push({ tests, resolve, reject });
      });
      compiled.set(key, checks);
    }
    return checks;
  };
}

/**
 * The verdict on one check from the harness's line for it (already JSON-parsed, or undefined when the
 * line is missing or not JSON): null for a pass, else why it failed. Never throws.
 */
export function judge(check: Check, line: unknown): string | null {
  if (isPlainObject(line) && typeof line.error === 'string') return line.error;
  if ('statement' in check) return isPlainObject(line) && line.ok === true ? null : 'no result';
  if (!isPlainObject(line) || !('value' in line)) return 'no result';
  try {
    if (pyEqual(decodeValue(line.value), check.expected)) return null;
    const shown = typeof line.repr === 'string' ? line.repr : 'another value';
    return `${check.expr} is ${shown}, expected ${check.literal}`;
  } catch (err) {
    return `malformed result: ${(err as Error).message}`;
  }
}
