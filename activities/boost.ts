/**
 * Boost: the model the experiment starts from — the built-in model initialised from its seed, or a
 * stored pretrained model — fine-tuned on the training set's worked solutions (epochs 0: as it is).
 */

import { initParameters } from '../src/engine/parameters.ts';
import { hashSeed } from '../src/engine/random.ts';
import { boostExamples } from '../src/rise/examples.ts';
import { chatTemplateFor } from '../src/rise/chat-template.ts';
import { stepSeed } from '../src/plan/plan.ts';
import type { BoostParams } from '../src/steps/boost.ts';
import { builtinModelConfig, builtinTokenizer, loraOf } from '../src/steps/models.ts';
import type { StepContext } from './context.ts';
import { fitModel } from './fit.ts';
import { pretrainedModel, type LoadedModel } from './models.ts';
import { problemSet } from './problems.ts';
import { outcome, runStep } from './step.ts';
import type { StepInput, StepOutcome } from './types.ts';

/** The model a boost starts from; `rise plan --calibrate` times its graphs on it. */
export async function initialModel(ctx: Pick<StepContext, 'modelsHome'>, p: BoostParams): Promise<LoadedModel> {
  if (p.model.kind === 'pretrained') return pretrainedModel(ctx, p.model.digest, p.model.config);
  const tokenizer = builtinTokenizer();
  const config = builtinModelConfig(p.model.config, p.seed);
  return { config, tokenizer, template: chatTemplateFor(tokenizer), params: initParameters(config), stop: [], base: null, adapters: null };
}

export async function boost(ctx: StepContext, input: StepInput): Promise<StepOutcome> {
  const result = await runStep(ctx, input, 'boost', async (run) => {
    const { params: p } = run.step;
    const init = await initialModel(ctx, p);
    const examples = boostExamples(await problemSet(p.train, p.seed, input.files), {
      template: init.template,
      instruction: p.instruction,
      maxLength: init.config.context,
      pack: p.boost.pack,
      seed: hashSeed(p.seed, 'boost-pack'),
    });
    return fitModel(ctx, run, init, examples, p.boost, stepSeed(p.seed, run.step), loraOf(p.lora ?? null));
  });
  return outcome(input, result);
}
