/**
 * Rollout: attempt 1 of every episode, sampled from the step's policy (the current learner, or a fixed
 * policy model), recorded per problem in the ledger. The relabel step continues these episodes.
 */

import { chosenSample, isCorrect, type Turn } from '../src/rise/episode.ts';
import { EnginePolicy } from '../src/rise/policy.ts';
import { createRelabeler } from '../src/rise/relabel.ts';
import { collectEpisodes } from '../src/rise/rollout.ts';
import { CompactTemplate } from '../src/rise/template.ts';
import { stepSeed } from '../src/spec/plan.ts';
import { createTask, type Problem } from '../src/tasks/index.ts';
import type { StepContext } from './context.ts';
import { inLedgerBatches, storedEpisodes } from './episodes.ts';
import { loadModel, type LoadedModel } from './models.ts';
import { outcome } from './outcome.ts';
import { paramsOf, rolloutConfig, type RolloutParams } from './params.ts';
import { trainingProblems } from './problems.ts';
import { runStep } from './step.ts';
import type { StepInput, StepOutcome } from './types.ts';

/** With `samples` > 1 every problem is collected that many times, as episodes `<id>#<n>` with their own random streams. */
export function rolloutProblems(problems: Problem[], samples: number): Problem[] {
  if (samples === 1) return problems;
  return problems.flatMap((p) => Array.from({ length: samples }, (_, n) => ({ ...p, id: `${p.id}#${n}` })));
}

export function policyOf(ctx: StepContext, model: LoadedModel, name: string): EnginePolicy {
  return new EnginePolicy({
    name,
    config: model.config,
    params: model.params,
    tokenizer: model.tokenizer,
    template: new CompactTemplate(model.tokenizer),
    batchSize: ctx.generationBatchSize,
    session: ctx.session,
  });
}

/** Fractions of a step's recorded episodes correct at turn 1 and at their last turn. */
export function episodeAccuracy(ctx: StepContext, key: string): { episodes: number; turn1Accuracy: number; finalAccuracy: number } {
  const episodes = storedEpisodes(ctx, key);
  const correct = (t: Turn | undefined) => t !== undefined && isCorrect(chosenSample(t).reward);
  const n = Math.max(1, episodes.length);
  return {
    episodes: episodes.length,
    turn1Accuracy: episodes.filter((e) => correct(e.turns[0])).length / n,
    finalAccuracy: episodes.filter((e) => correct(e.turns.at(-1))).length / n,
  };
}

export async function rollout(ctx: StepContext, input: StepInput): Promise<StepOutcome> {
  const result = await runStep(ctx, input, async (run) => {
    const p = paramsOf<RolloutParams>(input.step.params);
    const config = rolloutConfig(p);
    const learner = policyOf(ctx, await loadModel(ctx, input.step.inputs[0]), 'learner');
    const task = createTask(p.task.kind, { unparsableReward: p.task.unparsableReward });
    const problems = rolloutProblems(await trainingProblems(p, input.files), p.samples);
    const seed = stepSeed(p.seed, input.step.key);
    const { resumed } = await inLedgerBatches(ctx, run, input.runId, problems, async (batch, progress) => {
      const collected = await collectEpisodes(batch, { task, learner, relabeler: createRelabeler(config.relabel, learner), config, seed }, { onProgress: progress });
      return collected.episodes;
    });
    return { resumed, ...episodeAccuracy(ctx, input.step.key) };
  });
  return outcome(input, result);
}
