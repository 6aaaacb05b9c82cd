/**
 * The store's tables for PostgreSQL, derived from schema.ts rather than written twice: same table and
 * column names, and column types that hold the SQLite columns' encodings (JSON as text, times as
 * milliseconds in a bigint, booleans as booleans, which accept SQLite's 1 and 0). That is what lets the
 * store run the SQLite-typed queries on either backend (db.ts). drizzle-kit reads this file to write the
 * PostgreSQL migrations (`npx drizzle-kit generate --config drizzle.postgres.config.ts`).
 *
 * Every table also gets a `rowid` serial column, PostgreSQL's stand-in for SQLite's implicit rowid: the
 * store orders rows "as recorded" by it, and an upsert keeps it, as SQLite keeps a row's rowid.
 */

import { Column, SQL, getTableColumns, is, type AnyColumn } from 'drizzle-orm';
import { bigint, bigserial, boolean, check, doublePrecision, foreignKey, index, pgTable, primaryKey, text, uniqueIndex, type PgColumnBuilderBase, type PgTableWithColumns } from 'drizzle-orm/pg-core';
import { getTableConfig, type SQLiteColumn, type SQLiteTable } from 'drizzle-orm/sqlite-core';
import * as sqlite from './schema.ts';

type PgTable = PgTableWithColumns<any>;
type Untyped = any;

const converted = new Map<SQLiteTable, PgTable>();

function toPostgres(table: SQLiteTable): PgTable {
  const config = getTableConfig(table);
  const keyOf = new Map(Object.entries(getTableColumns(table)).map(([key, column]) => [column.name, key]));
  const columns: Record<string, PgColumnBuilderBase> = {};
  const hasSerialId = config.columns.some((c) => c.primary && (c as { autoIncrement?: boolean }).autoIncrement);
  for (const column of config.columns) columns[keyOf.get(column.name)!] = columnFor(column);
  if (!hasSerialId) columns.rowid = bigserial('rowid', { mode: 'number' }).notNull();

  const pgTableDef = pgTable(config.name, columns, (t) => {
    // The builders type columns per declared table; these tables are built from data, so here they are not.
    const col = (c: AnyColumn): Untyped => t[keyOf.get(c.name)!];
    const cols = (list: readonly unknown[]): Untyped => list.map((c) => col(c as AnyColumn));
    const target = (c: AnyColumn): Untyped => {
      const other = converted.get(c.table as SQLiteTable)!;
      return other[Object.entries(getTableColumns(c.table)).find(([, v]) => v === c)![0]];
    };
    return [
      ...config.primaryKeys.map((pk) => primaryKey({ columns: cols(pk.columns) })),
      ...config.indexes.map((ix) => (ix.config.unique ? uniqueIndex(ix.config.name) : index(ix.config.name)).on(...(cols(ix.config.columns) as [Untyped]))),
      ...config.foreignKeys.map((fk) => {
        const ref = fk.reference();
        return foreignKey({ columns: cols(ref.columns), foreignColumns: ref.foreignColumns.map(target) as Untyped });
      }),
      ...config.checks.map((ck) => check(ck.name, new SQL(ck.value.queryChunks.map((chunk) => (is(chunk, Column) ? col(chunk) : chunk))))),
    ];
  });
  converted.set(table, pgTableDef);
  return pgTableDef;
}

function columnFor(column: SQLiteColumn): PgColumnBuilderBase {
  const name = column.name;
  let builder;
  switch (column.columnType) {
    case 'SQLiteText':
    case 'SQLiteTextJson':
      builder = text(name);
      break;
    case 'SQLiteInteger':
      if (column.primary && (column as { autoIncrement?: boolean }).autoIncrement) return bigserial(name, { mode: 'number' }).primaryKey();
      builder = bigint(name, { mode: 'number' });
      break;
    case 'SQLiteTimestamp':
      builder = bigint(name, { mode: 'number' });
      break;
    case 'SQLiteBoolean':
      builder = boolean(name);
      break;
    case 'SQLiteReal':
      builder = doublePrecision(name);
      break;
    default:
      throw new Error(`schema.postgres.ts: no PostgreSQL type for ${column.table ? getTableConfig(column.table as SQLiteTable).name : '?'}.${name} (${column.columnType})`);
  }
  if (column.notNull) builder = builder.notNull();
  if (column.primary) builder = builder.primaryKey();
  if (column.default !== undefined && !is(column.default, SQL)) builder = builder.default(column.default as never);
  return builder;
}

/** In dependency order: a table comes after those its foreign keys name. */
export const experiments = toPostgres(sqlite.experiments);
export const runs = toPostgres(sqlite.runs);
export const arms = toPostgres(sqlite.arms);
export const steps = toPostgres(sqlite.steps);
export const stepInputs = toPostgres(sqlite.stepInputs);
export const stepResults = toPostgres(sqlite.stepResults);
export const artifacts = toPostgres(sqlite.artifacts);
export const episodes = toPostgres(sqlite.episodes);
export const turns = toPostgres(sqlite.turns);
export const samples = toPostgres(sqlite.samples);
export const examples = toPostgres(sqlite.examples);
export const metrics = toPostgres(sqlite.metrics);
export const remoteCalls = toPostgres(sqlite.remoteCalls);
export const remoteResponses = toPostgres(sqlite.remoteResponses);
export const remoteReads = toPostgres(sqlite.remoteReads);
export const quarantined = toPostgres(sqlite.quarantined);
export const stepShards = toPostgres(sqlite.stepShards);
