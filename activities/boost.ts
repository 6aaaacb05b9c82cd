/** Boost: the built-in model initialised from its seed and fine-tuned on the training set's worked solutions. */

import { initParameters } from '../src/engine/parameters.ts';
import { hashSeed } from '../src/engine/random.ts';
import { boostExamples } from '../src/rise/examples.ts';
import { CompactTemplate } from '../src/rise/template.ts';
import { stepSeed } from '../src/plan/plan.ts';
import { builtinModelConfig, builtinTokenizer } from '../src/steps/models.ts';
import type { StepContext } from './context.ts';
import { fitModel } from './fit.ts';
import { problemSet } from './problems.ts';
import { outcome, runStep } from './step.ts';
import type { StepInput, StepOutcome } from './types.ts';

export async function boost(ctx: StepContext, input: StepInput): Promise<StepOutcome> {
  const result = await runStep(ctx, input, 'boost', async (run) => {
    const { params: p } = run.step;
    const tokenizer = builtinTokenizer();
    const config = builtinModelConfig(p.model.config, p.seed);
    const init = { config, tokenizer, params: initParameters(config) };
    const examples = boostExamples(await problemSet(p.train, p.seed, input.files), {
      template: new CompactTemplate(tokenizer),
      instruction: p.instruction,
      maxLength: config.context,
      pack: p.boost.pack,
      seed: hashSeed(p.seed, 'boost-pack'),
    });
    return fitModel(ctx, run, init, examples, p.boost, stepSeed(p.seed, run.step));
  });
  return outcome(input, result);
}
