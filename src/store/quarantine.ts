/**
 * Problems a step quarantined: recorded with their error as the step gives up on them, read back by
 * status and reports. Only the step's current generation counts, as for the ledger.
 */

import { and, eq, inArray } from 'drizzle-orm';
import { writeTx, type Store } from './db.ts';
import { quarantined, steps } from './schema.ts';
import { currentGeneration, type WriteGuard } from './steps.ts';

export interface QuarantineRecord {
  problemId: string;
  attempts: number;
  errorClass: string;
  message: string;
}

/** Records one problem as quarantined by the step's running attempt (refused once the attempt lost the step). */
export async function quarantineProblem(store: Store, stepKey: string, record: QuarantineRecord, runId?: string, guard?: WriteGuard): Promise<void> {
  await writeTx(store, async (tx) => {
    const generation = await currentGeneration(tx, stepKey, 'quarantineProblem', guard);
    const row = { ...record, generation, runId: runId ?? null, createdAt: new Date() };
    await tx
      .insert(quarantined)
      .values({ stepKey, ...row })
      .onConflictDoUpdate({ target: [quarantined.stepKey, quarantined.generation, quarantined.problemId], set: row });
  });
}

/**
 * Forgets the current generation's quarantined problems (with `problemIds`, only those: a shard's): a new
 * attempt of the step tries them again.
 */
export async function clearQuarantine(store: Store, stepKey: string, guard?: WriteGuard, problemIds?: readonly string[]): Promise<void> {
  await writeTx(store, async (tx) => {
    const generation = await currentGeneration(tx, stepKey, 'clearQuarantine', guard);
    const only = problemIds === undefined ? undefined : inArray(quarantined.problemId, [...problemIds]);
    await tx.delete(quarantined).where(and(eq(quarantined.stepKey, stepKey), eq(quarantined.generation, generation), only));
  });
}

/** The problems each step quarantined in its current generation, by step key; steps with none are absent. */
export async function quarantinedProblems(store: Store, stepKeys: readonly string[]): Promise<Map<string, QuarantineRecord[]>> {
  const out = new Map<string, QuarantineRecord[]>();
  if (stepKeys.length === 0) return out;
  const rows = await store.db
    .select({ stepKey: quarantined.stepKey, problemId: quarantined.problemId, attempts: quarantined.attempts, errorClass: quarantined.errorClass, message: quarantined.message })
    .from(quarantined)
    .innerJoin(steps, and(eq(steps.key, quarantined.stepKey), eq(steps.generation, quarantined.generation)))
    .where(inArray(quarantined.stepKey, [...stepKeys]))
    .orderBy(quarantined.stepKey, quarantined.problemId);
  for (const { stepKey, ...record } of rows) out.set(stepKey, [...(out.get(stepKey) ?? []), record]);
  return out;
}
