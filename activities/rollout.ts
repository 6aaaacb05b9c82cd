/**
 * Rollout: attempt 1 of every episode, sampled from the step's policy (the current learner, a fixed
 * policy model, or a remote policy), recorded per problem in the ledger. The relabel step continues these
 * episodes.
 */

import { episodeAccuracy } from '../src/rise/episode.ts';
import { EnginePolicy } from '../src/rise/policy.ts';
import { collectEpisodes } from '../src/rise/rollout.ts';
import { stepSeed } from '../src/plan/plan.ts';
import { createTask } from '../src/tasks/index.ts';
import type { StepContext } from './context.ts';
import { inLedgerBatches, storedEpisodes, type Sampling } from './episodes.ts';
import { loadModel, type LoadedModel } from './models.ts';
import { problemSet, rolloutProblems } from './problems.ts';
import { remotePolicyOf } from './remote.ts';
import { outcome, runStep } from './step.ts';
import type { StepInput, StepOutcome } from './types.ts';

export function policyOf(ctx: StepContext, model: LoadedModel, name: string): EnginePolicy {
  return new EnginePolicy({
    name,
    config: model.config,
    params: model.params,
    tokenizer: model.tokenizer,
    template: model.template,
    batchSize: ctx.generationBatchSize,
    session: ctx.session,
  });
}

/** The training problems, each as many times as the step samples episodes of it; attempt 1 from the learner. */
export const rolloutSampling: Sampling<'rollout'> = {
  problems: async (_ctx, input, { params: p }) => rolloutProblems(await problemSet(p.train, p.seed, input.files), p.samples),
  async work(ctx, input, step) {
    const { params: p, inputs } = step;
    const learner = p.policy !== undefined ? remotePolicyOf(ctx, input, p.policy, 'learner') : policyOf(ctx, await loadModel(ctx, inputs[0]), 'learner');
    const task = createTask(p.task.kind, { unparsableReward: p.task.unparsableReward });
    // Attempt 1 only: no later turn, so neither relabeling nor the retry message is ever used.
    const rollout = { turns: 1, temperature: p.temperature, topP: p.topP, maxTokens: p.maxTokens, stopOnSuccess: true, afterSuccess: 'hold' as const, contextWindow: null, degenerate: p.degenerate };
    const options = { task, learner, relabeler: { strategy: 'self' as const, policy: learner, samples: 1 }, rollout, prompting: { instruction: p.instruction, feedback: '' }, seed: stepSeed(p.seed, step) };
    return async (batch, progress) => (await collectEpisodes(batch, options, progress)).episodes;
  },
};

export async function rollout(ctx: StepContext, input: StepInput): Promise<StepOutcome> {
  const result = await runStep(ctx, input, 'rollout', async (run) => {
    const problems = await rolloutSampling.problems(ctx, input, run.step);
    const { resumed } = await inLedgerBatches(ctx, run, input.runId, problems, () => rolloutSampling.work(ctx, input, run.step));
    return { resumed, ...episodeAccuracy(await storedEpisodes(ctx, run.step.key)) };
  });
  return outcome(input, result);
}
