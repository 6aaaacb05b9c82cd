/**
 * Training examples a filter step produced, kept and dropped alike, with the rule that dropped each, so a
 * report can explain the size of every training set. Keyed by (step, generation, origin, problem, turn) and
 * inserted with ON CONFLICT DO NOTHING, so a retried step can record them again harmlessly.
 *
 * A row names its example; the text is in the ledger (the episode `origin` names, turn `turn`) and the
 * weight belongs to each train step that reads the filter (its weighting and tau), so neither is stored
 * here: `rise export --what examples` joins them (src/report/examples.ts).
 */

import { and, asc, eq, sql } from 'drizzle-orm';
import { writeTx, type Store } from './db.ts';
import { examples } from './schema.ts';
import { currentGeneration, type WriteGuard } from './steps.ts';

export interface ExampleRecord {
  problemId: string;
  turn: number;
  reward: number;
  /** Where the episode came from when data of several iterations is aggregated; '' by default. */
  origin?: string;
  /** The rule that dropped the example; absent or null when it was kept. */
  dropRule?: string | null;
}

export interface StoredExample {
  problemId: string;
  turn: number;
  reward: number;
  origin: string;
  dropped: boolean;
  dropRule: string | null;
}

/** Well under SQLite's 32,766 bound parameters at 8 columns a row. */
const ROWS_PER_INSERT = 2000;

/** Records examples in one transaction (the step must have been started); returns how many were new. */
export async function recordExamples(store: Store, stepKey: string, batch: readonly ExampleRecord[], guard?: WriteGuard): Promise<number> {
  if (batch.length === 0) return 0;
  return writeTx(store, async (tx) => {
    const generation = await currentGeneration(tx, stepKey, 'recordExamples', guard);
    const rows = batch.map((e) => ({
      stepKey,
      generation,
      origin: e.origin ?? '',
      problemId: e.problemId,
      turn: e.turn,
      reward: e.reward,
      dropped: e.dropRule != null,
      dropRule: e.dropRule ?? null,
    }));
    let added = 0;
    for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
      const inserted = await tx.insert(examples).values(rows.slice(i, i + ROWS_PER_INSERT)).onConflictDoNothing().returning({ turn: examples.turn });
      added += inserted.length;
    }
    return added;
  });
}

/** The step's examples in the order they were recorded. */
export async function readExamples(store: Store, stepKey: string): Promise<StoredExample[]> {
  const generation = await currentGeneration(store.db, stepKey, 'readExamples');
  return store.db
    .select({
      problemId: examples.problemId,
      turn: examples.turn,
      reward: examples.reward,
      origin: examples.origin,
      dropped: examples.dropped,
      dropRule: examples.dropRule,
    })
    .from(examples)
    .where(and(eq(examples.stepKey, stepKey), eq(examples.generation, generation)))
    .orderBy(asc(sql`rowid`));
}
