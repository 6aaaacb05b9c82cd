/**
 * The operating-system isolation of a sandbox job, by bubblewrap (`bwrap`): what it needs (the
 * interpreter's directories, the seccomp filter), checked once per sandbox, and the process it starts.
 *
 * Each job gets fresh user, pid, network, mount, IPC, UTS and cgroup namespaces; runs as an unprivileged
 * user with no capabilities, no_new_privs and no way to make further user namespaces; sees the system's
 * /usr and /lib and the interpreter read-only, its own /proc and a minimal /dev, and one writable place,
 * a size-capped tmpfs at /tmp; has an empty environment; and runs under a seccomp filter (syscalls.py)
 * that stops it from starting processes. When the job's process ends or its parent kills bubblewrap,
 * the kernel ends everything in its pid namespace and the tmpfs goes with the mount namespace, so
 * nothing of a job outlives it and there is nothing to clean up.
 *
 * bubblewrap is run as the caller, or, when the caller is root, as uid 65534: run by root it would map
 * the sandbox's user to root outside, for whom the kernel's process limit does not apply.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { lstat, readlink } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SYSCALL_FILTER = fileURLToPath(new URL('./syscalls.py', import.meta.url));

/** The overflow uid and gid: no file on the host belongs to them. */
const NOBODY = 65534;

/** Where the program's writable scratch space is mounted; also its working directory. */
const SCRATCH = '/tmp';

const SYSTEM_DIRS = ['/lib', '/lib64'];

/** Why the sandbox cannot isolate programs here; scoring refuses to run code rather than run it bare. */
export class SandboxUnavailable extends Error {
  constructor(why: string) {
    super(`sandbox: ${why}; code tasks run candidate programs only inside bubblewrap`);
  }
}

export interface Isolation {
  /** bubblewrap, as an absolute path: it is started with an empty environment. */
  bwrap: string;
  /** The interpreter, as an absolute path. */
  python: string;
  /** bubblewrap arguments for the file system: /usr, /lib and the interpreter's own directories. */
  mounts: string[];
  /** The seccomp filter as a BPF program. */
  filter: Buffer;
}

/** Runs a command to completion, collecting its output; the error names what could not be started. */
function capture(command: string, args: string[], what: string): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', (err) => reject(new SandboxUnavailable(`cannot run ${what} (${command}): ${err.message}`)));
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(stdout), stderr: stderr.trim() }));
  });
}

interface Interpreter {
  executable: string;
  prefixes: string[];
  version: [number, number];
}

async function interpreter(python: string): Promise<Interpreter> {
  const describe = 'import json, sys; print(json.dumps({"executable": sys.executable, "version": sys.version_info[:2], "prefixes": [sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix]}))';
  const { code, stdout, stderr } = await capture(python, ['-I', '-c', describe], 'the Python interpreter (Debian: apt-get install python3)');
  if (code !== 0) throw new SandboxUnavailable(`the Python interpreter ${python} failed: ${stderr}`);
  const found = JSON.parse(stdout.toString()) as Interpreter;
  const [major, minor] = found.version;
  // ast.unparse and ast.literal_eval("set()") in checks.py.
  if (major < 3 || (major === 3 && minor < 9)) throw new SandboxUnavailable(`${python} is Python ${major}.${minor}; the sandbox needs 3.9 or newer`);
  return found;
}

/** /usr read-only, /lib and /lib64 as the system has them (directories, or links into /usr), and the interpreter. */
async function mounts(found: Interpreter): Promise<string[]> {
  const args = ['--ro-bind', '/usr', '/usr'];
  for (const dir of SYSTEM_DIRS) {
    const stat = await lstat(dir).catch(() => null);
    if (stat?.isSymbolicLink()) args.push('--symlink', await readlink(dir), dir);
    else if (stat?.isDirectory()) args.push('--ro-bind', dir, dir);
  }
  const outside = new Set(found.prefixes.filter((p) => p !== '/usr' && !p.startsWith('/usr/')));
  for (const prefix of outside) args.push('--ro-bind', prefix, prefix);
  return args;
}

