/** The store as the run-centred commands (status, report, replay, export) open it, and finding a run in it. */

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { getRun, listRuns, openStore, resolveHome, type RunRecord, type Store } from '../store/index.ts';
import { UsageError } from './errors.ts';

/** Run ids a "no such run" message suggests. */
const SUGGESTED_RUNS = 5;

/** Opens the store only if it exists: reading a report must not create an empty `.rise/`. */
export async function withStore<T>(fn: (store: Store) => Promise<T>): Promise<T> {
  const home = resolveHome();
  if (!existsSync(join(home, 'rise.db'))) {
    throw new UsageError(`no store at ${home}: no run has been launched there (RISE_HOME picks the store)`);
  }
  const store = openStore({ home });
  try {
    return await fn(store);
  } finally {
    store.close();
  }
}

export function findRun(store: Store, id: string): RunRecord {
  const run = getRun(store, id);
  if (run) return run;
  const newest = listRuns(store).slice(0, SUGGESTED_RUNS).map((r) => `${r.id} (${r.experiment}, ${r.status})`);
  const hint = newest.length === 0 ? 'the store has no runs yet' : `newest runs: ${newest.join(', ')}`;
  throw new UsageError(`no run "${id}" in ${store.home}; ${hint}`);
}

