/**
 * Shards of a step (src/steps/shards.ts): ranges of its problems computed as activities of their own,
 * possibly on different workers at once, all recording into the step's ledger.
 *
 * The step stays the unit of done: its result row is written last, by the activity that assembles the
 * step once every shard is recorded. A shard is claimed like a step is (a lease renewed while it works,
 * taken over once it lapses, at once by a retry of the same activity), and its ledger writes carry a
 * guard naming the shard, so a superseded attempt cannot write into a range someone else now holds. A
 * shard resumes from the ledger: what its dead predecessor recorded is skipped, and the ledger's natural
 * keys keep every sample recorded once.
 */

import { and, asc, eq } from 'drizzle-orm';
import { writeTx, type Store } from './db.ts';
import { stepResults, stepShards, steps } from './schema.ts';
import { beginAttempt, currentGeneration, LostStepError, requireInputs, type Lease, type PlannedStep, type WriteGuard } from './steps.ts';

export interface ShardRef {
  shard: number;
  start: number;
  end: number;
}

export type ShardClaim =
  | { kind: 'done' }
  | { kind: 'recorded' }
  | { kind: 'claimed'; guard: WriteGuard; attempt: number }
  | { kind: 'busy'; owner: string; worker: string; until: Date };

export type ShardState = (typeof stepShards.$inferSelect)['state'];

export interface ShardInfo extends ShardRef {
  state: ShardState;
  attempts: number;
  worker: string;
  resumed: number | null;
  recorded: number | null;
  startedAt: Date;
  endedAt: Date | null;
  error: string | null;
}

/**
 * Opens a step for its shards: `done` when it has a result (nothing to compute); otherwise the step is
 * recorded as running (a new attempt, unless one is already running: another arm's shards or its
 * assembling activity) so shards can write under its current generation. Its inputs must be done.
 */
export async function openShardedStep(store: Store, step: PlannedStep, runId?: string): Promise<'done' | 'open'> {
  return writeTx(store, async (tx) => {
    const [row] = await tx
      .select({ state: steps.state, result: stepResults.generation })
      .from(steps)
      .leftJoin(stepResults, and(eq(stepResults.stepKey, steps.key), eq(stepResults.generation, steps.generation)))
      .where(eq(steps.key, step.key));
    if (row !== undefined && row.result !== null) return 'done';
    await requireInputs(tx, step);
    // A running step keeps its lease: its holder may be writing now.
    if (row?.state !== 'running') await beginAttempt(tx, step, runId ?? null, null);
    return 'open';
  });
}

/**
 * The atomic start of one shard of an opened step: `done` when the step has its result, `recorded` when
 * the shard has, `busy` while another owner's lease on it holds, else claimed under `lease` by `worker`.
 */
export async function claimShard(store: Store, key: string, shard: ShardRef, lease: Lease, worker: string, runId?: string): Promise<ShardClaim> {
  return writeTx(store, async (tx): Promise<ShardClaim> => {
    const [step] = await tx
      .select({ generation: steps.generation, result: stepResults.generation })
      .from(steps)
      .leftJoin(stepResults, and(eq(stepResults.stepKey, steps.key), eq(stepResults.generation, steps.generation)))
      .where(eq(steps.key, key));
    if (step === undefined) throw new Error(`claimShard: step ${key.slice(0, 12)} was never opened`);
    if (step.result !== null) return { kind: 'done' };
    const { generation } = step;
    const where = and(eq(stepShards.stepKey, key), eq(stepShards.generation, generation), eq(stepShards.problemStart, shard.start), eq(stepShards.problemEnd, shard.end));
    const [row] = await tx.select().from(stepShards).where(where);
    if (row?.state === 'recorded') return { kind: 'recorded' };
    const now = new Date();
    const held = row?.state === 'running' && row.leaseOwner !== null && row.leaseOwner !== lease.owner && row.leaseUntil !== null && row.leaseUntil.getTime() > now.getTime();
    const ours = lease.family !== undefined && row?.leaseOwner?.startsWith(lease.family) === true;
    if (held && !ours) return { kind: 'busy', owner: row!.leaseOwner!, worker: row!.worker, until: row!.leaseUntil! };
    const attempt = (row?.attempts ?? 0) + 1;
    const claim = { shard: shard.shard, state: 'running' as const, attempts: attempt, worker, leaseOwner: lease.owner, leaseUntil: new Date(now.getTime() + lease.ms), resumed: null, recorded: null, runId: runId ?? null, startedAt: now, endedAt: null, error: null };
    if (row === undefined) await tx.insert(stepShards).values({ stepKey: key, generation, problemStart: shard.start, problemEnd: shard.end, ...claim });
    else await tx.update(stepShards).set(claim).where(where);
    return { kind: 'claimed', attempt, guard: { owner: lease.owner, generation, shard: { start: shard.start, end: shard.end } } };
  });
}

