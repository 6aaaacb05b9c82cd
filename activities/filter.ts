/**
 * Filter: the relabeled episodes (of this iteration, or of every iteration so far when aggregating) cut
 * into per-turn candidate examples, kept or dropped by the filter's rules. Every decision is recorded with
 * its rule; the kept examples go to the train step as one artifact.
 */

import { filterEpisodes } from '../src/rise/filter.ts';
import { filterOrigins } from '../src/steps/filter.ts';
import { putJson, recordExamples } from '../src/store/index.ts';
import type { StepContext } from './context.ts';
import { storedEpisodes } from './episodes.ts';
import { outcome, runStep } from './step.ts';
import type { StepInput, StepOutcome } from './types.ts';

export async function filter(ctx: StepContext, input: StepInput): Promise<StepOutcome> {
  const result = await runStep(ctx, input, 'filter', async (run) => {
    const { key, params, inputs } = run.step;
    const pool = [];
    for (const { relabel, origin } of filterOrigins(input.iteration, inputs)) {
      for (const episode of await storedEpisodes(ctx, relabel)) pool.push({ episode, origin });
    }
    run.progress({ done: 0, total: pool.length, unit: 'episodes' });
    const { kept, dropped, counts } = filterEpisodes(pool, params);
    await recordExamples(ctx.store, key, [
      ...kept.map((e) => ({ problemId: e.problemId, turn: e.turn, reward: e.reward, origin: e.origin ?? '' })),
      ...dropped.map(({ example: e, rule }) => ({ problemId: e.problemId, turn: e.turn, reward: e.reward, origin: e.origin ?? '', dropRule: rule })),
    ], run.guard);
    run.progress({ done: pool.length, total: pool.length, unit: 'episodes' });
    return { episodes: pool.length, kept: kept.length, dropped: counts, examples: await putJson(ctx.store, kept, 'turn-examples') };
  });
  return outcome(input, result);
}
