/**
 * The training loop around the train_step graph: batching with padding, a warmup + cosine learning
 * rate schedule, epochs with a seeded shuffle, evaluation loss, checkpoints and progress callbacks
 * (which activities turn into heartbeats). Parameters and AdamW moments live in JS memory and make a
 * round trip through the session each step.
 *
 * Under LoRA (`Trainer.withLora`) the trainable tensors are the adapters: they and their moments make
 * the round trip, while the base parameters are frozen inputs wrapped once and fed to every run.
 * Checkpoints then hold the adapters, their optimizer state and the LoRA config, not the base model.
 */
import ort from 'onnxruntime-node';
import { DEFAULT_ADAMW, type AdamWConfig } from './adamw.ts';
import type { ModelConfig } from './config.ts';
import { trainableSpecs } from './graphs.ts';
import { initLoraAdapters, resolveLoraConfig, type LoraConfig } from './lora.ts';
import { parameterSpecs } from './parameters.ts';
import { Rng } from './random.ts';
import { getSession, type SessionOptions } from './session.ts';
import { shareTensors, type NamedTensor } from './tensor.ts';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.ts';
import type { Tokenizer } from './tokenizer.ts';

/** A training sequence: token ids and, per token, its weight as a prediction target (0 = no loss). */
export interface Example {
  tokens: number[];
  weights: number[];
}

export interface Batch {
  tokens: BigInt64Array;
  weights: Float32Array;
  rows: number;
  length: number;
}

/** Right-pads examples to the longest one with `pad` tokens of weight 0 (never a target). */
export function collate(examples: Example[], pad: number): Batch {
  const length = Math.max(...examples.map((e) => e.tokens.length));
  const tokens = new BigInt64Array(examples.length * length).fill(BigInt(pad));
  const weights = new Float32Array(examples.length * length);
  examples.forEach((e, r) => {
    for (let t = 0; t < e.tokens.length; t++) {
      tokens[r * length + t] = BigInt(e.tokens[t]);
      weights[r * length + t] = e.weights[t];
    }
  });
  return { tokens, weights, rows: examples.length, length };
}

export interface Schedule {
  lr: number;
  /** Steps of linear warmup from 0. */
  warmupSteps: number;
  totalSteps: number;
  /** The cosine decays to lr · minLrRatio at totalSteps. */
  minLrRatio: number;
}

export function learningRate(s: Schedule, step: number): number {
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps;
  const span = Math.max(1, s.totalSteps - s.warmupSteps);
  const progress = Math.min(1, (step - s.warmupSteps) / span);
  const min = s.lr * s.minLrRatio;
  return min + 0.5 * (s.lr - min) * (1 + Math.cos(Math.PI * progress));
}

export interface StepResult {
  step: number;
  loss: number;
  gradNorm: number;
  lr: number;
  tokens: number;
}

export interface FitOptions {
  epochs: number;
  batchSize: number;
  lr: number;
  /** Fraction of all steps spent warming up. */
  warmup?: number;
  minLrRatio?: number;
  seed?: number;
  evalExamples?: Example[];
  /** Called after every step; throwing from it (e.g. on cancellation) stops training. */
  onStep?: (r: StepResult, total: number) => void | Promise<void>;
  /** Called after every epoch with the evaluation loss, when evaluation examples are given. */
  onEpoch?: (epoch: number, evalLoss: number | null) => void | Promise<void>;
  /**
   * Saves parameters and optimizer state every `every` steps (and at the end) into `dir`, so a
   * crashed run resumes with `Trainer.resume(dir)` and a `fit` over the same data and options.
   */
  checkpoint?: { dir: string; every: number; tokenizer: Tokenizer };
  /** Steps of this fit already taken (a resumed trainer's `step` when the fit began from fresh state). */
  resumeFromStep?: number;
}

export interface FitResult {
  steps: StepResult[];
  evalLoss: number[];
}

export class NonFiniteLossError extends Error {}

/** A LoRA fit's frozen side: the adapters' config and the base parameters they adapt. */
export interface LoraBase {
  lora: LoraConfig;
  base: NamedTensor[];
}

