/** A fresh store in a temporary directory per test, removed afterwards; and queries only tests need. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { and, asc, count, eq, sql } from 'drizzle-orm';
import { openStore, rawRows, type Store } from '../../src/store/index.ts';
import { createDatabase } from './postgres.ts';
import { arms, episodes, examples, experiments, samples } from '../../src/store/schema.ts';
import { currentGeneration, startStep, type PlannedStep } from '../../src/store/steps.ts';

export function tempHome(t: TestContext): string {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'rise-store-'));
  t.after(() => fs.rmSync(home, { recursive: true, force: true }));
  return home;
}

/**
 * The PostgreSQL server the store suite's second pass runs against (scripts/test.ts starts it); unset,
 * the tests run on SQLite.
 */
export const TEST_POSTGRES = process.env.RISE_TEST_POSTGRES;

/** Why a test about SQLite itself (pragmas, triggers, its file) does not run in the PostgreSQL pass. */
export const SQLITE_ONLY = TEST_POSTGRES === undefined ? false : 'about SQLite itself';

/** A fresh store per test: a SQLite file in a temporary home, or a fresh database on the PostgreSQL pass's server. */
export async function tempStore(t: TestContext): Promise<Store> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'rise-store-'));
  const database = TEST_POSTGRES === undefined ? undefined : await createDatabase(TEST_POSTGRES);
  const store = await openStore({ home, database: database?.url ?? 'sqlite' });
  t.after(async () => {
    await store.close();
    await database?.drop();
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

export async function rowCount(store: Store, table: string): Promise<number> {
  const [{ n }] = await rawRows<{ n: number }>(store, sql.raw(`SELECT count(*) AS n FROM ${table}`));
  return Number(n);
}

/** How many examples the step kept, and how many each rule dropped. */
export async function exampleCounts(store: Store, stepKey: string): Promise<{ kept: number; dropped: Record<string, number> }> {
  const generation = await currentGeneration(store.db, stepKey, 'exampleCounts');
  const rows = await store.db
    .select({ rule: examples.dropRule, n: count() })
    .from(examples)
    .where(and(eq(examples.stepKey, stepKey), eq(examples.generation, generation)))
    .groupBy(examples.dropRule);
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
  const rows = await store.db
    .select({ problemId: episodes.problemId, turn: samples.turn, sample: samples.sample })
    .from(samples)
    .innerJoin(episodes, eq(samples.episodeId, episodes.id))
    .where(and(eq(episodes.stepKey, stepKey), eq(episodes.generation, generation)));
  return new Set(rows.map((r) => sampleKey(r.problemId, r.turn, r.sample)));
}

/** The run's arms in the order they were recorded. */
export function runArms(store: Store, runId: string): Promise<{ name: string; config: unknown }[]> {
  return store.db.select({ name: arms.name, config: arms.config }).from(arms).where(eq(arms.runId, runId)).orderBy(asc(sql`rowid`));
}

export function listExperiments(store: Store): Promise<{ name: string; createdAt: Date }[]> {
  return store.db.select().from(experiments).orderBy(asc(experiments.name));
}

/**
 * Makes every insert into `table` (matching `when`, a condition on NEW) fail with "simulated crash", as if
 * the process died at that write; returns what lifts it. On either backend.
 */
export async function simulateCrash(store: Store, table: string, when?: string): Promise<() => Promise<void>> {
  if (store.sqlite !== undefined) {
    store.sqlite.exec(`CREATE TEMP TRIGGER crash BEFORE INSERT ON ${table} ${when ? `WHEN ${when}` : ''} BEGIN SELECT RAISE(ABORT, 'simulated crash'); END`);
    return async () => void store.sqlite!.exec('DROP TRIGGER crash');
  }
  await rawRows(store, sql.raw(`CREATE FUNCTION crash() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'simulated crash'; END $$`));
  await rawRows(store, sql.raw(`CREATE TRIGGER crash BEFORE INSERT ON ${table} FOR EACH ROW ${when ? `WHEN (${when})` : ''} EXECUTE FUNCTION crash()`));
  return async () => {
    await rawRows(store, sql.raw(`DROP TRIGGER crash ON ${table}`));
    await rawRows(store, sql.raw('DROP FUNCTION crash'));
  };
}
