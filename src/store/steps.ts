/**
 * Step lifecycle, the cache behind every activity: look the key up; if done, return the stored outputs;
 * otherwise start, work, and finish (or fail).
 *
 * Done means one thing: a result row exists for the step's current generation. `finishStep` writes it last,
 * in the transaction that closes the attempt, so a crash anywhere before leaves a step that is running or
 * failed, never one mistaken for finished. `markStale` (replay) bumps the generation instead of deleting, so
 * the old result, ledger and examples stay as history while the step counts as not done.
 */

import { and, eq, inArray, sql } from 'drizzle-orm';
import { rawRows, writeTx, type Db, type Store, type Tx } from './db.ts';
import { stepInputs, stepResults, stepShards, steps } from './schema.ts';


/** A step as the plan describes it; `inputs` are the keys of the steps it reads. */
/**
 * Where a step stands, in the store and everywhere it is shown: `pending` (never attempted, or marked
 * stale by a replay), `running` (an attempt holds it), `done` (a result is stored), `failed` (the last
 * attempt failed; a rerun retries it).
 */
export type StepState = 'pending' | 'running' | 'done' | 'failed';

export interface PlannedStep {
  key: string;
  kind: string;
  params: unknown;
  inputs: readonly string[];
}

export interface StepAttempt {
  key: string;
  /** 1 for the first attempt, counting across generations. */
  attempt: number;
  generation: number;
}

export interface StepInfo {
  key: string;
  kind: string;
  params: unknown;
  inputs: string[];
  status: StepState;
  /** How many times replay has marked the step stale. */
  generation: number;
  attempts: number;
  /** The run that made the last attempt. */
  runId: string | null;
  startedAt: Date | null;
  endedAt: Date | null;
  /** The last failure's message, while the step is failed. */
  error: string | null;
  /** The stored outputs; present exactly when `status` is 'done'. */
  outputs?: unknown;
  finishedAt?: Date;
}

/** Records an attempt: the step (and its input edges) on first sight, status running with its start time. */
export function startStep(store: Store, step: PlannedStep, runId?: string): Promise<StepAttempt> {
  return writeTx(store, (tx) => beginAttempt(tx, step, runId ?? null, null));
}

export interface Lease {
  /** Who computes the step: one attempt of one activity. */
  owner: string;
  /** How long the claim holds without `renewLease`. */
  ms: number;
  /**
   * Owners that start with this are earlier attempts of the same activity. Temporal starts a retry only
   * once it has given the previous attempt up, so the retry takes the step over at once.
   */
  family?: string;
}

/**
 * Who may write a step's rows: the attempt holding its lease, in the generation it started in; or, with
 * `shard`, the attempt holding that shard of the step (src/store/shards.ts).
 */
export interface WriteGuard {
  owner: string;
  generation: number;
  shard?: { start: number; end: number };
}

/**
 * The attempt no longer owns the step: another attempt took it over, or replay marked it stale. Its
 * writes are refused so they cannot land in someone else's result.
 */
export class LostStepError extends Error {
  override name = 'LostStepError';
}

/** An input step has no result (it was marked stale, or never ran): the step cannot start yet. */
export class InputNotReadyError extends Error {
  override name = 'InputNotReadyError';
}

export type Claim =
  | { kind: 'done'; outputs: unknown }
  | { kind: 'claimed'; attempt: StepAttempt }
  | { kind: 'busy'; owner: string; until: Date };

/**
 * The atomic start of a shared step: its stored outputs if it is done; `busy` while another owner's
 * lease holds (an arm sharing the step is computing it); otherwise a new attempt under `lease`. A lapsed
 * lease means its holder died, so the step is taken over and resumes from what the holder recorded.
 */
export function claimStep(store: Store, step: PlannedStep, lease: Lease, runId?: string): Promise<Claim> {
  return writeTx(store, async (tx): Promise<Claim> => {
    const [row] = await tx
      .select({ state: steps.state, owner: steps.leaseOwner, until: steps.leaseUntil, outputs: stepResults.outputs })
      .from(steps)
      .leftJoin(stepResults, and(eq(stepResults.stepKey, steps.key), eq(stepResults.generation, steps.generation)))
      .where(eq(steps.key, step.key));
    if (row?.outputs !== undefined && row.outputs !== null) return { kind: 'done', outputs: row.outputs };
    const held = row?.state === 'running' && row.owner !== null && row.owner !== lease.owner && row.until !== null && row.until.getTime() > Date.now();
    const ours = lease.family !== undefined && row?.owner?.startsWith(lease.family) === true;
    if (held && !ours) return { kind: 'busy', owner: row!.owner!, until: row!.until! };
    await requireInputs(tx, step);
    return { kind: 'claimed', attempt: await beginAttempt(tx, step, runId ?? null, lease) };
  });
}

