/** A tiny experiment and an isolated rise home for the orchestration tests. */

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { currentCompute } from '../../src/plan/compute.ts';
import { planExperiment, type Plan } from '../../src/plan/plan.ts';
import type { ExperimentSpec } from '../../src/spec/types.ts';
import { validateSpec } from '../../src/spec/validate.ts';

/** Seconds-scale on 2 cores: a 1-layer model, a few dozen problems, one iteration. */
export const TINY = {
  seed: 3,
  task: { kind: 'arithmetic', train: { count: 24, ops: [1], min: 1, max: 5 }, eval: [{ name: 'in-dist', count: 8 }] },
  model: { kind: 'builtin', config: { layers: 1, dim: 32, heads: 2, context: 128 } },
  boost: { epochs: 2, lr: 0.01, batchSize: 8 },
  iterations: 1,
  rollout: { maxTokens: 12 },
  relabel: { samples: 2 },
  train: { epochs: 1, batchSize: 8 },
  evaluate: { turns: 2, parallelK: 2, maxTokens: 12 },
};

/** The tiny experiment with two arms that differ only in training (so they share every step before it). */
export function tinySpec(name: string, overrides: Record<string, unknown> = {}): ExperimentSpec {
  return validateSpec({ name, ...TINY, arms: { rise: {}, uniform: { train: { weighting: 'uniform' } } }, ...overrides });
}

export function tinyPlan(spec: ExperimentSpec): Plan {
  return planExperiment(spec, { compute: currentCompute() });
}

/** A fresh RISE_HOME, removed after the test. */
export function tempHome(t: TestContext): string {
  const home = mkdtempSync(join(tmpdir(), 'rise-home-'));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  return home;
}

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = join(ROOT, 'bin/rise.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the `rise` CLI as a user would, with `env` added to this process's environment. */
export function rise(args: string[], env: Record<string, string> = {}, cwd = ROOT): Promise<CliResult> {
  return new Promise((resolvePromise) => {
    execFile(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, ...env }, maxBuffer: 64 * 2 ** 20 }, (err, stdout, stderr) => {
      resolvePromise({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** Polls `check` until it returns a value (not undefined), or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 120_000, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}
