/**
 * `rise plan --calibrate`: the throughput of the graphs a plan would run, measured on this machine
 * before anything runs. Each decode graph generates full-length answers for one generation batch of the
 * training prompts, and each training graph takes a few optimizer steps on the boost's own examples, all
 * on the model the boost starts from (its initialisation, or the pretrained weights): the same graph
 * and shapes a step runs, with none of its results kept. A step that stops its answers early or trains on
 * longer examples runs at another rate, which is why history, when the store has it, comes first.
 */

import { hashSeed } from '../src/engine/random.ts';
import { Generator } from '../src/engine/generate.ts';
import { Trainer } from '../src/engine/trainer.ts';
import { graphOf, WORK, type CalibratedRate, type Calibration } from '../src/plan/estimate.ts';
import type { Plan } from '../src/plan/plan.ts';
import { episodeContext, stateConversation } from '../src/rise/conversation.ts';
import { boostExamples } from '../src/rise/examples.ts';
import { adamwOf } from '../src/steps/models.ts';
import type { BoostParams, EvaluateParams, RolloutParams, Step, TrainParams } from '../src/steps/index.ts';
import { initialModel } from './boost.ts';
import type { StepContext } from './context.ts';
import type { LoadedModel } from './models.ts';
import { problemSet } from './problems.ts';

/**
 * Timed repeats per graph (batches decoded, optimizer steps taken), after one untimed run that builds
 * the session; the median is kept, as the machine may be shared and one repeat slowed.
 */
const REPEATS = 3;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The boost step a model-producing step's weights descend from. */
function boostOf(plan: Plan, key: string): Step<'boost'> {
  const step = plan.steps[key];
  if (step.kind === 'boost') return step as Step<'boost'>;
  if (step.kind === 'train') return boostOf(plan, step.inputs[1]);
  throw new Error(`calibrate: step ${key.slice(0, 12)} (${step.kind}) is not a model`);
}

/** The model a sampling step samples from, or a training step trains. */
function modelStep(plan: Plan, step: Step): string | null {
  if (step.kind === 'relabel') return step.inputs[1] ?? null;
  if (step.kind === 'train') return step.inputs[1];
  if (step.kind === 'boost') return step.key;
  return step.inputs[0] ?? null;
}

function maxTokensOf(step: Step): number {
  return step.kind === 'evaluate' ? (step.params as EvaluateParams).evaluate.maxTokens : (step.params as RolloutParams).maxTokens;
}

async function seconds(work: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await work();
  return (performance.now() - start) / 1000;
}

async function decodeRate(ctx: Pick<StepContext, 'session' | 'generationBatchSize'>, model: LoadedModel, boost: BoostParams, files: Record<string, string>, maxTokens: number): Promise<number> {
  const problems = (await problemSet(boost.train, boost.seed, files)).slice(0, ctx.generationBatchSize);
  const requests = problems.map((p) => ({ id: p.id, prompt: model.template.renderPrompt(stateConversation(episodeContext({ instruction: boost.instruction, feedback: '' }, p), [])) }));
  const generator = new Generator(model.config, model.params, model.tokenizer, ctx.session);
  // No stop token: every answer runs its full maxTokens, so the batch stays full while it is timed.
  const options = { temperature: 1, topP: 1, topK: 0, stopTokens: [], stopStrings: [], seed: 0, batchSize: ctx.generationBatchSize };
  await generator.generate(requests.slice(0, 1), { ...options, maxNewTokens: 2 });
  const rates: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    let generated = 0;
    const elapsed = await seconds(async () => {
      const out = await generator.generate(requests, { ...options, seed: i, maxNewTokens: maxTokens });
      generated = out.reduce((n, g) => n + g.tokens.length, 0);
    });
    rates.push(generated / elapsed);
  }
  return median(rates);
}

/** The boost's training examples, built as the boost step builds them. */
async function boostTraining(model: LoadedModel, boost: BoostParams, files: Record<string, string>) {
  return boostExamples(await problemSet(boost.train, boost.seed, files), {
    template: model.template,
    instruction: boost.instruction,
    maxLength: model.config.context,
    pack: boost.boost.pack,
    seed: hashSeed(boost.seed, 'boost-pack'),
  });
}

async function trainRate(ctx: Pick<StepContext, 'session'>, model: LoadedModel, boost: BoostParams, files: Record<string, string>, step: Step): Promise<number> {
  const optimizer = step.kind === 'train' ? (step.params as TrainParams).optimizer : boost.boost;
  const examples = await boostTraining(model, boost, files);
  const trainer = new Trainer(model.config, model.params, model.tokenizer.special.pad, adamwOf(optimizer), ctx.session);
  const batch = (i: number) => examples.slice((i * optimizer.batchSize) % examples.length).slice(0, optimizer.batchSize);
  await trainer.trainStep(batch(0), optimizer.lr);
  const rates: number[] = [];
  for (let i = 1; i <= REPEATS; i++) {
    const elapsed = await seconds(() => trainer.trainStep(batch(i), optimizer.lr));
    rates.push(batch(i).reduce((n, e) => n + e.tokens.length, 0) / elapsed);
  }
  return median(rates);
}

/**
 * The throughput of every graph that the steps `keys` of `plan` run (full fine-tuning only: a LoRA
 * step's graph is left to history), and the exact tokens of each boost among them (its examples are
 * built here anyway). `report` is told each graph as it is timed.
 */
export async function calibrate(
  ctx: Pick<StepContext, 'session' | 'generationBatchSize' | 'modelsHome'>,
  plan: Plan,
  keys: readonly string[],
  report: (line: string) => void = () => undefined,
): Promise<Calibration> {
  const rates: CalibratedRate[] = [];
  const tokens: Record<string, number> = {};
  const models = new Map<string, LoadedModel>();
  const modelOf = async (boost: Step<'boost'>) => {
    let model = models.get(boost.key);
    if (model === undefined) {
      model = await initialModel(ctx, boost.params);
      models.set(boost.key, model);
    }
    return model;
  };
  for (const key of keys) {
    const step = plan.steps[key];
    if (step.kind === 'boost') {
      const boost = step as Step<'boost'>;
      const examples = await boostTraining(await modelOf(boost), boost.params, plan.files);
      tokens[key] = examples.reduce((n, e) => n + e.tokens.length, 0) * boost.params.boost.epochs;
    }
    const work = WORK[step.kind];
    const graph = graphOf(step);
    const source = modelStep(plan, step);
    if (work === 'none' || graph === null || source === null || rates.some((r) => r.graph === graph && r.work === work)) continue;
    const boost = boostOf(plan, source);
    if (work === 'train' && boost.params.lora !== undefined) continue;
    const model = await modelOf(boost);
    const tokensPerSecond =
      work === 'sample' ? await decodeRate(ctx, model, boost.params, plan.files, maxTokensOf(step)) : await trainRate(ctx, model, boost.params, plan.files, step);
    report(`calibrated ${work === 'sample' ? 'decode' : 'train_step'} graph ${graph.slice(0, 12)} (${step.kind}): ${Math.round(tokensPerSecond)} tok/s`);
    rates.push({ graph, work, tokensPerSecond });
  }
  return { rates, tokens };
}