export interface LoraTrainerOptions {
  optimizer?: AdamWConfig;
  session?: SessionOptions;
  /** Adapters to continue from; fresh ones (B = 0, A seeded by `seed`) when absent. */
  adapters?: NamedTensor[];
  seed?: number;
}

function checkNames(tensors: NamedTensor[], expected: { name: string; shape: number[] }[], what: string): void {
  if (tensors.length !== expected.length || expected.some((s, i) => s.name !== tensors[i].name || s.shape.join() !== tensors[i].shape.join())) {
    throw new Error(`Trainer: ${what} do not match the model config (names, shapes or order differ)`);
  }
}

function tensor(t: NamedTensor): ort.Tensor {
  return new ort.Tensor('float32', t.data, t.shape);
}

export class Trainer {
  /** What training updates: the model's parameters, or under LoRA the adapters (in `loraSpecs` order). */
  readonly params: NamedTensor[];
  /** Set under LoRA: the frozen base and the adapters' config. */
  readonly lora: LoraBase | undefined;
  private m: NamedTensor[];
  private v: NamedTensor[];
  /** The frozen base parameters as session feeds, made once. */
  private readonly frozen: Record<string, ort.Tensor> = {};
  /** Optimizer steps taken so far (AdamW's bias correction uses step + 1). */
  step = 0;

  constructor(
    readonly config: ModelConfig,
    params: NamedTensor[],
    readonly pad: number,
    readonly optimizer: AdamWConfig = DEFAULT_ADAMW,
    readonly session: SessionOptions = {},
    state?: { step: number; m: NamedTensor[]; v: NamedTensor[] },
    lora?: LoraBase,
  ) {
    if (lora !== undefined) {
      checkNames(lora.base, parameterSpecs(config), 'base parameters');
      this.lora = { lora: resolveLoraConfig(lora.lora), base: lora.base };
      // Frozen weights cross to the compute thread once, not with every step.
      for (const p of shareTensors(lora.base)) this.frozen[p.name] = tensor(p);
    }
    checkNames(params, trainableSpecs(config, this.lora?.lora), lora === undefined ? 'parameters' : 'LoRA adapters');
    this.params = params.map((p) => ({ ...p, data: p.data.slice() }));
    const zeros = () => params.map((p) => ({ name: p.name, shape: p.shape, data: new Float32Array(p.data.length) }));
    this.m = state?.m ?? zeros();
    this.v = state?.v ?? zeros();
    this.step = state?.step ?? 0;
  }

  /**
   * A trainer of LoRA adapters over frozen `base` parameters. The base is kept by reference, not
   * copied, and must not change while the trainer uses it.
   */
  static withLora(config: ModelConfig, base: NamedTensor[], lora: LoraConfig, pad: number, o: LoraTrainerOptions = {}): Trainer {
    const resolved = resolveLoraConfig(lora);
    const adapters = o.adapters ?? initLoraAdapters(config, resolved, o.seed ?? 0);
    return new Trainer(config, adapters, pad, o.optimizer, o.session, undefined, { lora: resolved, base });
  }

  /**
   * A trainer restored from a checkpoint directory written by `fit`, including its optimizer state;
   * `fit` with the same examples and options then continues where the checkpoint was taken. A LoRA
   * checkpoint holds only the adapters: its frozen `base` parameters must be given again.
   */
  static async resume(dir: string, pad: number, optimizer: AdamWConfig = DEFAULT_ADAMW, session: SessionOptions = {}, base?: NamedTensor[]): Promise<Trainer> {
    const ckpt = await loadCheckpoint(dir);
    if (!ckpt.optimizer) throw new Error(`${dir}: checkpoint has no optimizer state to resume from`);
    if (ckpt.lora !== undefined && base === undefined) throw new Error(`${dir}: a LoRA checkpoint holds adapters only; resuming needs the base parameters`);
    if (ckpt.lora === undefined && base !== undefined) throw new Error(`${dir}: not a LoRA checkpoint, yet base parameters were given`);
    const named = new Map(ckpt.optimizer.tensors.map((t) => [t.name, t]));
    const moment = (prefix: string) =>
      ckpt.params.map((p) => {
        const t = named.get(`${prefix}.${p.name}`);
        if (!t) throw new Error(`${dir}: optimizer state lacks ${prefix}.${p.name}`);
        return { ...t, name: p.name };
      });
    const state = { step: ckpt.optimizer.step, m: moment('m'), v: moment('v') };
    const lora = ckpt.lora === undefined ? undefined : { lora: ckpt.lora, base: base! };
    return new Trainer(ckpt.config, ckpt.params, pad, optimizer, session, state, lora);
  }