/** Extends the owner's lease; false when the owner no longer holds the step (taken over, or replayed). */
export async function renewLease(store: Store, key: string, lease: Lease): Promise<boolean> {
  const renewed = await writeTx(store, (tx) =>
    tx
      .update(steps)
      .set({ leaseUntil: new Date(Date.now() + lease.ms) })
      .where(and(eq(steps.key, key), eq(steps.leaseOwner, lease.owner), eq(steps.state, 'running')))
      .returning({ key: steps.key }),
  );
  return renewed.length > 0;
}

/** Throws InputNotReadyError unless every input of the step has a result. */
export async function requireInputs(tx: Tx, step: PlannedStep): Promise<void> {
  const missing: string[] = [];
  for (const input of step.inputs) if (!(await hasResult(tx, input))) missing.push(input);
  if (missing.length > 0) throw new InputNotReadyError(`step ${step.key.slice(0, 12)} (${step.kind}): input step(s) ${missing.map((k) => k.slice(0, 12)).join(', ')} have no result`);
}

export async function hasResult(tx: Tx, key: string): Promise<boolean> {
  const rows = await tx
    .select({ key: steps.key })
    .from(steps)
    .innerJoin(stepResults, and(eq(stepResults.stepKey, steps.key), eq(stepResults.generation, steps.generation)))
    .where(eq(steps.key, key));
  return rows.length > 0;
}

export async function beginAttempt(tx: Tx, step: PlannedStep, runId: string | null, lease: Lease | null): Promise<StepAttempt> {
  const now = new Date();
  const leaseColumns = { leaseOwner: lease?.owner ?? null, leaseUntil: lease ? new Date(now.getTime() + lease.ms) : null };
  const [existing] = await tx
    .select({ kind: steps.kind, generation: steps.generation, attempts: steps.attempts })
    .from(steps)
    .where(eq(steps.key, step.key));
  if (!existing) {
    await tx.insert(steps).values({ key: step.key, kind: step.kind, params: step.params, state: 'running', attempts: 1, runId, startedAt: now, ...leaseColumns });
    if (step.inputs.length > 0) {
      await tx.insert(stepInputs).values(step.inputs.map((inputKey, position) => ({ stepKey: step.key, position, inputKey })));
    }
    return { key: step.key, attempt: 1, generation: 0 };
  }
  if (existing.kind !== step.kind) {
    throw new Error(`step ${step.key} is recorded as a ${existing.kind} step, not ${step.kind}: two different steps share one key`);
  }
  const attempt = existing.attempts + 1;
  await tx
    .update(steps)
    .set({ state: 'running', attempts: attempt, runId, startedAt: now, endedAt: null, error: null, ...leaseColumns })
    .where(eq(steps.key, step.key));
  return { key: step.key, attempt, generation: existing.generation };
}

/**
 * Closes the attempt and stores `outputs` (a small JSON value: artifact refs, counts). When two attempts
 * race on a shared step, the first result stays and both callers get it back, so they go on with the same
 * refs.
 */
export function finishStep(store: Store, key: string, outputs: unknown, guard?: WriteGuard): Promise<unknown> {
  return writeTx(store, async (tx) => {
    const now = new Date();
    const generation = await currentGeneration(tx, key, 'finishStep', guard);
    await tx.update(steps).set({ state: 'finished', endedAt: now, error: null, leaseOwner: null, leaseUntil: null }).where(eq(steps.key, key));
    // Last, so that nothing of the step is missing once it counts as done.
    await tx.insert(stepResults).values({ stepKey: key, generation, outputs, finishedAt: now }).onConflictDoNothing();
    const [stored] = await tx
      .select({ outputs: stepResults.outputs })
      .from(stepResults)
      .where(and(eq(stepResults.stepKey, key), eq(stepResults.generation, generation)));
    return stored!.outputs;
  });
}

/** Records the failure; with a guard, only while the attempt still owns the step (else its owner's state stands). */
export async function failStep(store: Store, key: string, error: unknown, guard?: WriteGuard): Promise<void> {
  const message = error instanceof Error ? error.message : String(error);
  await writeTx(store, async (tx) => {
    try {
      await currentGeneration(tx, key, 'failStep', guard);
    } catch (err) {
      if (err instanceof LostStepError) return;
      throw err;
    }
    await tx.update(steps).set({ state: 'failed', endedAt: new Date(), error: message, leaseOwner: null, leaseUntil: null }).where(eq(steps.key, key));
  });
}

export async function getStep(store: Store, key: string): Promise<StepInfo | undefined> {
  const [row] = await store.db
    .select({ step: steps, result: { outputs: stepResults.outputs, finishedAt: stepResults.finishedAt } })
    .from(steps)
    .leftJoin(stepResults, and(eq(stepResults.stepKey, steps.key), eq(stepResults.generation, steps.generation)))
    .where(eq(steps.key, key));
  if (!row) return undefined;
  const { step, result } = row;
  const inputRows = await store.db.select({ key: stepInputs.inputKey }).from(stepInputs).where(eq(stepInputs.stepKey, key)).orderBy(stepInputs.position);
  const inputs = inputRows.map((r) => r.key);
  const info: StepInfo = {
    key,
    kind: step.kind,
    params: step.params,
    inputs,
    status: statusOf(step.state, result !== null),
    generation: step.generation,
    attempts: step.attempts,
    runId: step.runId,
    startedAt: step.startedAt,
    endedAt: step.endedAt,
    error: step.state === 'failed' ? step.error : null,
  };
  if (result) {
    info.outputs = result.outputs;
    info.finishedAt = result.finishedAt;
  }
  return info;
}

