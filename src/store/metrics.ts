/**
 * Metric values per run, arm, iteration and evaluation set (m1@t1, m5@t1, m1@t5, p1@t5, …). Upserted, so
 * a recomputed evaluation (retry, replay) replaces its numbers rather than adding rows.
 */

import { and, asc, eq, sql, type SQL } from 'drizzle-orm';
import { writeTx, type Store } from './db.ts';
import { metrics } from './schema.ts';

export interface MetricRecord {
  runId: string;
  arm: string;
  /** 0 for the boosted model before any RISE iteration. */
  iteration: number;
  /** '' (the default) for metrics not tied to an evaluation set. */
  evalSet?: string;
  name: string;
  /** Samples or turns the metric aggregates; 1 by default. */
  k?: number;
  value: number;
  /** Counts behind the value (correct, problems, ties, unparsable …), as JSON. */
  details?: unknown;
  /** The step that computed it. */
  stepKey?: string | null;
}

export interface StoredMetric {
  runId: string;
  arm: string;
  iteration: number;
  evalSet: string;
  name: string;
  k: number;
  value: number;
  details: unknown;
  stepKey: string | null;
  recordedAt: Date;
}

export interface MetricFilter {
  runId: string;
  arm?: string;
  iteration?: number;
  evalSet?: string;
}

/** Inserts or replaces the rows, all in one transaction. */
export async function upsertMetrics(store: Store, rows: readonly MetricRecord[]): Promise<void> {
  if (rows.length === 0) return;
  await writeTx(store, async (tx) => {
    const recordedAt = new Date();
    for (const r of rows) {
      const values = {
        runId: r.runId,
        arm: r.arm,
        iteration: r.iteration,
        evalSet: r.evalSet ?? '',
        name: r.name,
        k: r.k ?? 1,
        value: r.value,
        details: r.details ?? null,
        stepKey: r.stepKey ?? null,
        recordedAt,
      };
      await tx
        .insert(metrics)
        .values(values)
        .onConflictDoUpdate({
          target: [metrics.runId, metrics.arm, metrics.iteration, metrics.evalSet, metrics.name, metrics.k],
          set: { value: values.value, details: values.details, stepKey: values.stepKey, recordedAt },
        });
    }
  });
}

/**
 * A run's metrics, by arm, iteration and evaluation set, each group in the order its metrics were first
 * recorded (an update keeps the row in place).
 */
export function readMetrics(store: Store, filter: MetricFilter): Promise<StoredMetric[]> {
  const conditions: SQL[] = [eq(metrics.runId, filter.runId)];
  if (filter.arm !== undefined) conditions.push(eq(metrics.arm, filter.arm));
  if (filter.iteration !== undefined) conditions.push(eq(metrics.iteration, filter.iteration));
  if (filter.evalSet !== undefined) conditions.push(eq(metrics.evalSet, filter.evalSet));
  return store.db
    .select()
    .from(metrics)
    .where(and(...conditions))
    .orderBy(asc(metrics.arm), asc(metrics.iteration), asc(metrics.evalSet), asc(sql`rowid`));
}
