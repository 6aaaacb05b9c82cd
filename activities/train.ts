/**
 * Train: the filtered examples rendered as the policy saw them (multi-turn) or as first questions alone
 * (single-turn), weighted (RWR or uniform), and fitted starting from the boosted model or the previous
 * iteration's.
 */

import { buildExamples } from '../src/rise/examples.ts';
import type { TurnExample } from '../src/rise/filter.ts';
import { stepSeed } from '../src/plan/plan.ts';
import { doneOutputs } from '../src/steps/stored.ts';
import { loraOf } from '../src/steps/models.ts';
import { trainRendering } from '../src/steps/train.ts';
import { getJson } from '../src/store/index.ts';
import type { StepContext } from './context.ts';
import { fitModel } from './fit.ts';
import { loadModel } from './models.ts';
import { outcome, runStep } from './step.ts';
import type { StepInput, StepOutcome } from './types.ts';

/** Filtering (or the model's context) left nothing to train on: retrying cannot change that (non-retryable). */
export class EmptyDatasetError extends Error {
  override name = 'EmptyDatasetError';
}

export async function train(ctx: StepContext, input: StepInput): Promise<StepOutcome> {
  const result = await runStep(ctx, input, 'train', async (run) => {
    const { params: p, inputs } = run.step;
    const [filterKey, initKey] = inputs;
    const filtered = await doneOutputs(ctx.store, filterKey, 'filter');
    if (filtered === undefined) throw new Error(`train: its filter step ${filterKey.slice(0, 12)} has no result`);
    const turns = await getJson<TurnExample[]>(ctx.store, filtered.examples);
    const init = await loadModel(ctx, initKey);
    const built = buildExamples(turns, {
      ...trainRendering(p),
      template: init.template,
      weighting: p.weighting,
      tau: p.tau,
      normalize: p.normalize,
      maxLength: init.config.context,
    });
    if (built.examples.length === 0) {
      throw new EmptyDatasetError(
        `no training examples: ${turns.length} survived filtering (dropped per rule: ${JSON.stringify(filtered.dropped)}), ${built.tooLong.length} longer than the model context`,
      );
    }
    const fitted = await fitModel(ctx, run, init, built.examples, p.optimizer, stepSeed(p.seed, run.step), loraOf(p.lora ?? null));
    return { ...fitted, examples: built.examples.length, tooLong: built.tooLong.length };
  });
  return outcome(input, result);
}