export async function stepStatus(store: Store, key: string): Promise<StepState> {
  const [row] = await store.db
    .select({ state: steps.state, result: stepResults.generation })
    .from(steps)
    .leftJoin(stepResults, and(eq(stepResults.stepKey, steps.key), eq(stepResults.generation, steps.generation)))
    .where(eq(steps.key, key));
  return row ? statusOf(row.state, row.result !== null) : 'pending';
}

/** The status of each of `keys` (pending for keys never started), in one query per few thousand keys. */
export async function stepStatuses(store: Store, keys: readonly string[]): Promise<Map<string, StepState>> {
  const statuses = new Map<string, StepState>(keys.map((key) => [key, 'pending']));
  const unique = [...statuses.keys()];
  for (let i = 0; i < unique.length; i += KEYS_PER_QUERY) {
    const rows = await store.db
      .select({ key: steps.key, state: steps.state, result: stepResults.generation })
      .from(steps)
      .leftJoin(stepResults, and(eq(stepResults.stepKey, steps.key), eq(stepResults.generation, steps.generation)))
      .where(inArray(steps.key, unique.slice(i, i + KEYS_PER_QUERY)));
    for (const row of rows) statuses.set(row.key, statusOf(row.state, row.result !== null));
  }
  return statuses;
}

/** Keeps `IN (…)` lists under SQLite's limit of bound parameters. */
const KEYS_PER_QUERY = 2000;

/**
 * Makes steps count as not done (replay), keeping their history. Returns the keys that were recorded; keys
 * never started need nothing.
 */
export async function markStale(store: Store, keys: readonly string[]): Promise<string[]> {
  if (keys.length === 0) return [];
  const rows = await writeTx(store, (tx) =>
    tx
      .update(steps)
      .set({ generation: sql`${steps.generation} + 1`, state: 'stale', leaseOwner: null, leaseUntil: null })
      .where(inArray(steps.key, [...new Set(keys)]))
      .returning({ key: steps.key }),
  );
  return rows.map((r) => r.key);
}

/** Every recorded step downstream of `keys` (their inputs' closure, reversed), without `keys` themselves. */
export async function dependents(store: Store, keys: readonly string[]): Promise<string[]> {
  if (keys.length === 0) return [];
  const from = sql.join(
    keys.map((k) => sql`${k}`),
    sql`, `,
  );
  const rows = await rawRows<{ key: string }>(store, sql`
    WITH RECURSIVE down(key) AS (
      SELECT step_key FROM step_inputs WHERE input_key IN (${from})
      UNION
      SELECT step_inputs.step_key FROM step_inputs JOIN down ON step_inputs.input_key = down.key
    )
    SELECT key FROM down`);
  const given = new Set(keys);
  return rows.map((r) => r.key).filter((k) => !given.has(k));
}

function statusOf(state: (typeof steps.$inferSelect)['state'], hasResult: boolean): StepState {
  if (hasResult) return 'done';
  if (state === 'running' || state === 'failed') return state;
  return 'pending';
}

/**
 * The generation that rows written for the step now belong to; the step must have been started. With a
 * guard, also that the writer still owns the step in the generation it started in (LostStepError if not).
 */
export async function currentGeneration(tx: Db | Tx, key: string, caller: string, guard?: WriteGuard): Promise<number> {
  const [row] = await tx.select({ generation: steps.generation, owner: steps.leaseOwner, state: steps.state }).from(steps).where(eq(steps.key, key));
  if (!row) throw new Error(`${caller}: step ${key} was never started`);
  if (guard !== undefined && (row.generation !== guard.generation || !(guard.shard === undefined ? row.owner === guard.owner && row.state === 'running' : await holdsShard(tx, key, guard)))) {
    throw new LostStepError(`${caller}: step ${key.slice(0, 12)} is no longer this attempt's (taken over by another, or marked stale by replay)`);
  }
  return row.generation;
}

async function holdsShard(tx: Db | Tx, key: string, guard: WriteGuard): Promise<boolean> {
  const { start, end } = guard.shard!;
  const [row] = await tx
    .select({ owner: stepShards.leaseOwner, state: stepShards.state })
    .from(stepShards)
    .where(and(eq(stepShards.stepKey, key), eq(stepShards.generation, guard.generation), eq(stepShards.problemStart, start), eq(stepShards.problemEnd, end)));
  return row?.owner === guard.owner && row.state === 'running';
}
