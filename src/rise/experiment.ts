/**
 * A whole RISE experiment in one process: boost → iterations (rollout, relabel, filter, train) →
 * evaluation after the boost and after every iteration. This is the algorithm end to end without the
 * durable orchestration (Temporal steps, store, cache) that the product wraps around the same functions;
 * tests and quick benchmarks use it, and it is the reference for what the workflow's steps must compute.
 *
 * Seeds: problem sets, the initialisation, training shuffles and every sample derive from the config seed
 * and a name (e.g. ('rollout', iteration)); evaluation uses the same seed for every model, so models are
 * compared on the same problems with the same random streams.
 */

import { resolveModelConfig, type ModelConfig, type ModelConfigInput } from '../engine/config.ts';
import { initParameters } from '../engine/parameters.ts';
import { hashSeed } from '../engine/random.ts';
import type { SessionOptions } from '../engine/session.ts';
import type { NamedTensor } from '../engine/tensor.ts';
import { CharTokenizer } from '../engine/tokenizer.ts';
import { Trainer, type Example, type StepResult } from '../engine/trainer.ts';
import { createTask, generateArithmetic, type ArithmeticOptions, type Problem } from '../tasks/index.ts';
import { resolveRiseConfig, type DeepPartial, type RiseConfig } from './config.ts';
import type { Episode } from './episode.ts';
import { evaluatePolicy } from './evaluate.ts';
import { boostExamples, buildExamples, examplesOptionsOf } from './examples.ts';
import { filterEpisodes, type DropRule } from './filter.ts';
import { HEADLINE_METRICS, formatComparison, type MetricsTable } from './metrics.ts';
import { EnginePolicy, type Policy } from './policy.ts';
import type { Progress } from './progress.ts';
import { createRelabeler } from './relabel.ts';
import { collectEpisodes, type CollectStats } from './rollout.ts';
import { CompactTemplate } from './template.ts';

type ProblemSet = Omit<ArithmeticOptions, 'seed'> & { seed?: number };

export interface InProcessSpec extends DeepPartial<RiseConfig> {
  task?: {
    kind?: 'arithmetic';
    train?: ProblemSet;
    /** Held-out sets; a problem whose prompt is a training prompt, or repeats one earlier in the set, is removed. */
    eval?: (ProblemSet & { name: string })[];
  };
  model?: Omit<Partial<ModelConfigInput>, 'vocabSize'>;
}

export interface RunOptions {
  onProgress?: (p: Progress & { step: string }) => void | Promise<void>;
  /** Relabeling policy for `relabel.strategy: "expert"`. */
  expert?: Policy;
  /** Rows decoded together. */
  generationBatchSize?: number;
  /**
   * A boosted model (e.g. loaded from a checkpoint) to start from instead of boosting; it must match the
   * spec's model config. The result then reports no boost training.
   */
  base?: NamedTensor[];
  session?: SessionOptions;
}

export interface IterationResult {
  /** 0 = the boosted model. */
  iteration: number;
  label: string;
  evals: Record<string, MetricsTable>;
  collect?: CollectStats;
  dropped?: Record<DropRule, number>;
  examples?: { kept: number; tooLong: number };
  train: { steps: number; firstLoss: number; lastLoss: number };
  seconds: number;
}

export interface RunResult {
  config: RiseConfig;
  model: ModelConfig;
  problems: { train: number; eval: Record<string, number> };
  iterations: IterationResult[];
  /** Markdown: the headline metrics of every model on every evaluation set. */
  table: string;
  seconds: number;
}

const clone = (params: NamedTensor[]): NamedTensor[] => params.map((p) => ({ ...p, shape: [...p.shape], data: p.data.slice() }));

