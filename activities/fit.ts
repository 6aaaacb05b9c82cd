/**
 * Training inside a step, shared by boost and train: a resumable fit. The trainer checkpoints its
 * parameters and optimizer state every few steps under the step's key and generation, and appends each
 * step's loss to a log beside it; a retried attempt resumes from the checkpoint (same shuffles, so the
 * same batches follow) and keeps the losses logged up to it. The finished model is saved under the
 * models folder and the loss curve stored as an artifact, for reports.
 */

import { existsSync } from 'node:fs';
import { appendFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Trainer, type Example } from '../src/engine/trainer.ts';
import type { LoraConfig } from '../src/engine/lora.ts';
import type { NamedTensor } from '../src/engine/tensor.ts';
import type { OptimizerSpec } from '../src/spec/types.ts';
import type { FitOutputs } from '../src/steps/index.ts';
import { adamwOf } from '../src/steps/models.ts';
import { putJson } from '../src/store/index.ts';
import type { StepContext } from './context.ts';
import { saveModel, type LoadedModel } from './models.ts';
import type { StepRun } from './step.ts';

/** The weights LoRA adapts: the stored model's own, never a copy with earlier adapters merged in. */
function frozenBase(init: LoadedModel): NamedTensor[] {
  if (init.base === null) throw new Error('LoRA fine-tuning needs a pretrained model (kind "pretrained"); the built-in model is trained in full');
  return init.base.params;
}

/** Optimizer steps between resumable checkpoints. */
const CHECKPOINT_EVERY = 25;

/**
 * Fits `init` on `examples`: every weight, or under `lora` the adapters only (continuing `init`'s own
 * adapters when it has them, else fresh ones), over the frozen weights of its stored base model.
 */
export async function fitModel(
  ctx: StepContext,
  run: Pick<StepRun, 'attempt' | 'progress'>,
  init: LoadedModel,
  examples: Example[],
  optimizer: OptimizerSpec,
  seed: number,
  lora: LoraConfig | null,
): Promise<FitOutputs> {
  const { key, generation } = run.attempt;
  const dir = join(ctx.checkpointsDir, key, `g${generation}`);
  const checkpoint = join(dir, 'trainer');
  const lossLog = join(dir, 'losses.jsonl');
  const pad = init.tokenizer.special.pad;
  const adamw = adamwOf(optimizer);
  const frozen = lora === null ? undefined : frozenBase(init);
  await mkdir(dir, { recursive: true });

  let trainer: Trainer | undefined;
  let losses: number[] = [];
  if (existsSync(checkpoint)) {
    const logged = (await readFile(lossLog, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
    const resumed = await Trainer.resume(checkpoint, pad, adamw, ctx.session, frozen).catch(() => undefined);
    // An unreadable checkpoint, or a loss log shorter than it (lost in a crash), is started over.
    if (resumed !== undefined && logged.length >= resumed.step) {
      trainer = resumed;
      losses = logged.slice(0, resumed.step).map(Number);
    }
  }
  if (trainer === undefined) {
    trainer =
      lora === null || frozen === undefined
        ? new Trainer(init.config, init.params, pad, adamw, ctx.session)
        : Trainer.withLora(init.config, frozen, lora, pad, { optimizer: adamw, session: ctx.session, adapters: init.adapters?.tensors, seed });
  }
  // Steps logged after the checkpoint are taken again; the log restarts from it.
  await writeFile(lossLog, losses.map((l) => `${l}\n`).join(''));
  const resumed = trainer.step;

  if (optimizer.epochs > 0) {
    await trainer.fit(examples, {
      epochs: optimizer.epochs,
      batchSize: optimizer.batchSize,
      lr: optimizer.lr,
      warmup: optimizer.warmup,
      minLrRatio: optimizer.minLrRatio,
      seed,
      resumeFromStep: resumed,
      checkpoint: { dir: checkpoint, every: CHECKPOINT_EVERY, tokenizer: init.tokenizer },
      onStep: async (r, total) => {
        losses.push(r.loss);
        await appendFile(lossLog, `${r.loss}\n`);
        run.progress({ done: r.step, total, unit: 'steps', stage: `loss ${r.loss.toFixed(3)}${resumed > 0 ? ` (resumed at step ${resumed})` : ''}` });
      },
    });
  }
  const model = await saveModel(ctx, key, generation, { config: init.config, tokenizer: init.tokenizer, params: trainer.params, lora, base: init.base?.digest ?? null });
  const outputs: FitOutputs = {
    model,
    train: { steps: losses.length, firstLoss: losses[0] ?? null, lastLoss: losses.at(-1) ?? null },
    losses: await putJson(ctx.store, losses, 'losses'),
    tokens: examples.reduce((n, e) => n + e.tokens.length, 0) * optimizer.epochs,
  };
  // The model is saved; the resumable state is no longer needed.
  await rm(dir, { recursive: true, force: true });
  return outputs;
}
