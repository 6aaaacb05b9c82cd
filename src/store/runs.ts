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
export function createRun(store: Store, run: NewRun): Promise<RunRecord> {
  const id = run.id ?? newRunId();
  return writeTx(store, async (tx) => {
    const now = new Date();
    if ((await tx.select({ id: runs.id }).from(runs).where(eq(runs.id, id))).length > 0) throw new Error(`run ${id} already exists`);
    await tx.insert(experiments).values({ name: run.experiment, createdAt: now }).onConflictDoNothing();
    const [row] = await tx
      .insert(runs)
      .values({ id, experiment: run.experiment, spec: run.spec, plan: run.plan ?? null, status: 'running', workflowId: run.workflowId ?? null, createdAt: now })
      .returning();
    const armRows = Object.entries(run.arms ?? {}).map(([name, config]) => ({ runId: id, name, config }));
    if (armRows.length > 0) await tx.insert(arms).values(armRows);
    return row!;
  });
}

export async function getRun(store: Store, id: string): Promise<RunRecord | undefined> {
  const [row] = await store.db.select().from(runs).where(eq(runs.id, id));
  return row;
}

/** Newest first; all experiments unless one is named. */
export function listRuns(store: Store, experiment?: string): Promise<RunRecord[]> {
  return store.db
    .select()
    .from(runs)
    .where(experiment === undefined ? undefined : eq(runs.experiment, experiment))
    .orderBy(desc(runs.createdAt), desc(sql`rowid`));
}

/**
 * Sets the status; a terminal one (done, failed, cancelled) stamps the finish time, and 'running' (a replay
 * resuming the run) clears it with any earlier error.
 */
export async function setRunStatus(store: Store, id: string, status: RunStatus, error?: string): Promise<void> {
  const finishedAt = status === 'running' ? null : new Date();
  const updated = await writeTx(store, (tx) => tx.update(runs).set({ status, finishedAt, error: error ?? null }).where(eq(runs.id, id)).returning({ id: runs.id }));
  if (updated.length === 0) throw new Error(`no run ${id}`);
}
