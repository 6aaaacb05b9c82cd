/**
 * Relabel: the rollout step's episodes continued turn by turn while their attempt is wrong, each later
 * attempt the best of N candidates from the relabeling model (the learner itself, or the expert).
 */

import { createRelabeler } from '../src/rise/relabel.ts';
import { collectEpisodes } from '../src/rise/rollout.ts';
import { stepSeed } from '../src/spec/plan.ts';
import { getStep } from '../src/store/index.ts';
import { createTask } from '../src/tasks/index.ts';
import type { StepContext } from './context.ts';
import { inLedgerBatches, storedEpisodes } from './episodes.ts';
import { loadModel } from './models.ts';
import { outcome } from './outcome.ts';
import { paramsOf, relabelConfig, type RelabelParams, type RolloutParams } from './params.ts';
import { trainingProblems } from './problems.ts';
import { episodeAccuracy, policyOf, rolloutProblems } from './rollout.ts';
import { runStep } from './step.ts';
import type { StepInput, StepOutcome } from './types.ts';

export async function relabel(ctx: StepContext, input: StepInput): Promise<StepOutcome> {
  const result = await runStep(ctx, input, async (run) => {
    const p = paramsOf<RelabelParams>(input.step.params);
    const [rolloutKey, relabelerKey] = input.step.inputs;
    const config = relabelConfig(p);
    const relabeler = policyOf(ctx, await loadModel(ctx, relabelerKey), p.strategy === 'expert' ? 'expert' : 'learner');
    const task = createTask(p.task.kind, { unparsableReward: p.task.unparsableReward });
    // The problems are the rollout's: its params name the training set and the episodes per problem.
    const rolloutParams = paramsOf<RolloutParams>(getStep(ctx.store, rolloutKey)!.params as Record<string, never>);
    const problems = rolloutProblems(await trainingProblems(rolloutParams, input.files), rolloutParams.samples);
    const start = new Map(storedEpisodes(ctx, rolloutKey).map((e) => [e.problemId, e]));
    const seed = stepSeed(p.seed, input.step.key);
    const { resumed } = await inLedgerBatches(ctx, run, input.runId, problems, async (batch, progress) => {
      const collected = await collectEpisodes(
        batch,
        // The relabeling model samples every turn after the first; attempt 1 comes from `start`.
        { task, learner: relabeler, relabeler: createRelabeler(config.relabel, relabeler, relabeler), config, seed, start },
        { onProgress: progress },
      );
      return collected.episodes;
    });
    return { resumed, ...episodeAccuracy(ctx, input.step.key) };
  });
  return outcome(input, result);
}
