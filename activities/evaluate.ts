/**
 * Evaluate: a model on one evaluation set — parallel turn-1 samples and a sequential chain of turns per
 * problem, recorded in the ledger as they finish. The step is shared by every arm and run that
 * evaluates the same model on the same set; each run's metric rows are computed from the recorded
 * answers under the arm's tie rule and vote weighting and written whether the step was computed now or earlier.
 */

import { DEFAULT_TIE_BREAK, DEFAULT_VOTE, HEADLINE_METRICS } from '../src/rise/metrics.ts';
import { evaluatePolicy, traceEpisode } from '../src/rise/evaluate.ts';
import { evaluationSeed, recordedEvaluation } from '../src/steps/evaluation.ts';
import { stepOfKind } from '../src/steps/index.ts';
import { upsertMetrics } from '../src/store/index.ts';
import { createTask } from '../src/tasks/index.ts';
import type { StepContext } from './context.ts';
import { inLedgerBatches, type Sampling } from './episodes.ts';
import { loadModel } from './models.ts';
import { evaluationProblems } from './problems.ts';
import { policyOf } from './rollout.ts';
import { outcome, runStep } from './step.ts';
import type { StepInput, StepOutcome } from './types.ts';

/** The evaluation set's problems, each traced through parallel samples and a chain of turns. */
export const evaluateSampling: Sampling<'evaluate'> = {
  problems: (_ctx, input, { params: p }) => evaluationProblems(p, input.files),
  async work(ctx, _input, { params: p, inputs }) {
    const policy = policyOf(ctx, await loadModel(ctx, inputs[0]), 'model');
    const task = createTask(p.task.kind, { unparsableReward: p.task.unparsableReward });
    const options = { task, evaluate: p.evaluate, prompting: { instruction: p.instruction, feedback: p.feedback }, seed: evaluationSeed(p) };
    return async (batch, progress) => {
      const { traces } = await evaluatePolicy(policy, batch, options, progress);
      const prompts = new Map(batch.map((b) => [b.id, b.prompt]));
      return traces.map((t) => traceEpisode(t, prompts.get(t.problemId)!));
    };
  },
};

export async function evaluate(ctx: StepContext, input: StepInput): Promise<StepOutcome> {
  const result = await runStep(ctx, input, 'evaluate', async (run) => {
    const problems = await evaluateSampling.problems(ctx, input, run.step);
    const { resumed } = await inLedgerBatches(ctx, run, input.runId, problems, () => evaluateSampling.work(ctx, input, run.step));
    return { resumed, problems: problems.length };
  });
  const tieBreak = input.use.tieBreak ?? DEFAULT_TIE_BREAK;
  const vote = input.use.vote ?? DEFAULT_VOTE;
  const table = (await recordedEvaluation(ctx.store, input.step.key, stepOfKind(input.step, 'evaluate').params, vote)).byRule[tieBreak];
  await upsertMetrics(
    ctx.store,
    table.rows.map((r) => ({
      runId: input.runId,
      arm: input.arm,
      iteration: input.iteration,
      evalSet: input.use.evalSet ?? '',
      name: r.name,
      k: r.k,
      value: r.value,
      details: { family: r.family, correct: r.correct, problems: r.problems, ties: r.ties, unparsable: r.unparsable, tieBreak, vote },
      stepKey: input.step.key,
    })),
  );
  const headline = Object.fromEntries(table.rows.filter((r) => (HEADLINE_METRICS as readonly string[]).includes(r.name)).map((r) => [r.name, r.value]));
  return outcome(input, result, headline);
}
