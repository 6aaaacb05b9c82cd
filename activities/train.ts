/**
 * Train: the filtered examples rendered as the policy saw them (multi-turn) or as first questions alone
 * (single-turn), weighted (RWR or uniform), and fitted starting from the boosted model or the previous
 * iteration's.
 */

import { buildExamples, examplesOptionsOf } from '../src/rise/examples.ts';
import type { TurnExample } from '../src/rise/filter.ts';
import { CompactTemplate } from '../src/rise/template.ts';
import { stepSeed } from '../src/spec/plan.ts';
import { getJson, getStep, type ArtifactRef } from '../src/store/index.ts';
import type { StepContext } from './context.ts';
import { fitModel } from './fit.ts';
import { loadModel } from './models.ts';
import { outcome } from './outcome.ts';
import { paramsOf, trainConfig, type TrainParams } from './params.ts';
import { runStep } from './step.ts';
import type { StepInput, StepOutcome } from './types.ts';

/** Filtering (or the model's context) left nothing to train on: retrying cannot change that (non-retryable). */
export class EmptyDatasetError extends Error {
  override name = 'EmptyDatasetError';
}

export async function train(ctx: StepContext, input: StepInput): Promise<StepOutcome> {
  const result = await runStep(ctx, input, async (run) => {
    const p = paramsOf<TrainParams>(input.step.params);
    const [filterKey, initKey] = input.step.inputs;
    const filtered = getStep(ctx.store, filterKey)!.outputs as { examples: ArtifactRef; dropped: Record<string, number> };
    const turns = await getJson<TurnExample[]>(ctx.store, filtered.examples);
    const init = await loadModel(ctx, initKey);
    const config = trainConfig(p);
    const built = buildExamples(turns, examplesOptionsOf(config, new CompactTemplate(init.tokenizer), init.config.context));
    if (built.examples.length === 0) {
      throw new EmptyDatasetError(
        `no training examples: ${turns.length} survived filtering (dropped per rule: ${JSON.stringify(filtered.dropped)}), ${built.tooLong.length} longer than the model context`,
      );
    }
    const fitted = await fitModel(ctx, run, init, built.examples, p.optimizer, stepSeed(p.seed, input.step.key));
    return { ...fitted, examples: built.examples.length, tooLong: built.tooLong.length };
  });
  return outcome(input, result);
}