export async function runRiseInProcess(spec: InProcessSpec = {}, options: RunOptions = {}): Promise<RunResult> {
  const started = performance.now();
  const { task: taskSpec, model: modelSpec, ...riseSpec } = spec;
  const config = resolveRiseConfig(riseSpec);
  const tokenizer = new CharTokenizer();
  const model = resolveModelConfig({ seed: hashSeed(config.seed, 'init') >>> 1, ...modelSpec, vocabSize: tokenizer.vocabSize });
  const template = new CompactTemplate(tokenizer);
  const task = createTask('arithmetic', { unparsableReward: config.unparsableReward });
  const progress = (step: string) => (p: Progress) => options.onProgress?.({ ...p, step });

  const train = generateArithmetic({ count: 500, ...taskSpec?.train, seed: taskSpec?.train?.seed ?? hashSeed(config.seed, 'train') });
  const trainPrompts = new Set(train.map((p) => p.prompt));
  const evalSets: Record<string, Problem[]> = {};
  for (const set of taskSpec?.eval ?? [{ name: 'in-dist', count: 200 }]) {
    const { name, ...knobs } = set;
    // Held out and counted once: a prompt seen in training, or earlier in the same set, is left out.
    const seen = new Set(trainPrompts);
    evalSets[name] = [];
    for (const p of generateArithmetic({ ...knobs, seed: knobs.seed ?? hashSeed(config.seed, 'eval', name) })) {
      if (seen.has(p.prompt)) continue;
      seen.add(p.prompt);
      evalSets[name].push(p);
    }
  }

  const fit = async (step: string, init: NamedTensor[], examples: Example[], o: { epochs: number; lr: number; batchSize: number }) => {
    const trainer = new Trainer(model, init, tokenizer.special.pad, undefined, options.session);
    const report = progress(step);
    const result = await trainer.fit(examples, {
      ...o,
      seed: hashSeed(config.seed, 'fit', step),
      onStep: (r: StepResult, total: number) => report({ done: r.step, total, unit: 'steps', stage: `loss ${r.loss.toFixed(3)}` }),
    });
    const steps = result.steps;
    return { params: clone(trainer.params), train: { steps: steps.length, firstLoss: steps[0]?.loss ?? NaN, lastLoss: steps.at(-1)?.loss ?? NaN } };
  };
  const policyOf = (params: NamedTensor[], name: string) =>
    new EnginePolicy({ name, config: model, params, tokenizer, template, batchSize: options.generationBatchSize, session: options.session });
  const evaluateAll = async (policy: Policy, iteration: number) => {
    const evals: Record<string, MetricsTable> = {};
    for (const [name, problems] of Object.entries(evalSets)) {
      const r = await evaluatePolicy(policy, problems, { task, config, seed: hashSeed(config.seed, 'evaluate', name) }, { onProgress: progress(`iteration ${iteration}: evaluate ${name}`) });
      evals[name] = r.table;
    }
    return evals;
  };

  const iterations: IterationResult[] = [];
  let t0 = performance.now();
  const boost = options.base
    ? { params: clone(options.base), train: { steps: 0, firstLoss: NaN, lastLoss: NaN } }
    : await fit('boost', initParameters(model), boostExamples(train, { template, config, maxLength: model.context, pack: config.boost.pack, seed: hashSeed(config.seed, 'boost-pack') }), config.boost);
  const base = boost.params;
  iterations.push({ iteration: 0, label: 'boost', evals: await evaluateAll(policyOf(base, 'boost'), 0), train: boost.train, seconds: (performance.now() - t0) / 1000 });

  let current = base;
  let pool: { episode: Episode; origin: string }[] = [];
  for (let it = 1; it <= config.iterations; it++) {
    t0 = performance.now();
    const learner = policyOf(current, `iter-${it - 1}`);
    const relabeler = createRelabeler(config.relabel, learner, options.expert ?? null);
    const collected = await collectEpisodes(train, { task, learner, relabeler, config, seed: hashSeed(config.seed, 'rollout', it) }, { onProgress: progress(`iteration ${it}: rollout`) });
    const fresh = collected.episodes.map((episode) => ({ episode, origin: `iter-${it}` }));
    pool = config.train.aggregate ? [...pool, ...fresh] : fresh;
    const filtered = filterEpisodes(pool, config.filter);
    const built = buildExamples(filtered.kept, examplesOptionsOf(config, template, model.context));
    if (built.examples.length === 0) throw new Error(`iteration ${it}: no training examples survived filtering (dropped: ${JSON.stringify(filtered.counts)})`);
    const trained = await fit(`iteration ${it}: train`, config.train.initFrom === 'base' ? base : current, built.examples, config.train);
    current = trained.params;
    iterations.push({
      iteration: it,
      label: `iteration ${it}`,
      evals: await evaluateAll(policyOf(current, `iter-${it}`), it),
      collect: collected.stats,
      dropped: filtered.counts,
      examples: { kept: built.examples.length, tooLong: built.tooLong.length },
      train: trained.train,
      seconds: (performance.now() - t0) / 1000,
    });
  }

  const names = HEADLINE_METRICS.filter((m) => {
    const [k, t] = m.slice(1).split('@t').map(Number);
    return k <= config.evaluate.parallelK && t <= config.evaluate.turns;
  });
  const table = Object.keys(evalSets)
    .map((set) => `${set}\n\n${formatComparison(iterations.map((r) => ({ label: r.label, table: r.evals[set] })), names)}`)
    .join('\n\n');
  return {
    config,
    model,
    problems: { train: train.length, eval: Object.fromEntries(Object.entries(evalSets).map(([k, v]) => [k, v.length])) },
    iterations,
    table,
    seconds: (performance.now() - started) / 1000,
  };
}
