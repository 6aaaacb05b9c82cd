/**
 * The store as the run-centred commands (status, report, replay, export, pause) open it, finding a run in
 * it, and reaching the Temporal server its runs live on without starting one.
 */

import type { Client } from '@temporalio/client';
import { getRun, listRuns, openStore, resolveHome, storeExists, type RunRecord, type Store } from '../store/index.ts';
import { UsageError } from './errors.ts';

/** Run ids a "no such run" message suggests. */
const SUGGESTED_RUNS = 5;

/** Opens the store only if it exists: reading a report must not create an empty `.rise/`. */
export async function withStore<T>(fn: (store: Store) => Promise<T>): Promise<T> {
  const home = resolveHome();
  if (!storeExists(home)) {
    throw new UsageError(`no store at ${home}: no run has been launched there (RISE_HOME picks the store)`);
  }
  const store = await openStore({ home });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

export async function findRun(store: Store, id: string): Promise<RunRecord> {
  const run = await getRun(store, id);
  if (run) return run;
  const newest = (await listRuns(store)).slice(0, SUGGESTED_RUNS).map((r) => `${r.id} (${r.experiment}, ${r.status})`);
  const hint = newest.length === 0 ? 'the store has no runs yet' : `newest runs: ${newest.join(', ')}`;
  throw new UsageError(`no run "${id}" in ${store.home}; ${hint}`);
}

/** A Temporal client, as `rise status`, `rise pause` and `rise resume` use it. */
export interface TemporalReach {
  client: Client;
  close(): Promise<void>;
}

/**
 * Connects to the Temporal server this home's runs live on without starting one: with the embedded dev
 * server, the one recorded for RISE_HOME (or answering at its address), else TEMPORAL_ADDRESS. Throws a
 * TemporalSetupError (exit code 2) that says why when none answers: with no dev server up, no run of
 * this home can be running.
 */
export async function reachTemporal(): Promise<TemporalReach> {
  const { TemporalSetupError, temporalConfig } = await import('../client/temporal.ts');
  const config = temporalConfig();
  let connection = config.connection;
  if (config.devServer.enabled) {
    const { isTemporalServer, readDevServerState } = await import('../temporal/devserver.ts');
    const address = readDevServerState(config.devServer.statePath)?.address ?? connection.address;
    if (!(await isTemporalServer(address))) {
      throw new TemporalSetupError(`no Temporal dev server answers at ${address} for ${resolveHome()} (\`rise server\` starts it; TEMPORAL_ADDRESS names a cluster)`);
    }
    connection = { ...connection, address };
  }
  const { connectClient } = await import('../temporal/config.ts');
  try {
    return await connectClient({ connection });
  } catch (err) {
    throw new TemporalSetupError(`cannot connect to Temporal at ${connection.address} (namespace ${connection.namespace}): ${(err as Error).message}`);
  }
}
