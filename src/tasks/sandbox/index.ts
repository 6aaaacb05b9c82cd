/**
 * Runs untrusted Python (MBPP-style programs written by the model) against its tests, on the
 * assumption that the program is hostile: RL training searches for whatever scores.
 *
 * - Isolation is the operating system's, through bubblewrap (isolation.ts): its own namespaces, an
 *   unprivileged user, a read-only view of the interpreter, a size-capped tmpfs as the only writable
 *   place, an empty environment and a seccomp filter; plus CPU, memory, file-size and thread limits set
 *   by the harness before the program runs. A machine where that cannot be set up is refused
 *   (SandboxUnavailable): nothing runs unisolated.
 * - Verdicts are computed here (checks.ts): for `assert EXPR == LITERAL` tests the sandbox only sends
 *   what EXPR evaluated to, as plain data, and the comparison with the literal happens in this process.
 * - The scorer survives every program: whatever the program does to its channel, its exit or its
 *   output is that job's failure, never an exception; the wall-clock limit kills bubblewrap, and the
 *   kernel then ends everything the job started.
 *
 * Jobs run concurrently up to `concurrency`; the rest queue.
 */

import { readFileSync } from 'node:fs';
import { availableParallelism, constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { isPlainObject } from '../../util/objects.ts';
import { checkCompiler, forSandbox, judge, type Check } from './checks.ts';
import { SandboxUnavailable, prepareIsolation, spawnIsolated, type Isolation } from './isolation.ts';

export { SandboxUnavailable } from './isolation.ts';

const HARNESS = readFileSync(fileURLToPath(new URL('./harness.py', import.meta.url)), 'utf8');

export interface SandboxLimits {
  /** Wall-clock time for the whole job (start-up, program and all tests). */
  wallMs: number;
  cpuSeconds: number;
  /** Writable memory of the program's process (RLIMIT_DATA); Python itself needs about 10 MB of it. */
  memoryBytes: number;
  /** Largest file the program may write. */
  fileBytes: number;
  /** Size of the scratch file system, the only place the program can write to. */
  scratchBytes: number;
  /** Threads at once (the program cannot start processes). */
  threads: number;
}

/**
 * Bumped whenever the same program and tests could be judged differently, so that rewards cached under
 * another judge are not reused (it enters the keys of the steps that score code: src/plan/compute.ts).
 * 1: the audit-hook sandbox; 2: bubblewrap isolation, verdicts computed outside.
 */
export const JUDGE_VERSION = 2;

export const DEFAULT_LIMITS: SandboxLimits = {
  wallMs: 10_000,
  cpuSeconds: 5,
  memoryBytes: 512 * 2 ** 20,
  fileBytes: 16 * 2 ** 20,
  scratchBytes: 64 * 2 ** 20,
  threads: 32,
};

/**
 * The distribution's interpreter: readable by the unprivileged user the sandbox runs as and carrying
 * the distribution's libseccomp bindings. One installed under a private home (pyenv under /root) is
 * not visible to that user.
 */
export const DEFAULT_PYTHON = '/usr/bin/python3';

export interface SandboxOptions {
  /** Jobs run at once; default: the machine's available parallelism. */
  concurrency?: number;
  limits?: Partial<SandboxLimits>;
  /** Interpreter for the programs and for the sandbox's own helpers; default DEFAULT_PYTHON. */
  python?: string;
}

export interface SandboxJob {
  program: string;
  /** Python statements run in order in the program's namespace after it (see checks.ts for how each is judged). */
  tests: readonly string[];
}

/**
 * passed: every test passed; failed: the program or a test failed; timeout: wall-clock or CPU limit;
 * crashed: the process ended abnormally or its results were not the harness's (a signal, `os._exit`,
 * output on the result channel that does not fit).
 */
export type SandboxStatus = 'passed' | 'failed' | 'timeout' | 'crashed';

export interface SandboxResult {
  status: SandboxStatus;
  /** One entry per test, in order. */
  passed: boolean[];
  /** Why the program or each failed test failed, or why the run ended. */
  errors: string[];
  /** The first 16 KiB of each, for diagnostics. */
  stdout: string;
  stderr: string;
  wallMs: number;
}

export interface Sandbox {
  run(job: SandboxJob): Promise<SandboxResult>;
}

const OUTPUT_CAP = 16 * 1024;
const CHANNEL_CAP = 1024 * 1024;
/** The harness's first line, written before it reads the job: the sandbox started. */
const READY = '{"ready": true}';
const SIGXCPU_STATUS = 128 + constants.signals.SIGXCPU;

/** A counting semaphore: at most `limit` callers past `acquire` at once. */
function semaphore(limit: number) {
  let active = 0;
  const waiting: (() => void)[] = [];
  return {
    async acquire(): Promise<void> {
      if (active < limit) {
        active++;
        return;
      }
      await new Promise<void>((resolve) => waiting.push(resolve));
    },
    release(): void {
      const next = waiting.shift();
      if (next) next();
      else active--;
    },
  };
}

/** Appends to a bounded buffer, so a program writing in a loop cannot exhaust the scorer's memory. */
function collector(cap: number) {
  const chunks: Buffer[] = [];
  let size = 0;
  return {
    push(chunk: Buffer): void {
      if (size >= cap) return;
      chunks.push(chunk.subarray(0, cap - size));
      size += Math.min(chunk.length, cap - size);
    },
    text: (): string => Buffer.concat(chunks).toString('utf8'),
  };
}

function parseLine(line: string | undefined): unknown {
  try {
    return line === undefined ? undefined : JSON.parse(line);
  } catch {
    return undefined;
  }
}

/**
 * How a job that did not exit cleanly ended: bubblewrap's exit status (128 + the signal that ended the
 * program), or the signal that ended bubblewrap itself.
 */
function ending(code: number | null, signal: NodeJS.Signals | null): string {
  const name = code !== null && code > 128 ? Object.entries(constants.signals).find(([, n]) => n === code - 128)?.[0] : signal;
  return name ? `killed by ${name}` : `exited with status ${code}`;
}

async function runOne(isolation: Isolation, limits: SandboxLimits, job: SandboxJob, checks: Check[]): Promise<SandboxResult> {
  const started = Date.now();
  // -S: the standard library only, and a faster start than with site-packages.
  const child = spawnIsolated(isolation, limits.scratchBytes, ['-I', '-S', '-B', '-c', HARNESS]);
  const stdout = collector(OUTPUT_CAP);
  const stderr = collector(OUTPUT_CAP);
  const channel = collector(CHANNEL_CAP);
  child.stdout!.on('data', stdout.push);
  child.stderr!.on('data', stderr.push);
  (child.stdio[3] as NodeJS.ReadableStream).on('data', channel.push);
  // A program that dies before its job is read closes stdin under us; the exit status tells the story.
  child.stdin!.on('error', () => undefined);
  child.stdin!.end(JSON.stringify({ program: job.program, checks: checks.map(forSandbox), limits }));

  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, limits.wallMs);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (exitCode, exitSignal) => resolve([exitCode, exitSignal]));
  }).finally(() => clearTimeout(timer));

  const [ready, program, ...rest] = channel.text().split('\n');
  if (ready !== READY) {
    throw new SandboxUnavailable(`the sandbox did not start${timedOut ? ` within ${limits.wallMs} ms` : ''}: ${stderr.text().trim() || ending(code, signal)}`);
  }
  const base = { stdout: stdout.text(), stderr: stderr.text(), wallMs: Date.now() - started };
  const none = job.tests.map(() => false);
  if (timedOut) return { ...base, status: 'timeout', passed: none, errors: [`wall-clock limit of ${limits.wallMs} ms`] };
  if (code === SIGXCPU_STATUS) return { ...base, status: 'timeout', passed: none, errors: [`CPU limit of ${limits.cpuSeconds} s`] };
  if (code !== 0) return { ...base, status: 'crashed', passed: none, errors: [ending(code, signal)] };

  const ran = parseLine(program);
  if (isPlainObject(ran) && typeof ran.error === 'string') return { ...base, status: 'failed', passed: none, errors: [`program: ${ran.error}`] };
  if (!(isPlainObject(ran) && ran.ok === true)) return { ...base, status: 'crashed', passed: none, errors: ['exited without results'] };
  // The harness ends every line, the last one included, with a newline.
  const lines = rest.slice(0, -1);
  if (lines.length !== checks.length || rest[rest.length - 1] !== '') {
    return { ...base, status: 'crashed', passed: none, errors: [`${lines.length} results for ${checks.length} tests`] };
  }
  const verdicts = checks.map((check, i) => judge(check, parseLine(lines[i])));
  const errors = verdicts.flatMap((why, i) => (why === null ? [] : [`test ${i}: ${why}`]));
  return { ...base, status: errors.length === 0 ? 'passed' : 'failed', passed: verdicts.map((v) => v === null), errors };
}

export function createSandbox(options: SandboxOptions = {}): Sandbox {
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const concurrency = options.concurrency ?? availableParallelism();
  for (const [name, value] of Object.entries({ concurrency, ...limits })) {
    if (!Number.isInteger(value) || value < 1) throw new Error(`sandbox: ${name} must be a positive integer, got ${value}`);
  }
  const python = options.python ?? DEFAULT_PYTHON;
  const compile = checkCompiler(python);
  const slots = semaphore(concurrency);
  let isolation: Promise<Isolation> | undefined;
  return {
    async run(job: SandboxJob): Promise<SandboxResult> {
      isolation ??= prepareIsolation(python);
      const ready = await isolation;
      // Before waiting for a slot, so that one compiler run serves a whole batch of jobs.
      const checks = await compile(job.tests);
      await slots.acquire();
      try {
        return await runOne(ready, limits, job, checks);
      } finally {
        slots.release();
      }
    },
  };
}
