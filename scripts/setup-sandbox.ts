/**
 * Makes sure code tasks (MBPP) can run candidate programs: the sandbox needs bubblewrap, the
 * distribution's Python 3 and libseccomp's Python bindings (Debian: bubblewrap, python3,
 * python3-seccomp), and a kernel that lets it create user namespaces. Starts a sandbox to check; when that
 * fails and this runs as root with apt-get, installs the packages and checks again. Idempotent.
 * Elsewhere it says what is missing (scoring code refuses to run without isolation).
 *
 *   node --import tsx scripts/setup-sandbox.ts [--postinstall]   # --postinstall: warn instead of failing
 *
 * RISE_SKIP_SANDBOX_SETUP=1 skips this.
 */

import { aptInstall, canInstall } from './apt.ts';
import { createSandbox } from '../src/tasks/sandbox/index.ts';

const postinstall = process.argv.includes('--postinstall');
const PACKAGES = ['bubblewrap', 'python3', 'python3-seccomp'];

/** null when a sandbox runs a program and passes its test, else why not. */
async function check(): Promise<string | null> {
  try {
    const result = await createSandbox({ concurrency: 1 }).run({ program: 'def f():\n    return 1\n', tests: ['assert f() == 1'] });
    return result.status === 'passed' ? null : `a test program did not pass in the sandbox: ${result.errors.join('; ')} ${result.stderr}`;
  } catch (err) {
    return (err as Error).message;
  }
}

async function main(): Promise<number> {
  if (/^(1|true|yes)$/i.test(process.env.RISE_SKIP_SANDBOX_SETUP ?? '')) return 0;
  const before = await check();
  if (before === null) return 0;
  if (!canInstall()) {
    console.error(`rise: ${before}\nrise: code tasks need: apt-get install -y ${PACKAGES.join(' ')} (as root)`);
    return postinstall ? 0 : 1;
  }
  console.error(`rise: ${before}\nrise: installing ${PACKAGES.join(', ')} (apt-get) for the code tasks' sandbox`);
  try {
    aptInstall(PACKAGES);
  } catch (err) {
    console.error(`rise: could not install the sandbox's packages: ${(err as Error).message}`);
    return postinstall ? 0 : 1;
  }
  const after = await check();
  console.error(after === null ? 'rise: sandbox ready' : `rise: ${after}`);
  return after === null || postinstall ? 0 : 1;
}

process.exitCode = await main();
