/**
 * What steps have cost, read back from the store: per finished step (its compute seconds, the samples
 * and tokens it drew into the ledger, the tokens it trained on), and per run (what a budget counts).
 * Sampled tokens come from the ledger, which has them for every step ever run; trained tokens from a
 * fitting step's outputs (`tokens`), which steps finished before they were recorded lack.
 */

import { sql } from 'drizzle-orm';
import { jsonNumber, rawRows, type Store } from './db.ts';

export interface StepCost {
  key: string;
  kind: string;
  /** Compute seconds as the step recorded them; null for outputs without them (not written by a step activity). */
  seconds: number | null;
  /** Samples drawn into the ledger, and their generated tokens (0 for steps that sample nothing). */
  samples: number;
  sampledTokens: number;
  /** Tokens trained on (examples' tokens × epochs); null when the step did not record them. */
  trainedTokens: number | null;
}

/** The cost of every step whose current generation is finished. */
export async function finishedStepCosts(store: Store): Promise<StepCost[]> {
  const rows = await rawRows<{ key: string; kind: string; seconds: number | null; samples: number | null; sampled: number | null; trained: number | null }>(
    store,
    sql`
      SELECT s.key AS key, s.kind AS kind,
        ${jsonNumber(store, sql`r.outputs`, 'seconds')} AS seconds,
        ${jsonNumber(store, sql`r.outputs`, 'tokens')} AS trained,
        (SELECT count(*) FROM samples sa JOIN episodes e ON e.id = sa.episode_id WHERE e.step_key = s.key AND e.generation = s.generation) AS samples,
        (SELECT sum(sa.tokens) FROM samples sa JOIN episodes e ON e.id = sa.episode_id WHERE e.step_key = s.key AND e.generation = s.generation) AS sampled
      FROM steps s JOIN step_results r ON r.step_key = s.key AND r.generation = s.generation`,
  );
  return rows.map((r) => ({ key: r.key, kind: r.kind, seconds: r.seconds, samples: Number(r.samples ?? 0), sampledTokens: Number(r.sampled ?? 0), trainedTokens: r.trained }));
}

export interface RunUsage {
  /** Compute seconds of the steps this run finished. */
  seconds: number;
  /** Tokens this run sampled (finished steps or not) and trained on (finished steps). */
  tokens: number;
}

/** What run `runId` has spent on the steps it computed; steps it found done cost it nothing. */
export async function runUsage(store: Store, runId: string): Promise<RunUsage> {
  const [fitted] = await rawRows<{ seconds: number | null; trained: number | null }>(
    store,
    sql`
    SELECT sum(${jsonNumber(store, sql`r.outputs`, 'seconds')}) AS seconds, sum(${jsonNumber(store, sql`r.outputs`, 'tokens')}) AS trained
    FROM steps s JOIN step_results r ON r.step_key = s.key AND r.generation = s.generation
    WHERE s.run_id = ${runId}`,
  );
  const [sampled] = await rawRows<{ tokens: number | null }>(
    store,
    sql`SELECT sum(sa.tokens) AS tokens FROM samples sa JOIN episodes e ON e.id = sa.episode_id WHERE e.run_id = ${runId}`,
  );
  return { seconds: Number(fitted?.seconds ?? 0), tokens: Number(fitted?.trained ?? 0) + Number(sampled?.tokens ?? 0) };
}
