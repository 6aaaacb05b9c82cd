/**
 * Filter: the relabeled episodes (of this iteration, or of every iteration so far when aggregating) cut
 * into per-turn candidate examples, kept or dropped by the filter's rules. Every decision is recorded with
 * its rule; the kept examples go to the train step as one artifact.
 */

import { filterEpisodes } from '../src/rise/filter.ts';
import { putJson, recordExamples } from '../src/store/index.ts';
import type { StepContext } from './context.ts';
import { storedEpisodes } from './episodes.ts';
import { outcome, runStep } from './step.ts';
import type { StepInput, StepOutcome } from './types.ts';

export async function filter(ctx: StepContext, input: StepInput): Promise<StepOutcome> {
  const result = await runStep(ctx, input, 'filter', async (run) => {
    const { key, params, inputs } = run.step;
    // Inputs are the relabel steps of the iterations up to this one, in order; the origin names the
    // iteration an example came from.
    const first = input.iteration - inputs.length + 1;
    const pool = inputs.flatMap((k, i) => storedEpisodes(ctx, k).map((episode) => ({ episode, origin: `iter-${first + i}` })));
    run.progress({ done: 0, total: pool.length, unit: 'episodes' });
    const { kept, dropped, counts } = filterEpisodes(pool, params);
    recordExamples(ctx.store, key, [
      ...kept.map((e) => ({ problemId: e.problemId, turn: e.turn, reward: e.reward, origin: e.origin ?? '' })),
      ...dropped.map(({ example: e, rule }) => ({ problemId: e.problemId, turn: e.turn, reward: e.reward, origin: e.origin ?? '', dropRule: rule })),
    ], run.guard);
    run.progress({ done: pool.length, total: pool.length, unit: 'episodes' });
    return { episodes: pool.length, kept: kept.length, dropped: counts, examples: await putJson(ctx.store, kept, 'turn-examples') };
  });
  return outcome(input, result);
}
