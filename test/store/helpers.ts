/** A fresh store in a temporary directory per test, removed afterwards; and queries only tests need. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { and, asc, count, eq, sql } from 'drizzle-orm';
import { openStore, type Store } from '../../src/store/index.ts';
import { arms, episodes, examples, experiments, samples } from '../../src/store/schema.ts';
import { currentGeneration, startStep, type PlannedStep } from '../../src/store/steps.ts';

export function tempHome(t: TestContext): string {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'rise-store-'));
  t.after(() => fs.rmSync(home, { recursive: true, force: true }));
  return home;
}

export async function tempStore(t: TestContext): Promise<Store> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'rise-store-'));
  const store = await openStore({ home });
  t.after(async () => {
    await store.close();
    fs.rmSync(home, { recursive: true, force: true });
  });
  return store;
}

export function plannedStep(key: string, kind = 'rollout', inputs: string[] = []): PlannedStep {
  return { key, kind, params: { key, temperature: 1 }, inputs };
}

/** A started step, for tests of what is recorded under one. */
export async function started(store: Store, key = 'step-a', kind = 'rollout'): Promise<string> {
  await startStep(store, plannedStep(key, kind));
  return key;
}

/** Every file under `dir`, relative to it. */
export function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => path.relative(dir, path.join(d.parentPath, d.name)))
    .sort();
}

export function rowCount(store: Store, table: string): number {
  return (store.sqlite!.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
}

/** How many examples the step kept, and how many each rule dropped. */
export async function exampleCounts(store: Store, stepKey: string): Promise<{ kept: number; dropped: Record<string, number> }> {
  const generation = await currentGeneration(store.db, stepKey, 'exampleCounts');
  const rows = store.db
    .select({ rule: examples.dropRule, n: count() })
    .from(examples)
    .where(and(eq(examples.stepKey, stepKey), eq(examples.generation, generation)))
    .groupBy(examples.dropRule)
    .all();
  const dropped: Record<string, number> = {};
  let kept = 0;
  for (const r of rows) {
    if (r.rule === null) kept = r.n;
    else dropped[r.rule] = r.n;
  }
  return { kept, dropped };
}

/** The name of one sample in `recordedSamples`. */
export function sampleKey(problemId: string, turn: number, sample: number): string {
  return JSON.stringify([problemId, turn, sample]);
}

/** Every sample recorded for the step's current generation, as `sampleKey`s. */
export async function recordedSamples(store: Store, stepKey: string): Promise<Set<string>> {
  const generation = await currentGeneration(store.db, stepKey, 'recordedSamples');
  const rows = store.db
    .select({ problemId: episodes.problemId, turn: samples.turn, sample: samples.sample })
    .from(samples)
    .innerJoin(episodes, eq(samples.episodeId, episodes.id))
    .where(and(eq(episodes.stepKey, stepKey), eq(episodes.generation, generation)))
    .all();
  return new Set(rows.map((r) => sampleKey(r.problemId, r.turn, r.sample)));
}

/** The run's arms in the order they were recorded. */
export function runArms(store: Store, runId: string): { name: string; config: unknown }[] {
  return store.db.select({ name: arms.name, config: arms.config }).from(arms).where(eq(arms.runId, runId)).orderBy(asc(sql`rowid`)).all();
}

export function listExperiments(store: Store): { name: string; createdAt: Date }[] {
  return store.db.select().from(experiments).orderBy(asc(experiments.name)).all();
}