  /** Under LoRA the checkpoint holds the adapters (as its params) and the LoRA config, not the base. */
  async save(dir: string, tokenizer: Tokenizer, meta: Record<string, unknown> = {}): Promise<void> {
    await saveCheckpoint(dir, {
      config: this.config,
      tokenizer,
      params: this.params,
      ...(this.lora === undefined ? {} : { lora: this.lora.lora }),
      optimizer: this.optimizerState(),
      meta: { ...meta, step: this.step },
    });
  }

  /** AdamW moments named `m.<param>` / `v.<param>`, for optimizer checkpoints. */
  optimizerState(): { step: number; tensors: NamedTensor[] } {
    return {
      step: this.step,
      tensors: [...this.m.map((t) => ({ ...t, name: `m.${t.name}` })), ...this.v.map((t) => ({ ...t, name: `v.${t.name}` }))],
    };
  }

  private trainSession() {
    return getSession({ kind: 'train_step', config: this.config, optimizer: this.optimizer, ...this.loraRecipe() }, this.session);
  }

  private lossSession() {
    return getSession({ kind: 'loss', config: this.config, ...this.loraRecipe() }, this.session);
  }

  /** A plain model's recipes carry no `lora` key at all, so they serialize as they always have. */
  private loraRecipe(): { lora?: LoraConfig } {
    return this.lora === undefined ? {} : { lora: this.lora.lora };
  }

  /** The frozen base (under LoRA) and the current trainable tensors, as feeds. */
  private parameterFeeds(): Record<string, ort.Tensor> {
    const feeds = { ...this.frozen };
    for (const p of this.params) feeds[p.name] = tensor(p);
    return feeds;
  }

  private checkLength(examples: Example[]): void {
    for (const [i, e] of examples.entries()) {
      if (e.tokens.length !== e.weights.length) throw new Error(`example ${i}: ${e.tokens.length} tokens but ${e.weights.length} weights`);
      if (e.tokens.length > this.config.context) {
        throw new Error(`example ${i}: ${e.tokens.length} tokens exceed the model context of ${this.config.context}`);
      }
      if (e.tokens.length < 2) throw new Error(`example ${i}: needs at least 2 tokens (a prefix and a target)`);
    }
  }

