/**
 * Opening the store: which database backs it, the connection settings, and the migrations applied at start.
 *
 * Two backends run the same queries. SQLite (a file under the home directory) is the embedded default: one
 * machine, any number of processes. PostgreSQL (`RISE_STORE=postgres://…`) is for workers on several
 * machines. Queries are written once with drizzle against the SQLite tables (schema.ts, the one schema);
 * the PostgreSQL tables are derived from them (schema.postgres.ts) with the same names and value encodings,
 * so the same table objects read and write either database. Everything here is async because PostgreSQL
 * is; on SQLite the statements still run synchronously inside each `await`.
 *
 * Concurrency: every read-then-write goes through `writeTx`, which serializes the writers as SQLite's
 * IMMEDIATE transactions do — on SQLite through the write lock, on PostgreSQL through SERIALIZABLE
 * transactions retried when the server aborts one for a conflict.
 */

import { AsyncLocalStorage } from 'node:async_hooks';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { sql, type SQL } from 'drizzle-orm';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { openArtifactLocation } from '../artifacts/config.ts';
import type { ArtifactLocation } from '../artifacts/location.ts';
import type { Env } from '../util/env.ts';
import { drizzle as drizzlePostgres } from 'drizzle-orm/node-postgres';
import { migrate as migratePostgres } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import * as schema from './schema.ts';

/**
 * How queries are typed: the SQLite flavour of drizzle, whichever backend runs them. Only the parts both
 * backends share are used — a query is awaited (never `.run()`, `.all()` or `.get()`), counts come from
 * `.returning()`, raw SQL goes through `rawRows`.
 */
export type Db = BetterSQLite3Database<typeof schema>;
/** A transaction's handle; the same query surface as the store's `db`. */
export type Tx = Db;

export type Dialect = 'sqlite' | 'postgres';

export interface Store {
  /** The store's root directory (`.rise` by default): artifacts, and the SQLite database when it is the backend. */
  readonly home: string;
  readonly dialect: Dialect;
  /** Where the database is, for messages: the SQLite file, or the PostgreSQL URL without its password. */
  readonly location: string;
  /** Where artifact bytes live (RISE_ARTIFACTS, else `<home>/artifacts`); the `artifacts` table indexes them. */
  readonly artifacts: ArtifactLocation;
  readonly db: Db;
  /** The raw SQLite connection, on SQLite stores only: pragmas, backups, diagnostics. */
  readonly sqlite?: Database.Database;
  close(): Promise<void>;
}

export interface StoreOptions {
  /** Root directory; defaults to $RISE_HOME, then `.rise` under the working directory. */
  home?: string;
  /** The database: `sqlite` (the default, a file under home) or a `postgres://` URL; defaults to $RISE_STORE. */
  database?: string;
  /** Where RISE_STORE and RISE_ARTIFACTS are read (default: process.env). */
  env?: Env;
}

/** Relative to this file rather than the working directory, so the CLI finds them from anywhere. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../drizzle/', import.meta.url));
export const POSTGRES_MIGRATIONS_DIR = fileURLToPath(new URL('../../drizzle/postgres/', import.meta.url));

/** A worker may hold the write lock for a large ledger batch; other processes wait this long before failing. */
const BUSY_TIMEOUT_MS = 30_000;

export function resolveHome(home?: string): string {
  return path.resolve(home ?? process.env.RISE_HOME ?? '.rise');
}

/** The store's database is misnamed or does not answer: the user fixes it from the message alone. */
export class StoreConfigError extends Error {
  override name = 'StoreConfigError';
}

/** The database a store option or $RISE_STORE names, checked before anything connects. */
export function parseDatabase(database: string | undefined): { dialect: 'sqlite' } | { dialect: 'postgres'; url: string } {
  if (database === undefined || database === '' || database === 'sqlite') return { dialect: 'sqlite' };
  if (/^postgres(ql)?:\/\//.test(database)) {
    try {
      new URL(database);
    } catch {
      throw new StoreConfigError(`RISE_STORE is not a valid PostgreSQL URL: ${redactUrl(database)}`);
    }
    return { dialect: 'postgres', url: database };
  }
  throw new StoreConfigError(`RISE_STORE must be "sqlite" or a postgres:// URL, not ${JSON.stringify(redactUrl(database))}`);
}

