/**
 * A tiny experiment, isolated rise homes and the `rise` CLI for the tests; and the populated store that
 * scripts/test.ts and test/repo/isolation.test.ts put where a test might wrongly look for its own.
 */

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { currentCompute } from '../../src/plan/compute.ts';
import { planExperiment, type Plan } from '../../src/plan/plan.ts';
import { loadSpec } from '../../src/spec/load.ts';
import type { ExperimentSpec } from '../../src/spec/types.ts';
import { validateSpec } from '../../src/spec/validate.ts';
import { createRun, finishStep, getStep, listRuns, openStore, setRunStatus, startStep, type Store } from '../../src/store/index.ts';

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

/**
 * Runs the `rise` CLI as a user would, with `env` added to this process's environment. Never against the
 * user's store: unless `env` names a RISE_HOME, the command gets a fresh empty one, removed when it exits
 * (the inherited RISE_HOME, or `.rise` under the repo, is whatever the person running the tests has there,
 * e.g. the quickstart's run). A test whose commands must share a store passes `RISE_HOME: tempHome(t)`.
 */
export function rise(args: string[], env: Record<string, string> = {}, cwd = ROOT): Promise<CliResult> {
  const ownHome = env.RISE_HOME === undefined ? mkdtempSync(join(tmpdir(), 'rise-cli-home-')) : null;
  const childEnv = { ...process.env, ...(ownHome === null ? {} : { RISE_HOME: ownHome }), ...env };
  return new Promise((resolvePromise) => {
    execFile(process.execPath, [BIN, ...args], { cwd, env: childEnv, maxBuffer: 64 * 2 ** 20 }, (err, stdout, stderr) => {
      if (ownHome !== null) rmSync(ownHome, { recursive: true, force: true });
      resolvePromise({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** The spec the populated store's run was launched from: the quickstart, what a user's `.rise/` holds first. */
export const POPULATED_SPEC = join(ROOT, 'experiments/quickstart.json');

/**
 * A store like the one `npm run quickstart` leaves in `.rise/`, made with the product's own code in a fresh
 * temporary directory (the caller removes it): the quickstart's spec and plan as a finished run, every step
 * of it done (with placeholder outputs; nothing is computed, so it takes a second or two). Returns the home
 * and the run's id. A test that wrongly reads the inherited home sees this instead of an empty store;
 * compare `homeSnapshot` before and after to see whether one wrote to it.
 */
export async function populatedHome(): Promise<{ home: string; runId: string }> {
  const home = mkdtempSync(join(tmpdir(), 'rise-populated-home-'));
  try {
    const spec = await loadSpec(POPULATED_SPEC);
    const plan = planExperiment(spec, { compute: currentCompute() });
    const store = await openStore({ home });
    try {
      const run = await createRun(store, { experiment: spec.name, spec, plan, arms: spec.arms, workflowId: `rise/${spec.name}/populated` });
      for (const step of Object.values(plan.steps)) {
        await startStep(store, step, run.id);
        await finishStep(store, step.key, { populated: true });
      }
      await setRunStatus(store, run.id, 'done');
      return { home, runId: run.id };
    } finally {
      await store.close();
    }
  } catch (err) {
    rmSync(home, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Everything under `home`: relative path → SHA-256 of a file's content, or `directory`. Equal snapshots:
 * nothing was written, created or removed there.
 */
export function homeSnapshot(home: string): Record<string, string> {
  const snapshot: Record<string, string> = {};
  const walk = (dir: string): void => {
    for (const entry of readdirSync(join(home, dir), { withFileTypes: true })) {
      const name = dir === '' ? entry.name : `${dir}/${entry.name}`;
      if (entry.isDirectory()) {
        snapshot[`${name}/`] = 'directory';
        walk(name);
      } else {
        snapshot[name] = entry.isFile() ? createHash('sha256').update(readFileSync(join(home, name))).digest('hex') : 'not a file';
      }
    }
  };
  walk('');
  return snapshot;
}

/** The ids of the runs in the store at `home`, newest first (opens the store; snapshot files before this). */
export async function homeRuns(home: string): Promise<string[]> {
  const store = await openStore({ home });
  try {
    return (await listRuns(store)).map((run) => run.id);
  } finally {
    await store.close();
  }
}

/** What differs between two `homeSnapshot`s, one line per path added, removed or changed; empty when none. */
export function snapshotChanges(before: Record<string, string>, after: Record<string, string>): string[] {
  const names = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  return names.flatMap((name) =>
    before[name] === after[name] ? [] : [`${name}: ${before[name] === undefined ? 'added' : after[name] === undefined ? 'removed' : 'changed'}`],
  );
}

/** Set, with RISE_HOME, to the populated home `underPopulatedHome` made, so that a nested runner reuses it. */
export const POPULATED_HOME_ENV = 'RISE_TEST_POPULATED_HOME';

/**
 * For the test runners (scripts/test.ts, scripts/test-with-temporal.ts): calls `body` with the environment
 * for the test processes, whose RISE_HOME is a fresh `populatedHome()` instead of the user's; afterwards the
 * status is failed (and what changed printed) if anything under that home was written, created or removed,
 * and the home is removed. Inside an outer runner's populated home, just calls `body` with this environment.
 */
export async function underPopulatedHome(runner: string, body: (env: NodeJS.ProcessEnv) => Promise<number>): Promise<number> {
  const inherited = process.env[POPULATED_HOME_ENV];
  if (inherited !== undefined && inherited === process.env.RISE_HOME) return body(process.env);
  const { home } = await populatedHome();
  try {
    const before = homeSnapshot(home);
    const status = await body({ ...process.env, RISE_HOME: home, [POPULATED_HOME_ENV]: home });
    const changes = snapshotChanges(before, homeSnapshot(home));
    if (changes.length === 0) return status;
    console.error(
      `${runner}: a test wrote to the RISE_HOME it inherited (${home}) instead of a home of its own; run alone, ` +
        `it would have written to the user's store:\n${changes.map((line) => `  ${line}`).join('\n')}`,
    );
    return status || 1;
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
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

/** The plan's steps whose last attempt was made by run `runId`. */
export async function stepsRunBy(store: Store, plan: Plan, runId: string): Promise<Plan['steps'][string][]> {
  const steps = [];
  for (const step of Object.values(plan.steps)) if ((await getStep(store, step.key))?.runId === runId) steps.push(step);
  return steps;
}
