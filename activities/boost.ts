/** Boost: the built-in model initialised from its seed and fine-tuned on the training set's worked solutions. */

import { resolveModelConfig } from '../src/engine/config.ts';
import { initParameters } from '../src/engine/parameters.ts';
import { hashSeed } from '../src/engine/random.ts';
import { boostExamples } from '../src/rise/examples.ts';
import { CompactTemplate } from '../src/rise/template.ts';
import { stepSeed } from '../src/spec/plan.ts';
import type { StepContext } from './context.ts';
import { fitModel } from './fit.ts';
import { builtinTokenizer } from './models.ts';
import { boostConfig, paramsOf, type BoostParams } from './params.ts';
import { trainingProblems } from './problems.ts';
import { runStep } from './step.ts';
import { outcome } from './outcome.ts';
import type { StepInput, StepOutcome } from './types.ts';

export async function boost(ctx: StepContext, input: StepInput): Promise<StepOutcome> {
  const result = await runStep(ctx, input, async (run) => {
    const p = paramsOf<BoostParams>(input.step.params);
    const tokenizer = builtinTokenizer();
    // Nulls in the spec mean "the engine's default" (kvHeads, hidden) or "derived from the experiment seed".
    const knobs = Object.fromEntries(Object.entries(p.model.config).filter(([, v]) => v !== null));
    const config = resolveModelConfig({ seed: hashSeed(p.seed, 'init') >>> 1, ...knobs, vocabSize: tokenizer.vocabSize });
    const init = { config, tokenizer, params: initParameters(config) };
    const problems = await trainingProblems(p, input.files);
    const examples = boostExamples(problems, {
      template: new CompactTemplate(tokenizer),
      config: boostConfig(p),
      maxLength: config.context,
      pack: p.boost.pack,
      seed: hashSeed(p.seed, 'boost-pack'),
    });
    return fitModel(ctx, run, init, examples, p.boost, stepSeed(p.seed, input.step.key));
  });
  return outcome(input, result);
}