  /** One optimizer step on one batch. Parameters change only if the loss and gradient are finite. */
  async trainStep(examples: Example[], lr: number): Promise<StepResult> {
    this.checkLength(examples);
    const batch = collate(examples, this.pad);
    const session = await this.trainSession();
    const feeds: Record<string, ort.Tensor> = {
      ...this.parameterFeeds(),
      tokens: new ort.Tensor('int64', batch.tokens, [batch.rows, batch.length]),
      weights: new ort.Tensor('float32', batch.weights, [batch.rows, batch.length]),
      lr: new ort.Tensor('float32', Float32Array.of(lr), []),
      step: new ort.Tensor('float32', Float32Array.of(this.step + 1), []),
    };
    this.params.forEach((p, i) => {
      feeds[`m.${p.name}`] = tensor(this.m[i]);
      feeds[`v.${p.name}`] = tensor(this.v[i]);
    });
    const out = await session.run(feeds);
    const loss = (out.loss.data as Float32Array)[0];
    const gradNorm = (out.grad_norm.data as Float32Array)[0];
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      throw new NonFiniteLossError(`training diverged at step ${this.step + 1}: loss ${loss}, gradient norm ${gradNorm} (lr ${lr})`);
    }
    this.params.forEach((p, i) => {
      p.data = out[`new.${p.name}`].data as Float32Array;
      this.m[i].data = out[`new_m.${p.name}`].data as Float32Array;
      this.v[i].data = out[`new_v.${p.name}`].data as Float32Array;
    });
    this.step++;
    const tokens = batch.weights.reduce((n, w) => n + (w > 0 ? 1 : 0), 0);
    return { step: this.step, loss, gradNorm, lr, tokens };
  }

  /** Weighted loss over examples (the training objective, without updating anything). */
  async evaluate(examples: Example[], batchSize = 32): Promise<{ loss: number; nll: number[] }> {
    this.checkLength(examples);
    const session = await this.lossSession();
    let weighted = 0;
    let count = 0;
    const nll: number[] = [];
    for (let i = 0; i < examples.length; i += batchSize) {
      const chunk = examples.slice(i, i + batchSize);
      const batch = collate(chunk, this.pad);
      const feeds: Record<string, ort.Tensor> = {
        ...this.parameterFeeds(),
        tokens: new ort.Tensor('int64', batch.tokens, [batch.rows, batch.length]),
        weights: new ort.Tensor('float32', batch.weights, [batch.rows, batch.length]),
      };
      const out = await session.run(feeds);
      // Recombine per-batch means into one mean over all trained tokens.
      const trained = chunk.reduce((n, e) => n + e.weights.slice(1).filter((w) => w > 0).length, 0);
      weighted += (out.loss.data as Float32Array)[0] * Math.max(trained, 1);
      count += trained;
      nll.push(...(out.nll.data as Float32Array));
    }
    return { loss: count > 0 ? weighted / count : 0, nll };
  }

  /** Epochs of shuffled mini-batches under a warmup + cosine schedule. */
  async fit(examples: Example[], o: FitOptions): Promise<FitResult> {
    if (examples.length === 0) throw new Error('fit: no training examples');
    this.checkLength(examples);
    const perEpoch = Math.ceil(examples.length / o.batchSize);
    const total = perEpoch * o.epochs;
    const schedule: Schedule = {
      lr: o.lr,
      warmupSteps: Math.round(total * (o.warmup ?? 0.05)),
      totalSteps: total,
      minLrRatio: o.minLrRatio ?? 0.1,
    };
    const result: FitResult = { steps: [], evalLoss: [] };
    // The seeded shuffles replay the same batch order, so skipping the batches already taken
    // continues exactly where a checkpoint stopped.
    const resumeAt = o.resumeFromStep ?? 0;
    if (resumeAt > total) throw new Error(`fit: trainer is at step ${resumeAt}, beyond this fit's ${total} steps`);
    let done = 0;
    for (let epoch = 0; epoch < o.epochs; epoch++) {
      if (done + perEpoch <= resumeAt) {
        done += perEpoch;
        continue;
      }
      const order = shuffled(examples.length, new Rng(o.seed ?? 0, 'epoch', epoch));
      for (let b = 0; b < perEpoch; b++, done++) {
        if (done < resumeAt) continue;
        const batch = order.slice(b * o.batchSize, (b + 1) * o.batchSize).map((i) => examples[i]);
        const r = await this.trainStep(batch, learningRate(schedule, done));
        result.steps.push(r);
        await o.onStep?.(r, total);
        if (o.checkpoint && ((done + 1) % o.checkpoint.every === 0 || done + 1 === total)) {
          await this.save(o.checkpoint.dir, o.checkpoint.tokenizer, { epoch });
        }
      }
      const evalLoss = o.evalExamples?.length ? (await this.evaluate(o.evalExamples, o.batchSize)).loss : null;
      if (evalLoss !== null) result.evalLoss.push(evalLoss);
      await o.onEpoch?.(epoch, evalLoss);
    }
    return result;
  }
}

function shuffled(n: number, rng: Rng): number[] {
  const order = [...Array(n).keys()];
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}
