/** A fresh store in a temporary directory per test, removed afterwards. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { openStore, type Store } from '../../src/store/index.ts';
import { startStep, type PlannedStep } from '../../src/store/steps.ts';

export function tempHome(t: TestContext): string {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'rise-store-'));
  t.after(() => fs.rmSync(home, { recursive: true, force: true }));
  return home;
}

export function tempStore(t: TestContext): Store {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'rise-store-'));
  const store = openStore({ home });
  t.after(() => {
    store.close();
    fs.rmSync(home, { recursive: true, force: true });
  });
  return store;
}

export function plannedStep(key: string, kind = 'rollout', inputs: string[] = []): PlannedStep {
  return { key, kind, params: { key, temperature: 1 }, inputs };
}

/** A started step, for tests of what is recorded under one. */
export function started(store: Store, key = 'step-a', kind = 'rollout'): string {
  startStep(store, plannedStep(key, kind));
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
  return (store.sqlite.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
}
