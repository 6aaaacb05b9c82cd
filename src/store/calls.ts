/**
 * The call ledger of remote policies: every paid call with its cost, every response under the key of the
 * request it answers, and every time a step read a response instead of calling. A response is recorded
 * before it is used; the first recording of a key wins, so two steps that raced to the same request both
 * use the one answer stored.
 */

import { eq, inArray, sql } from 'drizzle-orm';
import { writeTx, type Store } from './db.ts';
import { remoteCalls, remoteReads, remoteResponses } from './schema.ts';

export interface RecordedResponse {
  key: string;
  text: string;
  finishReason: string;
  tokens: number;
  logprob: number;
}

export interface PaidCall {
  stepKey: string;
  runId: string | null;
  endpoint: string;
  model: string;
  promptTokens: number;
  completionTokens: number;
  /** In the order of the call's choices. */
  responses: readonly RecordedResponse[];
}

/** What one step's remote calls cost and saved. */
export interface CallStats {
  /** Calls the step paid for, over all its attempts and runs. */
  calls: number;
  promptTokens: number;
  completionTokens: number;
  /** Responses the step read from the ledger instead of calling. */
  served: number;
}

/** Keeps `IN (…)` lists under SQLite's limit of bound parameters. */
const KEYS_PER_QUERY = 2000;

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The recorded responses among `keys`, by key. */
export async function recordedResponses(store: Store, keys: readonly string[]): Promise<Map<string, RecordedResponse>> {
  const found = new Map<string, RecordedResponse>();
  for (const part of chunks([...new Set(keys)], KEYS_PER_QUERY)) {
    const rows = await store.db
      .select({ key: remoteResponses.key, text: remoteResponses.text, finishReason: remoteResponses.finishReason, tokens: remoteResponses.tokens, logprob: remoteResponses.logprob })
      .from(remoteResponses)
      .where(inArray(remoteResponses.key, part));
    for (const r of rows) found.set(r.key, r);
  }
  return found;
}

/**
 * Records a paid call and its responses in one transaction; returns the stored response of each of its
 * keys (another step's, for a key recorded first elsewhere).
 */
export async function recordCall(store: Store, call: PaidCall): Promise<Map<string, RecordedResponse>> {
  await writeTx(store, async (tx) => {
    const [{ id }] = await tx
      .insert(remoteCalls)
      .values({
        stepKey: call.stepKey,
        runId: call.runId,
        endpoint: call.endpoint,
        model: call.model,
        choices: call.responses.length,
        promptTokens: call.promptTokens,
        completionTokens: call.completionTokens,
        createdAt: new Date(),
      })
      .returning({ id: remoteCalls.id });
    await tx
      .insert(remoteResponses)
      .values(call.responses.map((r, choice) => ({ ...r, callId: id, choice })))
      .onConflictDoNothing();
  });
  return recordedResponses(store, call.responses.map((r) => r.key));
}

/** Notes that `stepKey` used these recorded responses instead of calling. */
export async function recordReads(store: Store, stepKey: string, runId: string | null, keys: readonly string[]): Promise<void> {
  if (keys.length === 0) return;
  await writeTx(store, async (tx) => {
    const readAt = new Date();
    for (const part of chunks(keys, KEYS_PER_QUERY / 4)) {
      await tx.insert(remoteReads).values(part.map((responseKey) => ({ stepKey, responseKey, runId, readAt })));
    }
  });
}

/** What `stepKey` has paid so far: calls, and tokens in and out together. */
export async function stepSpend(store: Store, stepKey: string): Promise<{ calls: number; tokens: number }> {
  const [row] = await store.db
    .select({ calls: sql<number>`count(*)`, tokens: sql<number>`coalesce(sum(${remoteCalls.promptTokens} + ${remoteCalls.completionTokens}), 0)` })
    .from(remoteCalls)
    .where(eq(remoteCalls.stepKey, stepKey));
  return { calls: row?.calls ?? 0, tokens: row?.tokens ?? 0 };
}

/** Cost and savings of each of `stepKeys` that used a remote policy (steps that never did are left out). */
export async function callStats(store: Store, stepKeys: readonly string[]): Promise<Map<string, CallStats>> {
  const stats = new Map<string, CallStats>();
  const entry = (key: string) => {
    let s = stats.get(key);
    if (s === undefined) stats.set(key, (s = { calls: 0, promptTokens: 0, completionTokens: 0, served: 0 }));
    return s;
  };
  for (const part of chunks([...new Set(stepKeys)], KEYS_PER_QUERY)) {
    const paid = await store.db
      .select({
        stepKey: remoteCalls.stepKey,
        calls: sql<number>`count(*)`,
        promptTokens: sql<number>`sum(${remoteCalls.promptTokens})`,
        completionTokens: sql<number>`sum(${remoteCalls.completionTokens})`,
      })
      .from(remoteCalls)
      .where(inArray(remoteCalls.stepKey, part))
      .groupBy(remoteCalls.stepKey);
    for (const p of paid) Object.assign(entry(p.stepKey), { calls: p.calls, promptTokens: p.promptTokens, completionTokens: p.completionTokens });
    const served = await store.db
      .select({ stepKey: remoteReads.stepKey, served: sql<number>`count(*)` })
      .from(remoteReads)
      .where(inArray(remoteReads.stepKey, part))
      .groupBy(remoteReads.stepKey);
    for (const s of served) entry(s.stepKey).served = s.served;
  }
  return stats;
}