function shardWhere(key: string, guard: WriteGuard) {
  if (guard.shard === undefined) throw new Error('a shard guard names its shard');
  return and(
    eq(stepShards.stepKey, key),
    eq(stepShards.generation, guard.generation),
    eq(stepShards.problemStart, guard.shard.start),
    eq(stepShards.problemEnd, guard.shard.end),
    eq(stepShards.leaseOwner, guard.owner),
    eq(stepShards.state, 'running'),
  );
}

/** Extends the shard's lease; false when its attempt no longer holds it (taken over, or the step replayed). */
export async function renewShardLease(store: Store, key: string, guard: WriteGuard, ms: number): Promise<boolean> {
  return writeTx(store, async (tx) => {
    const [step] = await tx.select({ generation: steps.generation }).from(steps).where(eq(steps.key, key));
    if (step?.generation !== guard.generation) return false;
    const renewed = await tx.update(stepShards).set({ leaseUntil: new Date(Date.now() + ms) }).where(shardWhere(key, guard)).returning({ shard: stepShards.shard });
    return renewed.length > 0;
  });
}

/** Marks the shard recorded (every problem of its range is in the ledger or quarantined), with what it found and did. */
export async function recordShard(store: Store, key: string, guard: WriteGuard, counts: { resumed: number; recorded: number }): Promise<void> {
  await writeTx(store, async (tx) => {
    await currentGeneration(tx, key, 'recordShard', guard);
    await tx
      .update(stepShards)
      .set({ state: 'recorded', ...counts, leaseOwner: null, leaseUntil: null, endedAt: new Date() })
      .where(shardWhere(key, guard));
  });
}

/** Records the shard's failure while its attempt still holds it (else its new holder's state stands). */
export async function failShard(store: Store, key: string, guard: WriteGuard, error: unknown): Promise<void> {
  const message = error instanceof Error ? error.message : String(error);
  await writeTx(store, async (tx) => {
    try {
      await currentGeneration(tx, key, 'failShard', guard);
    } catch (err) {
      if (err instanceof LostStepError) return;
      throw err;
    }
    await tx.update(stepShards).set({ state: 'failed', error: message, leaseOwner: null, leaseUntil: null, endedAt: new Date() }).where(shardWhere(key, guard));
  });
}

/**
 * What the shards of the step's current generation did, summed: problems they recorded themselves (not
 * found recorded), and seconds their last attempts ran. Zero for a step that ran unsharded.
 */
export async function shardTotals(store: Store, key: string): Promise<{ recorded: number; seconds: number }> {
  const shards = await stepShardsOf(store, key);
  return {
    recorded: shards.reduce((n, s) => n + (s.recorded ?? 0), 0),
    seconds: shards.reduce((t, s) => t + (s.state === 'recorded' && s.endedAt !== null ? (s.endedAt.getTime() - s.startedAt.getTime()) / 1000 : 0), 0),
  };
}

/** The shards of the step's current generation, in problem order (none for a step that ran unsharded). */
export async function stepShardsOf(store: Store, key: string): Promise<ShardInfo[]> {
  return store.db
    .select({
      shard: stepShards.shard,
      start: stepShards.problemStart,
      end: stepShards.problemEnd,
      state: stepShards.state,
      attempts: stepShards.attempts,
      worker: stepShards.worker,
      resumed: stepShards.resumed,
      recorded: stepShards.recorded,
      startedAt: stepShards.startedAt,
      endedAt: stepShards.endedAt,
      error: stepShards.error,
    })
    .from(stepShards)
    .innerJoin(steps, and(eq(steps.key, stepShards.stepKey), eq(steps.generation, stepShards.generation)))
    .where(eq(stepShards.stepKey, key))
    .orderBy(asc(stepShards.problemStart), asc(stepShards.problemEnd));
}
