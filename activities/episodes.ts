/**
 * Episodes between the algorithm and the ledger: reading a step's recorded episodes back as the
 * algorithm's type, and working through problems in ledger-sized batches so a crash loses one batch at
 * most and a retry skips every problem already recorded.
 */

import type { Episode, Sample, Turn } from '../src/rise/episode.ts';
import type { Progress } from '../src/rise/progress.ts';
import type { Step } from '../src/steps/index.ts';
import type { ShardedKind } from '../src/steps/shards.ts';
import { clearQuarantine, quarantineProblem, readEpisodes, recordedProblems, recordEpisodes, shardTotals, type LedgerEpisode, type QuarantineRecord } from '../src/store/index.ts';
import type { Problem } from '../src/tasks/index.ts';
import type { StepContext } from './context.ts';
import { quarantineAllowance, quarantineLimitError, settleBatch } from './quarantine.ts';
import type { StepRun } from './step.ts';
import type { StepInput } from './types.ts';

/** A step's recorded episodes, in the algorithm's shape. */
export async function storedEpisodes(ctx: StepContext, stepKey: string): Promise<Episode[]> {
  return (await readEpisodes(ctx.store, stepKey)).map((e) => ({
    problemId: e.problemId,
    prompt: e.prompt ?? '',
    turns: e.turns.map(
      (t): Turn => ({
        turn: t.turn,
        kind: t.kind as Turn['kind'],
        chosen: t.chosen,
        samples: t.samples.map(
          (s): Sample => ({
            requestId: s.requestId ?? '',
            source: s.source ?? '',
            candidate: s.candidate ?? 0,
            resample: s.resample ?? 0,
            text: s.text,
            answer: s.answer,
            reward: s.reward,
            tokens: s.tokens,
            logprob: s.logprob,
            finishReason: (s.finishReason ?? 'stop') as Sample['finishReason'],
            degenerate: s.degenerate ?? null,
          }),
        ),
      }),
    ),
  }));
}

/** Samples episodes for a batch of problems, reporting progress within the batch. */
export type BatchWork = (batch: Problem[], progress: (p: Progress) => void) => Promise<readonly LedgerEpisode[]>;

/**
 * A step that samples problem by problem: the problems it works on, in a fixed order (its shards are
 * ranges of this list, see src/steps/shards.ts), and the work over a batch of them (its policy loaded).
 */
export interface Sampling<K extends ShardedKind> {
  problems(ctx: StepContext, input: StepInput, step: Step<K>): Promise<Problem[]>;
  work(ctx: StepContext, input: StepInput, step: Step<K>): Promise<BatchWork>;
}

/**
 * Runs `work` over the problems not yet recorded for the step, a batch at a time, recording each batch's
 * episodes before the next starts. `prepare` makes the work (loads the policy) and is called only when
 * some problem is left, so assembling a step its shards have recorded loads no model. Progress counts
 * every problem, the recorded ones included. A problem `work` keeps failing on is quarantined (see
 * quarantine.ts): recorded with its error, not in the ledger; each attempt of the step tries the previous
 * attempt's quarantined problems again. `problems` may be a shard, from `start` of a step of
 * `stepProblems` problems: then only the shard's quarantined problems are tried again, and the step's
 * allowance applies to the shard (the assembling attempt, which tries them all again, holds the step to it).
 * Returns how many problems were already recorded (resumed from a previous attempt) and how many were quarantined.
 */
export async function inLedgerBatches(
  ctx: StepContext,
  run: StepRun,
  runId: string,
  problems: Problem[],
  prepare: () => Promise<BatchWork>,
  shard?: { start: number; stepProblems: number },
): Promise<{ resumed: number; quarantined: number }> {
  const stepProblems = shard?.stepProblems;
  // Each episode is recorded with its problem's place in the step's list, which orders the ledger.
  const positions = new Map(problems.map((p, i) => [p.id, (shard?.start ?? 0) + i]));
  const key = run.attempt.key;
  const recorded = await recordedProblems(ctx.store, key);
  await clearQuarantine(ctx.store, key, run.guard, stepProblems === undefined ? undefined : problems.map((p) => p.id));
  const todo = problems.filter((p) => !recorded.has(p.id));
  const total = problems.length;
  const allowance = quarantineAllowance(ctx.quarantine, stepProblems ?? total);
  let done = total - todo.length;
  run.progress({ done, total, unit: 'problems', stage: done > 0 ? `resumed after ${done} recorded problems` : undefined });
  const given: QuarantineRecord[] = [];
  const hooks = {
    alive: () => run.progress({ done, total, unit: 'problems', stage: 'retrying the problems of a failed batch' }),
    quarantine: async (record: QuarantineRecord) => {
      await quarantineProblem(ctx.store, key, record, runId, run.guard);
      given.push(record);
      if (given.length > allowance) throw quarantineLimitError(given, stepProblems ?? total, ctx.quarantine);
    },
  };
  let work: BatchWork | undefined;
  for (let i = 0; i < todo.length; i += ctx.ledgerBatch) {
    work ??= await prepare();
    const batch = todo.slice(i, i + ctx.ledgerBatch);
    const progress = (p: Progress) => run.progress({ done, total, unit: 'problems', stage: p.stage });
    const results = await settleBatch(batch, (problems) => work!(problems, progress), ctx.quarantine, hooks);
    await recordEpisodes(ctx.store, key, results.map((e) => ({ ...e, position: positions.get(e.problemId) })), runId, run.guard);
    done += batch.length;
    run.progress({ done, total, unit: 'problems', ...(given.length > 0 ? { stage: `${given.length} quarantined` } : {}) });
  }
  // What this generation's shards recorded was computed for the step, not resumed: assembling a sharded
  // step counts only what attempts that died left behind, as an unsharded attempt does.
  const sharded = shard === undefined ? (await shardTotals(ctx.store, key)).recorded : 0;
  return { resumed: total - todo.length - sharded, quarantined: given.length };
}