/** A database URL fit for messages and logs: its password replaced. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:/@]*):[^@]*@/i, '$1:***@');
}

/**
 * Whether there is a store to read: a PostgreSQL store always is (opening it creates its tables), a SQLite
 * one once a run has created its file — reading commands must not create a `.rise/` folder as a side effect.
 */
export function storeExists(home?: string): boolean {
  return parseDatabase(process.env.RISE_STORE).dialect === 'postgres' || fs.existsSync(path.join(resolveHome(home), 'rise.db'));
}

const backends = new WeakMap<Store, Backend>();

interface Backend {
  /** Runs `fn` in one write transaction; `fn` may run more than once when the database asks for a retry. */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  rawRows<T>(query: SQL): Promise<T[]>;
}

export async function openStore(options: StoreOptions = {}): Promise<Store> {
  const home = resolveHome(options.home);
  fs.mkdirSync(home, { recursive: true });
  const env = options.env ?? process.env;
  const artifacts = openArtifactLocation(home, env);
  const database = parseDatabase(options.database ?? env.RISE_STORE);
  return database.dialect === 'sqlite' ? openSqlite(home, artifacts) : openPostgres(home, artifacts, database.url);
}

function openSqlite(home: string, artifacts: ArtifactLocation): Store {
  const dbPath = path.join(home, 'rise.db');
  const sqlite = new Database(dbPath);
  try {
    sqlite.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    enableWal(sqlite, dbPath);
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
    const db = drizzle({ client: sqlite, schema });
    applyMigrations(db);
    const store: Store = { home, dialect: 'sqlite', location: dbPath, artifacts, db, sqlite, close: async () => void sqlite.close() };
    backends.set(store, sqliteBackend(store, sqlite, dbPath));
    return store;
  } catch (e) {
    sqlite.close();
    throw e;
  }
}

/**
 * Write transactions queue per database file within the process. A transaction's body awaits between
 * statements, so without the queue another writer on the same connection would join the open transaction,
 * and one on another connection to the same file (a second Store of the same home: the CLI and its
 * in-process worker) would block the whole process in SQLite's busy wait while the lock's holder cannot
 * run to release it. IMMEDIATE takes the write lock up front: a deferred transaction that reads and then
 * writes cannot wait for the lock in WAL mode (SQLite fails it with SQLITE_BUSY at once if another process
 * committed in between), while an immediate one waits its turn — other processes still queue on the lock.
 */
const writers = new Map<string, Promise<unknown>>();

function sqliteBackend(store: Store, sqlite: Database.Database, dbPath: string): Backend {
  return {
    transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
      const turn = (writers.get(dbPath) ?? Promise.resolve()).then(async () => {
        sqlite.prepare('BEGIN IMMEDIATE').run();
        try {
          const result = await fn(store.db);
          sqlite.prepare('COMMIT').run();
          return result;
        } catch (e) {
          if (sqlite.inTransaction) sqlite.prepare('ROLLBACK').run();
          throw e;
        }
      });
      writers.set(dbPath, turn.catch(() => undefined));
      return turn;
    },
    rawRows: async <T>(query: SQL) => store.db.all<T>(query),
  };
}

/**
 * PostgreSQL returns 64-bit integers and numerics as strings (they can exceed a double); the store's
 * counts, sums and millisecond times fit a double, and the SQLite columns they decode through expect
 * numbers. Set on pg's global parsers because drizzle passes its own per-query type table, which falls
 * back to them (a pool's `types` option would be overridden).
 */
function parseNumbersAsNumbers(): void {
  pg.types.setTypeParser(pg.types.builtins.INT8, (value: string) => Number(value));
  pg.types.setTypeParser(pg.types.builtins.NUMERIC, (value: string) => Number(value));
}

/** Serialization failures and deadlocks: the server aborted the transaction so that a retry can succeed. */
const RETRYABLE = new Set(['40001', '40P01']);
const MAX_TX_ATTEMPTS = 20;

