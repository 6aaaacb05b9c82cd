/**
 * Opening the store: where it lives, the SQLite connection settings, and the migrations applied at start.
 *
 * Several processes share one database (the CLI, one or more workers), so every connection runs in WAL mode
 * (readers never block the writer), waits on locks instead of failing (busy_timeout), and writes through
 * IMMEDIATE transactions (see `writeTx`).
 */

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { openArtifactLocation } from '../artifacts/config.ts';
import type { ArtifactLocation } from '../artifacts/location.ts';
import type { Env } from '../util/env.ts';
import * as schema from './schema.ts';

export type Db = BetterSQLite3Database<typeof schema>;
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

export interface Store {
  /** The store's root directory (`.rise` by default). */
  readonly home: string;
  readonly dbPath: string;
  /** Where artifact bytes live (RISE_ARTIFACTS, else `<home>/artifacts`); the `artifacts` table indexes them. */
  readonly artifacts: ArtifactLocation;
  readonly db: Db;
  /** The raw connection, for pragmas and diagnostics. */
  readonly sqlite: Database.Database;
  close(): void;
}

export interface StoreOptions {
  /** Root directory; defaults to $RISE_HOME, then `.rise` under the working directory. */
  home?: string;
  /** Where RISE_ARTIFACTS is read (default: process.env). */
  env?: Env;
}

/** Relative to this file rather than the working directory, so the CLI finds them from anywhere. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../drizzle/', import.meta.url));

/** A worker may hold the write lock for a large ledger batch; other processes wait this long before failing. */
const BUSY_TIMEOUT_MS = 30_000;

export function resolveHome(home?: string): string {
  return path.resolve(home ?? process.env.RISE_HOME ?? '.rise');
}

export function openStore(options: StoreOptions = {}): Store {
  const home = resolveHome(options.home);
  fs.mkdirSync(home, { recursive: true });
  const artifacts = openArtifactLocation(home, options.env);

  const dbPath = path.join(home, 'rise.db');
  const sqlite = new Database(dbPath);
  try {
    sqlite.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    enableWal(sqlite, dbPath);
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
    const db = drizzle({ client: sqlite, schema });
    applyMigrations(db);
    return { home, dbPath, artifacts, db, sqlite, close: () => sqlite.close() };
  } catch (e) {
    sqlite.close();
    throw e;
  }
}

/**
 * WAL is a property of the database file, set once by whoever opens it first. Setting it needs an
 * exclusive lock, and SQLite reports SQLITE_BUSY at once rather than through the busy handler when
 * processes open a new store together, so waiting is done here.
 */
function enableWal(sqlite: Database.Database, dbPath: string): void {
  const deadline = Date.now() + BUSY_TIMEOUT_MS;
  const sleep = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    let mode: unknown;
    try {
      mode = sqlite.pragma('journal_mode = WAL', { simple: true });
    } catch (e) {
      if ((e as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() > deadline) throw e;
      Atomics.wait(sleep, 0, 0, 10);
      continue;
    }
    if (mode !== 'wal') throw new Error(`${dbPath}: SQLite refused WAL mode (got ${String(mode)}); is it on a network filesystem?`);
    return;
  }
}

function applyMigrations(db: Db): void {
  try {
    migrate(db, { migrationsFolder: MIGRATIONS_DIR });
  } catch {
    // drizzle reads which migrations are applied before it takes the write lock, so when two processes
    // open a new store at once, the second replays the first's migrations and fails. Looking again sees
    // them applied; a real migration error fails again and is thrown from here.
    migrate(db, { migrationsFolder: MIGRATIONS_DIR });
  }
}

/**
 * Runs `fn` in one IMMEDIATE transaction. A deferred transaction that reads and then writes cannot wait for
 * the lock in WAL mode: if another connection committed in between, SQLite fails it with SQLITE_BUSY at
 * once, busy_timeout notwithstanding. Taking the write lock up front makes writers queue instead.
 */
export function writeTx<T>(store: Store, fn: (tx: Tx) => T): T {
  return store.db.transaction(fn, { behavior: 'immediate' });
}
