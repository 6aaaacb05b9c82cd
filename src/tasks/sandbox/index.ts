/**
 * Runs untrusted Python (MBPP-style programs written by the model) with its tests, contained:
 *
 * - a separate `python3` process in its own process group (detached), the whole group SIGKILLed when
 *   the wall-clock limit passes and again when the program exits, so no child outlives its job;
 * - CPU, memory (address space), file-size, process and open-file limits, core dumps off, set by the
 *   harness (sandbox_harness.py) with setrlimit before any untrusted code runs;
 * - no network: a fresh network namespace (`unshare -n`, or `unshare -rn` for non-root users where user
 *   namespaces are allowed) in which nothing is reachable, not even the host's loopback; in every case
 *   also the harness's audit hook, which refuses to create sockets. `isolation.network` says which;
 * - a scratch directory as cwd, HOME and TMPDIR, removed afterwards; writes, deletes and renames
 *   outside it refused by the audit hook, and as root the harness also switches to uid 65534 so file
 *   permissions apply (see the harness for when it cannot);
 * - a clean environment: PATH, HOME, TMPDIR, LANG only.
 *
 * Jobs run concurrently up to `concurrency`; the rest queue.
 */

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readdir, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HARNESS = fileURLToPath(new URL('./sandbox_harness.py', import.meta.url));

export interface SandboxLimits {
  /** Wall-clock time for the whole job (start-up, program and all tests). */
  wallMs: number;
  cpuSeconds: number;
  /** Address-space limit; Python itself needs about 30 MB of it. */
  memoryBytes: number;
  /** Largest file the program may write. */
  fileBytes: number;
  /**
   * RLIMIT_NPROC: the kernel counts every process and thread of the user, so this is a backstop
   * for when the harness's refusal to fork is bypassed. Root ignores it, hence the switch to nobody.
   */
  processes: number;
}

export const DEFAULT_LIMITS: SandboxLimits = {
  wallMs: 10_000,
  cpuSeconds: 5,
  memoryBytes: 512 * 2 ** 20,
  fileBytes: 16 * 2 ** 20,
  processes: 32,
};

export interface SandboxOptions {
  /** Jobs run at once; default: the machine's available parallelism. */
  concurrency?: number;
  limits?: Partial<SandboxLimits>;
  /** Interpreter to run; default `python3` from PATH, resolved to an absolute path once. */
  python?: string;
}

export interface SandboxJob {
  program: string;
  /** Python statements run in order in the program's namespace after it; each passes if it raises nothing. */
  tests: readonly string[];
}

/**
 * passed: every test passed; failed: the program or a test raised; timeout: wall-clock or CPU limit;
 * crashed: the process died without a verdict (a signal, `os._exit`, an interpreter crash).
 */
export type SandboxStatus = 'passed' | 'failed' | 'timeout' | 'crashed';

export interface Isolation {
  network: 'namespace' | 'audit-hook';
  /** 'nobody' when the harness gave up root, else why it ran as the caller ("not root", …). */
  privileges: string;
}

export interface SandboxResult {
  status: SandboxStatus;
  /** One entry per test, in order. */
  passed: boolean[];
  /** The program's and tests' exceptions, or why the run ended. */
  errors: string[];
  /** The first 16 KiB of each, for diagnostics. */
  stdout: string;
  stderr: string;
  wallMs: number;
  isolation: Isolation;
}

export interface Sandbox {
  run(job: SandboxJob): Promise<SandboxResult>;
}

interface Setup {
  python: string;
  /** Command prefix that puts the process in its own network namespace; empty when unavailable. */
  netns: string[];
}

const OUTPUT_CAP = 16 * 1024;
const VERDICT_CAP = 1024 * 1024;

/** Runs a command to completion; resolves to its exit code and stdout, or null when it cannot start. */
function probe(command: string, args: string[]): Promise<{ code: number | null; stdout: string } | null> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.on('error', () => resolve(null));
    child.on('close', (code) => resolve({ code, stdout }));
  });
}

async function detect(pythonOption: string): Promise<Setup> {
  const found = await probe(pythonOption, ['-c', 'import sys; print(sys.executable)']);
  if (!found || found.code !== 0 || found.stdout.trim() === '') {
    throw new Error(`sandbox: cannot run "${pythonOption}"; MBPP scoring needs a Python 3 interpreter`);
  }
  const python = found.stdout.trim();
  for (const netns of [['unshare', '-n'], ['unshare', '-r', '-n']]) {
    const ok = await probe(netns[0], [...netns.slice(1), python, '-c', 'pass']);
    if (ok?.code === 0) return { python, netns };
  }
  return { python, netns: [] };
}

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

