/**
 * Relabel: the rollout step's episodes continued turn by turn while their attempt is wrong, each later
 * attempt the best of N candidates from the relabeling policy (the learner itself, or the expert: a model
 * or a remote policy).
 */

import { episodeAccuracy } from '../src/rise/episode.ts';
import { collectEpisodes } from '../src/rise/rollout.ts';
import { stepSeed } from '../src/plan/plan.ts';
import { storedParams } from '../src/steps/stored.ts';
import { createTask } from '../src/tasks/index.ts';
import type { StepContext } from './context.ts';
import { inLedgerBatches, storedEpisodes } from './episodes.ts';
import { loadModel } from './models.ts';
import { problemSet, rolloutProblems } from './problems.ts';
import { remotePolicyOf } from './remote.ts';
import { policyOf } from './rollout.ts';
import { outcome, runStep } from './step.ts';
import type { StepInput, StepOutcome } from './types.ts';

export async function relabel(ctx: StepContext, input: StepInput): Promise<StepOutcome> {
  const result = await runStep(ctx, input, 'relabel', async (run) => {
    const { key, params: p, inputs } = run.step;
    const [rolloutKey, relabelerKey] = inputs;
    const name = p.strategy === 'expert' ? 'expert' : 'learner';
    const relabeler = p.policy !== undefined ? remotePolicyOf(ctx, input, p.policy, name) : policyOf(ctx, await loadModel(ctx, relabelerKey), name);
    const task = createTask(p.task.kind, { unparsableReward: p.task.unparsableReward });
    // The problems are the rollout's: its params name the training set and the episodes per problem.
    const sampled = await storedParams(ctx.store, rolloutKey, 'rollout');
    const problems = rolloutProblems(await problemSet(sampled.train, sampled.seed, input.files), sampled.samples);
    const start = new Map((await storedEpisodes(ctx, rolloutKey)).map((e) => [e.problemId, e]));
    // A problem the rollout quarantined has no attempt 1 to continue: it is out of this iteration.
    const continued = problems.filter((problem) => start.has(problem.id));
    const options = {
      task,
      // The relabeling model samples every turn after the first; attempt 1 comes from `start`.
      learner: relabeler,
      relabeler: { strategy: p.strategy, policy: relabeler, samples: p.samples },
      rollout: { turns: p.turns, temperature: p.temperature, topP: p.topP, maxTokens: p.maxTokens, stopOnSuccess: p.stopOnSuccess, afterSuccess: p.afterSuccess ?? 'hold', contextWindow: p.contextWindow, degenerate: p.degenerate },
      prompting: { instruction: p.instruction, feedback: p.feedback },
      seed: stepSeed(p.seed, run.step),
      start,
    };
    const { resumed } = await inLedgerBatches(ctx, run, input.runId, continued, async (batch, progress) => (await collectEpisodes(batch, options, progress)).episodes);
    return { resumed, ...episodeAccuracy(await storedEpisodes(ctx, key)) };
  });
  return outcome(input, result);
}