/** Any fixed number: the advisory lock that keeps two processes from migrating one database at once. */
const MIGRATION_LOCK = 0x72697365;

async function openPostgres(home: string, artifacts: ArtifactLocation, url: string): Promise<Store> {
  const location = redactUrl(url);
  parseNumbersAsNumbers();
  const pool = new pg.Pool({ connectionString: url });
  // An idle client's error (the server restarted) must not kill the process; the next query reconnects.
  pool.on('error', () => undefined);
  try {
    const client = await pool.connect().catch((e: unknown) => {
      throw new StoreConfigError(`cannot connect to the PostgreSQL store at ${location}: ${(e as Error).message}`);
    });
    try {
      await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
      await migratePostgres(drizzlePostgres({ client }), { migrationsFolder: POSTGRES_MIGRATIONS_DIR });
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
      client.release();
    }
  } catch (e) {
    await pool.end();
    throw e;
  }
  const pgDb = drizzlePostgres({ client: pool, schema });
  // The SQLite-typed table objects carry the encodings both backends share (see the file comment).
  const db = pgDb as unknown as Db;
  const store: Store = { home, dialect: 'postgres', location, artifacts, db, close: () => pool.end() };
  backends.set(store, {
    async transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
      for (let attempt = 1; ; attempt++) {
        try {
          return await pgDb.transaction((tx) => fn(tx as unknown as Tx), { isolationLevel: 'serializable' });
        } catch (e) {
          if (!RETRYABLE.has(pgCode(e) ?? '') || attempt >= MAX_TX_ATTEMPTS) throw databaseError(e);
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * attempt));
        }
      }
    },
    async rawRows<T>(query: SQL): Promise<T[]> {
      try {
        return (await pgDb.execute(query)).rows as T[];
      } catch (e) {
        throw databaseError(e);
      }
    },
  });
  return store;
}

/**
 * drizzle reports a failed statement as "Failed query: <the SQL and its parameters>" with the server's
 * error as its cause; the server's message (which constraint, which table) is the one that says what went
 * wrong, and the parameters can hold whole rollouts, so the server's error is what callers get.
 */
function databaseError(e: unknown): unknown {
  return e instanceof Error && pgCode(e) !== undefined && typeof (e.cause as { code?: unknown } | undefined)?.code === 'string' ? e.cause : e;
}

/** The SQLSTATE of a PostgreSQL error, which drizzle may wrap in its own error as `cause`. */
function pgCode(e: unknown): string | undefined {
  for (let err = e; err instanceof Error; err = err.cause) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
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


function backendOf(store: Store): Backend {
  const backend = backends.get(store);
  if (backend === undefined) throw new Error('not a store opened by openStore');
  return backend;
}

/** The transaction the current async context runs in, per store, so a nested writeTx joins it. */
const openTx = new AsyncLocalStorage<{ store: Store; tx: Tx }>();

/**
 * Runs `fn` as one write transaction: it sees a consistent database and its writes land together or not
 * at all. On PostgreSQL `fn` may run again after a serialization failure, so it must not act outside the
 * database. Called inside another writeTx of the same store, it joins that transaction.
 */
export function writeTx<T>(store: Store, fn: (tx: Tx) => Promise<T>): Promise<T> {
  const outer = openTx.getStore();
  if (outer?.store === store) return fn(outer.tx);
  return backendOf(store).transaction((tx) => openTx.run({ store, tx }, () => fn(tx)));
}

/** Rows of a raw query (recursive CTEs and the like), on either backend. */
export function rawRows<T>(store: Store, query: SQL): Promise<T[]> {
  return backendOf(store).rawRows<T>(query);
}

/** A number inside a JSON text column, in the backend's SQL: `json_extract` on SQLite, `->>` on PostgreSQL. */
export function jsonNumber(store: Store, column: SQL, field: string): SQL {
  return store.dialect === 'sqlite' ? sql`json_extract(${column}, ${'$.' + field})` : sql`((${column})::json ->> ${field})::double precision`;
}
