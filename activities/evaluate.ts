/**
 * Evaluate: a model on one evaluation set — parallel turn-1 samples and a sequential chain of turns per
 * problem, recorded in the ledger as they finish (turn 1 holds the parallel samples, turn t ≥ 2 the
 * chain's t-th attempt), then the metrics table over all of them. The step is shared by every arm and
 * run that evaluates the same model on the same set; each run's metrics rows are written whether the
 * step was computed now or earlier.
 */

import { hashSeed } from '../src/engine/random.ts';
import { isCorrect } from '../src/rise/episode.ts';
import { evaluatePolicy } from '../src/rise/evaluate.ts';
import { HEADLINE_METRICS, computeMetrics, type EvalRecord, type MetricsTable } from '../src/rise/metrics.ts';
import { upsertMetrics } from '../src/store/index.ts';
import { createTask } from '../src/tasks/index.ts';
import type { StepContext } from './context.ts';
import { inLedgerBatches, storedEpisodes } from './episodes.ts';
import { loadModel } from './models.ts';
import { outcome } from './outcome.ts';
import { evaluateConfig, paramsOf, type EvaluateParams } from './params.ts';
import { evaluationProblems } from './problems.ts';
import { policyOf } from './rollout.ts';
import { runStep } from './step.ts';
import type { StepInput, StepOutcome } from './types.ts';

export async function evaluate(ctx: StepContext, input: StepInput): Promise<StepOutcome> {
  const p = paramsOf<EvaluateParams>(input.step.params);
  const config = evaluateConfig(p);
  // One seed per set, not per model: every model is compared on the same random streams.
  const seed = hashSeed(p.seed, 'evaluate', JSON.stringify(p.set));
  const result = await runStep(ctx, input, async (run) => {
    const policy = policyOf(ctx, await loadModel(ctx, input.step.inputs[0]), 'model');
    const task = createTask(p.task.kind, { unparsableReward: p.task.unparsableReward });
    const problems = await evaluationProblems(p, input.files);
    const { resumed } = await inLedgerBatches(ctx, run, input.runId, problems, async (batch, progress) => {
      const { traces } = await evaluatePolicy(policy, batch, { task, config, seed }, { onProgress: progress });
      return traces.map((t) => ({
        problemId: t.problemId,
        prompt: batch.find((b) => b.id === t.problemId)!.prompt,
        turns: [
          { turn: 1, kind: 'parallel', chosen: 0, samples: t.parallel },
          ...t.sequential.slice(1).map((s, i) => ({ turn: i + 2, kind: 'sequential', chosen: 0, samples: [s] })),
        ],
      }));
    });
    const records: EvalRecord[] = storedEpisodes(ctx, input.step.key).map((e) => {
      const answer = (s: { answer: string | null; reward: number }) => ({ answer: s.answer, correct: isCorrect(s.reward) });
      return { problemId: e.problemId, parallel: e.turns[0].samples.map(answer), sequential: e.turns.map((t) => answer(t.samples[0])) };
    });
    const table = computeMetrics(records, { tieBreak: config.evaluate.tieBreak, seed });
    return { resumed, table };
  });
  const table = result.outputs.table as MetricsTable;
  upsertMetrics(
    ctx.store,
    table.rows.map((r) => ({
      runId: input.runId,
      arm: input.arm,
      iteration: input.iteration,
      evalSet: input.use.evalSet ?? '',
      name: r.name,
      k: r.k,
      value: r.value,
      details: { family: r.family, correct: r.correct, problems: r.problems, ties: r.ties, unparsable: r.unparsable },
      stepKey: input.step.key,
    })),
  );
  const headline = Object.fromEntries(table.rows.filter((r) => (HEADLINE_METRICS as readonly string[]).includes(r.name)).map((r) => [r.name, r.value]));
  return outcome(input, result, headline);
}
