/**
 * Experiments (by name), their runs (one launch of a spec: status, times, Temporal workflow id), and each
 * run's arms with their merged configs.
 */

import { randomBytes } from 'node:crypto';
import { desc, eq, sql } from 'drizzle-orm';
import { writeTx, type Store } from './db.ts';
import { arms, experiments, runs, type RunStatus } from './schema.ts';

export type { RunStatus } from './schema.ts';

export type RunRecord = typeof runs.$inferSelect;

export interface NewRun {
  experiment: string;
  /** The spec as launched (JSON). */
  spec: unknown;
  /** The plan the run executes (src/plan/plan.ts `Plan`). */
  plan?: unknown;
  /** Defaults to `newRunId()`. */
  id?: string;
  workflowId?: string | null;
  /** Arm name → the arm's config merged onto the base. */
  arms?: Record<string, unknown>;
}

/** A readable, sortable id: UTC time of launch plus a random suffix, e.g. 20250301-142530-9f3a. */
export function newRunId(now: Date = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${stamp}-${randomBytes(2).toString('hex')}`;
}

/** Creates the run (and its experiment on first use) with its arms, status running. */
export function createRun(store: Store, run: NewRun): RunRecord {
  const id = run.id ?? newRunId();
  return writeTx(store, (tx) => {
    const now = new Date();
    if (tx.select({ id: runs.id }).from(runs).where(eq(runs.id, id)).get()) throw new Error(`run ${id} already exists`);
    tx.insert(experiments).values({ name: run.experiment, createdAt: now }).onConflictDoNothing().run();
    const row = tx
      .insert(runs)
      .values({ id, experiment: run.experiment, spec: run.spec, plan: run.plan ?? null, status: 'running', workflowId: run.workflowId ?? null, createdAt: now })
      .returning()
      .get();
    const armRows = Object.entries(run.arms ?? {}).map(([name, config]) => ({ runId: id, name, config }));
    if (armRows.length > 0) tx.insert(arms).values(armRows).run();
    return row;
  });
}

export function getRun(store: Store, id: string): RunRecord | undefined {
  return store.db.select().from(runs).where(eq(runs.id, id)).get();
}

/** Newest first; all experiments unless one is named. */
export function listRuns(store: Store, experiment?: string): RunRecord[] {
  return store.db
    .select()
    .from(runs)
    .where(experiment === undefined ? undefined : eq(runs.experiment, experiment))
    .orderBy(desc(runs.createdAt), desc(sql`rowid`))
    .all();
}

/**
 * Sets the status; a terminal one (done, failed, cancelled) stamps the finish time, and 'running' (a replay
 * resuming the run) clears it with any earlier error.
 */
export function setRunStatus(store: Store, id: string, status: RunStatus, error?: string): void {
  const finishedAt = status === 'running' ? null : new Date();
  const { changes } = store.db.update(runs).set({ status, finishedAt, error: error ?? null }).where(eq(runs.id, id)).run();
  if (changes === 0) throw new Error(`no run ${id}`);
}