function findBwrap(): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter((d) => d !== '')) {
    const path = join(dir, 'bwrap');
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not in this directory
    }
  }
  throw new SandboxUnavailable('bubblewrap (bwrap) is not installed (Debian: apt-get install bubblewrap)');
}

async function syscallFilter(python: string): Promise<Buffer> {
  const { code, stdout, stderr } = await capture(python, ['-I', '-B', SYSCALL_FILTER], 'the Python interpreter');
  if (code === 0 && stdout.length > 0) return stdout;
  const missing = /No module named '?seccomp/.test(stderr);
  throw new SandboxUnavailable(
    missing
      ? `libseccomp's Python bindings are not installed for ${python} (Debian: apt-get install python3-seccomp)`
      : `cannot build the seccomp filter with ${python}: ${stderr}`,
  );
}

/**
 * Starts `python args` isolated. stdio: 0 in, 1 out, 2 err, 3 the harness's result channel (read),
 * 4 the seccomp filter, which bubblewrap reads before it starts the interpreter.
 */
export function spawnIsolated(isolation: Isolation, scratchBytes: number, args: string[]): ChildProcess {
  const bwrap = [
    '--unshare-all', '--unshare-user', '--disable-userns', '--uid', String(NOBODY), '--gid', String(NOBODY),
    '--hostname', 'sandbox', '--die-with-parent', '--new-session', '--clearenv',
    // The interpreter is the namespace's init, the direct child of bubblewrap, which reaps it. With
    // bubblewrap's own init in between, that init outlives bubblewrap by a moment, is re-parented to the
    // host's init, and stays a zombie wherever that init does not reap (the init of this project's
    // machines does not): a pid lost per job.
    '--as-pid-1',
    // Scratch first: an interpreter under /tmp (a virtual environment) is then bound inside it, not hidden by it.
    '--size', String(scratchBytes), '--tmpfs', SCRATCH,
    ...isolation.mounts,
    '--proc', '/proc', '--dev', '/dev',
    // bubblewrap's root and /dev are tmpfs without a size limit: neither stays writable.
    '--remount-ro', '/dev', '--remount-ro', '/',
    '--chdir', SCRATCH, '--seccomp', '4',
    '--', isolation.python, ...args,
  ];
  const root = process.getuid?.() === 0;
  const child = spawn(isolation.bwrap, bwrap, {
    cwd: '/',
    env: {},
    stdio: ['pipe', 'pipe', 'pipe', 'pipe', 'pipe'],
    ...(root ? { uid: NOBODY, gid: NOBODY } : {}),
  });
  const filter = child.stdio[4] as NodeJS.WritableStream;
  // bubblewrap that fails before reading the filter closes the pipe; its exit status tells the story.
  filter.on('error', () => undefined);
  filter.end(isolation.filter);
  return child;
}

/** Starts a sandbox that does nothing, so a machine that cannot isolate is refused before any job runs. */
async function probe(isolation: Isolation): Promise<void> {
  const child = spawnIsolated(isolation, 1 << 20, ['-I', '-c', 'pass']);
  child.stdin!.end();
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', (err) => reject(new SandboxUnavailable(`cannot start bubblewrap (${isolation.bwrap}): ${err.message}`)));
    child.on('close', resolve);
  });
  if (code !== 0) {
    const user = process.getuid?.() === 0 ? `uid ${NOBODY}` : 'this user';
    throw new SandboxUnavailable(
      `bubblewrap cannot start a sandbox here (${stderr.trim() || `exit status ${code}`}). It needs user namespaces ` +
        `(sysctl user.max_user_namespaces > 0) and an interpreter readable by ${user} (${isolation.python})`,
    );
  }
}

/** Finds what a sandbox needs and starts one, or throws SandboxUnavailable naming what is missing. */
export async function prepareIsolation(python: string): Promise<Isolation> {
  const bwrap = findBwrap();
  const found = await interpreter(python);
  const isolation = { bwrap, python: found.executable, mounts: await mounts(found), filter: await syscallFilter(found.executable) };
  await probe(isolation);
  return isolation;
}