/** Appends to a bounded buffer, so a program printing in a loop cannot exhaust the runner's memory. */
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

/** rm -rf that also copes with directories the program made unreadable (chmod 000) before it ended. */
async function removeTree(dir: string): Promise<void> {
  try {
    await rm(dir, { recursive: true, force: true });
  } catch {
    const unlock = async (path: string): Promise<void> => {
      await chmod(path, 0o700).catch(() => undefined);
      const entries = await readdir(path, { withFileTypes: true }).catch(() => []);
      for (const entry of entries) if (entry.isDirectory()) await unlock(join(path, entry.name));
    };
    await unlock(dir);
    await rm(dir, { recursive: true, force: true });
  }
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // ESRCH: the group is already gone, which is what we wanted.
  }
}

interface Verdict {
  passed: boolean[];
  errors: string[];
  privileges: string;
}

/** The verdict line after the nonce; anything else on the channel (the program's own writes) is ignored. */
function readVerdict(channel: string, nonce: string): Verdict | null {
  const at = channel.lastIndexOf(nonce);
  if (at < 0) return null;
  const line = channel.slice(at + nonce.length).split('\n', 1)[0];
  try {
    return JSON.parse(line) as Verdict;
  } catch {
    return null;
  }
}

async function runOne(setup: Setup, limits: SandboxLimits, job: SandboxJob): Promise<SandboxResult> {
  const scratch = await mkdtemp(join(tmpdir(), 'rise-sandbox-'));
  const nonce = randomBytes(16).toString('hex');
  const started = Date.now();
  const network: Isolation['network'] = setup.netns.length > 0 ? 'namespace' : 'audit-hook';
  try {
    const [command, ...prefix] = [...setup.netns, setup.python];
    const child = spawn(command, [...prefix, '-I', '-B', HARNESS], {
      cwd: scratch,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: scratch, TMPDIR: scratch, LANG: 'C.UTF-8' },
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    });
    const stdout = collector(OUTPUT_CAP);
    const stderr = collector(OUTPUT_CAP);
    const verdictChannel = collector(VERDICT_CAP);
    child.stdout!.on('data', stdout.push);
    child.stderr!.on('data', stderr.push);
    (child.stdio[3] as NodeJS.ReadableStream).on('data', verdictChannel.push);
    // A program that dies before reading its job closes stdin under us; the exit status tells the story.
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(JSON.stringify({ nonce, program: job.program, tests: job.tests, limits }));

    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
    }, limits.wallMs);
    const signal = await new Promise<NodeJS.Signals | null>((resolve, reject) => {
      child.on('error', reject);
      // Children the program left behind would hold the pipes open and delay 'close' forever.
      child.on('exit', () => killGroup(child.pid));
      child.on('close', (_code, sig) => resolve(sig));
    }).finally(() => clearTimeout(timer));

    const verdict = readVerdict(verdictChannel.text(), nonce);
    const wallMs = Date.now() - started;
    const isolation: Isolation = { network, privileges: verdict?.privileges ?? 'unknown' };
    const base = { stdout: stdout.text(), stderr: stderr.text(), wallMs, isolation };
    const noTests = job.tests.map(() => false);
    if (timedOut) {
      return { ...base, status: 'timeout', passed: noTests, errors: [`wall-clock limit of ${limits.wallMs} ms`] };
    }
    if (signal === 'SIGXCPU') {
      return { ...base, status: 'timeout', passed: noTests, errors: [`CPU limit of ${limits.cpuSeconds} s`] };
    }
    if (!verdict) {
      const why = signal ? `killed by ${signal}` : 'exited without a verdict';
      return { ...base, status: 'crashed', passed: noTests, errors: [why] };
    }
    const status = verdict.passed.length === job.tests.length && verdict.passed.every(Boolean) ? 'passed' : 'failed';
    return { ...base, status, passed: verdict.passed, errors: verdict.errors };
  } finally {
    await removeTree(scratch);
  }
}

export function createSandbox(options: SandboxOptions = {}): Sandbox {
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const concurrency = options.concurrency ?? availableParallelism();
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new Error(`sandbox: concurrency must be a positive integer, got ${concurrency}`);
  }
  const slots = semaphore(concurrency);
  let setup: Promise<Setup> | undefined;
  return {
    async run(job: SandboxJob): Promise<SandboxResult> {
      setup ??= detect(options.python ?? 'python3');
      const ready = await setup;
      await slots.acquire();
      try {
        return await runOne(ready, limits, job);
      } finally {
        slots.release();
      }
    },
  };
}
