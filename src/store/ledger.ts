/**
 * The per-sample ledger: every episode a step works on (one per problem), its turns, and every sample drawn
 * at each turn, with reward, extracted answer, token count and log-probability.
 *
 * A step records batches as it goes; a retried attempt asks what is recorded and skips it, so a crash loses
 * only the work in flight. Rows are keyed naturally (step, generation, problem, turn, sample index) and
 * inserted with ON CONFLICT DO NOTHING, so recording a batch twice (a retry that redid it, a duplicated
 * activity) adds nothing. Rows belong to the step's current generation: after replay marks the step stale,
 * its old ledger is history and the recomputation starts empty.
 *
 * The input types match the algorithm's episodes structurally (src/rise/episode.ts), so those can be passed
 * as they are.
 */

import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import { writeTx, type Store } from './db.ts';
import { episodes, samples, turns } from './schema.ts';
import { currentGeneration, type WriteGuard } from './steps.ts';

export interface LedgerSample {
  /** The request id that names the sample's random stream. */
  requestId?: string | null;
  /** The policy that drew it (learner, expert). */
  source?: string | null;
  candidate?: number | null;
  resample?: number | null;
  text: string;
  answer: string | null;
  reward: number;
  tokens: number;
  /** Sum of the sampled tokens' log-probabilities. */
  logprob: number;
  finishReason?: string | null;
  degenerate?: string | null;
}

export interface LedgerTurn {
  turn: number;
  kind: string;
  /** Index into `samples` of the turn's attempt. */
  chosen: number;
  /** Their positions are the sample indices. */
  samples: readonly LedgerSample[];
}

export interface LedgerEpisode {
  problemId: string;
  prompt?: string | null;
  /** The problem's place in the step's problem list, which orders the ledger (see `readEpisodes`). */
  position?: number | null;
  turns: readonly LedgerTurn[];
}

/** Keeps multi-row inserts under SQLite's limit of 32,766 bound parameters (samples have 14 columns). */
const ROWS_PER_INSERT = 2000;

/**
 * Records a batch in one transaction (the step must have been started). Episodes, turns or samples already
 * recorded are left as they are, so an episode can also be recorded turn by turn. Returns how many samples
 * were new.
 */
export async function recordEpisodes(store: Store, stepKey: string, batch: readonly LedgerEpisode[], runId?: string, guard?: WriteGuard): Promise<number> {
  if (batch.length === 0) return 0;
  return writeTx(store, async (tx) => {
    const generation = await currentGeneration(tx, stepKey, 'recordEpisodes', guard);
    for (const part of chunks(batch, ROWS_PER_INSERT)) {
      await tx
        .insert(episodes)
        .values(part.map((e) => ({ stepKey, generation, problemId: e.problemId, prompt: e.prompt ?? null, runId: runId ?? null, position: e.position ?? null })))
        .onConflictDoNothing();
    }
    const ids = new Map<string, number>();
    for (const part of chunks(batch, ROWS_PER_INSERT)) {
      const rows = await tx
        .select({ id: episodes.id, problemId: episodes.problemId })
        .from(episodes)
        .where(and(eq(episodes.stepKey, stepKey), eq(episodes.generation, generation), inArray(episodes.problemId, part.map((e) => e.problemId))));
      for (const r of rows) ids.set(r.problemId, r.id);
    }

    const turnRows: (typeof turns.$inferInsert)[] = [];
    const sampleRows: (typeof samples.$inferInsert)[] = [];
    for (const e of batch) {
      const episodeId = ids.get(e.problemId)!;
      for (const t of e.turns) {
        turnRows.push({ episodeId, turn: t.turn, kind: t.kind, chosen: t.chosen });
        t.samples.forEach((s, sample) =>
          sampleRows.push({
            episodeId,
            turn: t.turn,
            sample,
            requestId: s.requestId ?? null,
            source: s.source ?? null,
            candidate: s.candidate ?? null,
            resample: s.resample ?? null,
            text: s.text,
            answer: s.answer,
            reward: s.reward,
            tokens: s.tokens,
            logprob: s.logprob,
            finishReason: s.finishReason ?? null,
            degenerate: s.degenerate ?? null,
          }),
        );
      }
    }
    for (const part of chunks(turnRows, ROWS_PER_INSERT)) await tx.insert(turns).values(part).onConflictDoNothing();
    let added = 0;
    for (const part of chunks(sampleRows, ROWS_PER_INSERT)) {
      added += (await tx.insert(samples).values(part).onConflictDoNothing().returning({ sample: samples.sample })).length;
    }
    return added;
  });
}

/** The problems with an episode recorded for the step: what a retry skips when episodes are recorded whole. */
export async function recordedProblems(store: Store, stepKey: string): Promise<Set<string>> {
  const generation = await currentGeneration(store.db, stepKey, 'recordedProblems');
  const rows = await store.db
    .select({ problemId: episodes.problemId })
    .from(episodes)
    .where(and(eq(episodes.stepKey, stepKey), eq(episodes.generation, generation)));
  return new Set(rows.map((r) => r.problemId));
}

/**
 * The step's recorded episodes in the order of its problem list (their positions), so shards recording at
 * once read back as one attempt recording in order would; episodes recorded without a position (before
 * shards existed) first, in the order they were recorded.
 * With `problemId`, only that problem's episode (none when the step has no such episode).
 */
export async function readEpisodes(store: Store, stepKey: string, problemId?: string): Promise<LedgerEpisode[]> {
  const generation = await currentGeneration(store.db, stepKey, 'readEpisodes');
  const scope = and(eq(episodes.stepKey, stepKey), eq(episodes.generation, generation), problemId === undefined ? undefined : eq(episodes.problemId, problemId));
  const byId = new Map<number, { problemId: string; prompt: string | null; turns: LedgerTurn[] }>();
  for (const e of await store.db.select().from(episodes).where(scope).orderBy(sql`${episodes.position} IS NOT NULL`, asc(episodes.position), asc(episodes.id))) {
    byId.set(e.id, { problemId: e.problemId, prompt: e.prompt, turns: [] });
  }

  const turnOf = new Map<string, LedgerSample[]>();
  const turnRows = await store.db
    .select({ t: turns })
    .from(turns)
    .innerJoin(episodes, eq(turns.episodeId, episodes.id))
    .where(scope)
    .orderBy(asc(turns.episodeId), asc(turns.turn));
  for (const { t } of turnRows) {
    const turnSamples: LedgerSample[] = [];
    byId.get(t.episodeId)!.turns.push({ turn: t.turn, kind: t.kind, chosen: t.chosen, samples: turnSamples });
    turnOf.set(`${t.episodeId}/${t.turn}`, turnSamples);
  }

  const sampleRows = await store.db
    .select({ s: samples })
    .from(samples)
    .innerJoin(episodes, eq(samples.episodeId, episodes.id))
    .where(scope)
    .orderBy(asc(samples.episodeId), asc(samples.turn), asc(samples.sample));
  for (const { s } of sampleRows) {
    turnOf.get(`${s.episodeId}/${s.turn}`)!.push({
      requestId: s.requestId,
      source: s.source,
      candidate: s.candidate,
      resample: s.resample,
      text: s.text,
      answer: s.answer,
      reward: s.reward,
      tokens: s.tokens,
      logprob: s.logprob,
      finishReason: s.finishReason,
      degenerate: s.degenerate,
    });
  }
  return [...byId.values()];
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
