/**
 * Relabel: the rollout step's episodes continued turn by turn while their attempt is wrong, each later
 * attempt the best of N candidates from the relabeling policy (the learner itself, or the expert: a model
 * or a remote policy).
 */

import { episodeAccuracy, type Episode } from '../src/rise/episode.ts';
import { collectEpisodes } from '../src/rise/rollout.ts';
import { stepSeed } from '../src/plan/plan.ts';
import type { Step } from '../src/steps/index.ts';
import { storedParams } from '../src/steps/stored.ts';
import { recordedProblems } from '../src/store/index.ts';
import { createTask } from '../src/tasks/index.ts';
import type { StepContext } from './context.ts';
import { inLedgerBatches, storedEpisodes, type Sampling } from './episodes.ts';
import { loadModel } from './models.ts';
import { problemSet, rolloutProblems } from './problems.ts';
import { remotePolicyOf } from './remote.ts';
import { policyOf } from './rollout.ts';
import { outcome, runStep } from './step.ts';
import type { StepInput, StepOutcome } from './types.ts';

/** The rollout's episodes by problem: the attempts 1 relabeling continues. */
async function startingEpisodes(ctx: StepContext, step: Step<'relabel'>): Promise<Map<string, Episode>> {
  return new Map((await storedEpisodes(ctx, step.inputs[0])).map((e) => [e.problemId, e]));
}

/** The rollout's problems that have an attempt 1, continued by the relabeling policy. */
export const relabelSampling: Sampling<'relabel'> = {
  async problems(ctx, input, step) {
    // The problems are the rollout's: its params name the training set and the episodes per problem.
    const sampled = await storedParams(ctx.store, step.inputs[0], 'rollout');
    const problems = rolloutProblems(await problemSet(sampled.train, sampled.seed, input.files), sampled.samples);
    // A problem the rollout quarantined has no attempt 1 to continue: it is out of this iteration.
    const started = await recordedProblems(ctx.store, step.inputs[0]);
    return problems.filter((problem) => started.has(problem.id));
  },
  async work(ctx, input, step) {
    const { params: p, inputs } = step;
    const name = p.strategy === 'expert' ? 'expert' : 'learner';
    const relabeler = p.policy !== undefined ? remotePolicyOf(ctx, input, p.policy, name) : policyOf(ctx, await loadModel(ctx, inputs[1]), name);
    const options = {
      task: createTask(p.task.kind, { unparsableReward: p.task.unparsableReward }),
      // The relabeling model samples every turn after the first; attempt 1 comes from `start`.
      learner: relabeler,
      relabeler: { strategy: p.strategy, policy: relabeler, samples: p.samples },
      rollout: { turns: p.turns, temperature: p.temperature, topP: p.topP, maxTokens: p.maxTokens, stopOnSuccess: p.stopOnSuccess, afterSuccess: p.afterSuccess ?? 'hold', contextWindow: p.contextWindow, degenerate: p.degenerate },
      prompting: { instruction: p.instruction, feedback: p.feedback },
      seed: stepSeed(p.seed, step),
      start: await startingEpisodes(ctx, step),
    };
    return async (batch, progress) => (await collectEpisodes(batch, options, progress)).episodes;
  },
};

export async function relabel(ctx: StepContext, input: StepInput): Promise<StepOutcome> {
  const result = await runStep(ctx, input, 'relabel', async (run) => {
    const problems = await relabelSampling.problems(ctx, input, run.step);
    const { resumed } = await inLedgerBatches(ctx, run, input.runId, problems, () => relabelSampling.work(ctx, input, run.step));
    return { resumed, ...episodeAccuracy(await storedEpisodes(ctx, run.step.key)) };
  });
  return outcome(input, result);
}
