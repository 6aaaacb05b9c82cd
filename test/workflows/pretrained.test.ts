/**
 * A pretrained model with LoRA through the product path: a tiny random Llama with SmolLM2's real tokenizer
 * and chat template, put in a model store of the test's own, run as a `pretrained` model by name through
 * the whole workflow (boost, one RISE iteration, evaluation) with every fine-tuning training adapters only.
 * The model is random, so nothing here asserts learning; it asserts what LoRA and the model store promise:
 * checkpoints hold adapters over a named base, step keys name the base's digest, the adapters moved.
 */

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { createStepContext } from '../../activities/index.ts';
import { startOrAttach } from '../../src/client/start.ts';
import { createRiseWorker, installWorkerRuntime } from '../../src/client/worker.ts';
import { loadCheckpoint } from '../../src/engine/checkpoint.ts';
import { resolveModelConfig } from '../../src/engine/config.ts';
import { initParameters } from '../../src/engine/parameters.ts';
import { tokenizerFromJSON } from '../../src/engine/tokenizer-json.ts';
import { currentCompute } from '../../src/plan/compute.ts';
import { resolveStoredModels } from '../../src/plan/inputs.ts';
import { planExperiment, type Plan } from '../../src/plan/plan.ts';
import { metricValue } from '../../src/rise/metrics.ts';
import { addModel, type StoredModel } from '../../src/models/store.ts';
import { digestDataFiles } from '../../src/spec/data-files.ts';
import type { ExperimentSpec } from '../../src/spec/types.ts';
import { validateSpec } from '../../src/spec/validate.ts';
import { ModelResolutionError } from '../../src/steps/models.ts';
import { recordedEvaluation } from '../../src/steps/evaluation.ts';
import type { EvaluateParams, StepKind } from '../../src/steps/index.ts';
import { doneOutputs } from '../../src/steps/stored.ts';
import { getStep } from '../../src/store/index.ts';
import { loadTemporalConfig } from '../../temporal.config.ts';
import { smollm2Stored } from '../models/real-model.ts';
import { useTestEnvironment } from '../temporal/server.ts';
import { uniqueTaskQueue } from '../temporal/worker.ts';
import { ROOT, tempHome } from './helpers.ts';

installWorkerRuntime();

const FIXTURES = join(ROOT, 'src/tasks/fixtures');
const MODEL = 'tiny-chat';

/** A 2-layer random Llama that speaks SmolLM2's tokens and chat format, stored under MODEL in `home`. */
async function addTinyChat(home: string): Promise<StoredModel> {
  const smol = smollm2Stored();
  const tokenizer = tokenizerFromJSON(JSON.parse(readFileSync(join(smol.dir, 'tokenizer.json'), 'utf8')));
  const config = resolveModelConfig({ vocabSize: smol.config.vocabSize, layers: 2, dim: 32, heads: 4, kvHeads: 2, hidden: 64, context: 512, seed: 3 });
  return addModel(
    home,
    { config, params: initParameters(config), tokenizer, source: { format: 'huggingface', architecture: 'llama', file: 'test' }, chat: { stop: smol.card.chat.stop } },
    MODEL,
  );
}

function tinyChatSpec(name: string, model = MODEL): ExperimentSpec {
  return validateSpec({
    name,
    seed: 3,
    task: {
      kind: 'gsm8k',
      train: { path: join(FIXTURES, 'gsm8k-train.jsonl'), count: null },
      eval: [{ name: 'test', path: join(FIXTURES, 'gsm8k-test.jsonl'), count: 4 }],
    },
    model: { kind: 'pretrained', name: model, context: 512 },
    boost: { epochs: 1, lr: 0.01, batchSize: 4 },
    iterations: 1,
    rollout: { maxTokens: 16 },
    relabel: { samples: 2 },
    train: { lora: { rank: 4, alpha: 8 }, epochs: 1, lr: 0.01, batchSize: 4 },
    evaluate: { turns: 2, parallelK: 2, maxTokens: 16 },
  });
}

async function planWith(spec: ExperimentSpec, modelsHome: string): Promise<Plan> {
  return planExperiment(spec, { compute: currentCompute(), dataDigests: await digestDataFiles(spec), models: await resolveStoredModels(spec, modelsHome) });
}

describe('a pretrained model with LoRA through the product path', () => {
  const temporal = useTestEnvironment();

  test('boost, one RISE iteration and evaluation train adapters over the stored model', { timeout: 600_000 }, async (t) => {
    const { server, env } = temporal();
    const modelsHome = tempHome(t);
    const base = await addTinyChat(modelsHome);
    const context = await createStepContext({ home: tempHome(t), modelsHome });
    t.after(async () => context.store.close());
    const spec = tinyChatSpec('pretrained-lora');
    const plan = await planWith(spec, modelsHome);
    const taskQueue = uniqueTaskQueue('pretrained');
    const worker = await createRiseWorker({ connection: env.nativeConnection, namespace: server.namespace, taskQueue, context });
    const launch = await startOrAttach({ client: env.client, store: context.store, spec, plan, taskQueue, activities: loadTemporalConfig({}).activities });
    const started = performance.now();
    await worker.runUntil(launch.handle.result());
    t.diagnostic(`wall ${((performance.now() - started) / 1000).toFixed(1)} s`);

    const [arm] = plan.arms;
    for (const use of arm.steps) assert.equal((await getStep(context.store, use.key))?.status, 'done', `${use.kind} ${use.iteration} is done`);
    const keyOf = (kind: StepKind, iteration: number) => arm.steps.find((s) => s.kind === kind && s.iteration === iteration)!.key;
    const outputs = async <K extends StepKind>(kind: K, iteration: number) => {
      const o = await doneOutputs(context.store, keyOf(kind, iteration), kind);
      assert.ok(o, `${kind} ${iteration} has outputs`);
      return o;
    };

    // The plan keys the model by the digest its name stood for, and asks every fine-tuning for adapters.
    const boostParams = plan.steps[keyOf('boost', 0)].params as { model: unknown; lora?: unknown };
    assert.deepEqual(boostParams.model, { kind: 'pretrained', digest: base.card.digest, config: base.config });
    for (const kind of ['boost', 'train'] as const) {
      const iteration = kind === 'boost' ? 0 : 1;
      assert.deepEqual((plan.steps[keyOf(kind, iteration)].params as { lora?: unknown }).lora, { rank: 4, alpha: 8, targets: ['q', 'k', 'v', 'o', 'gate', 'up', 'down'], dropout: 0 });
    }

    // Each fine-tuning saved adapters only, over the stored model named by digest, and moved them from zero.
    for (const [kind, iteration] of [['boost', 0], ['train', 1]] as const) {
      const fitted = await outputs(kind, iteration);
      assert.ok(fitted.train.steps > 0 && Number.isFinite(fitted.train.lastLoss), `${kind} trained: ${JSON.stringify(fitted.train)}`);
      const dir = resolve(context.store.home, fitted.model.dir);
      assert.ok(dir.startsWith(join(context.store.home, 'models')), `${kind} checkpoint ${dir} is under the store's models`);
      assert.ok(existsSync(join(dir, 'adapters.safetensors')), `${kind} checkpoint holds adapters.safetensors`);
      assert.ok(!existsSync(join(dir, 'model.safetensors')), `${kind} checkpoint holds no model.safetensors`);
      const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { lora?: unknown };
      assert.deepEqual(config.lora, { rank: 4, alpha: 8, targets: ['q', 'k', 'v', 'o', 'gate', 'up', 'down'], dropout: 0 });
      assert.deepEqual(JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')), { base: base.card.digest });
      const adapters = (await loadCheckpoint(dir)).params;
      const bs = adapters.filter((p) => p.name.endsWith('.b'));
      assert.equal(bs.length, 2 * 7, `${kind}: one B per layer and target`);
      for (const b of bs) assert.ok(b.data.some((x) => x !== 0), `${kind}: ${b.name} moved from its zero init`);
    }

    // Sampling ran through the chat template: the ledger and the tables are complete.
    assert.equal((await outputs('rollout', 1)).episodes, 12);
    assert.equal((await outputs('relabel', 1)).episodes, 12);
    const filter = await outputs('filter', 1);
    const train = await outputs('train', 1);
    assert.ok(filter.kept > 0);
    assert.equal(train.examples + train.tooLong, filter.kept);
    for (const iteration of [0, 1]) {
      const key = keyOf('evaluate', iteration);
      assert.equal((await outputs('evaluate', iteration)).problems, 4);
      const table = (await recordedEvaluation(context.store, key, plan.steps[key].params as EvaluateParams)).byRule.expected;
      t.diagnostic(`evaluate ${iteration}: ${table.rows.map((r) => `${r.name} ${(100 * r.value).toFixed(0)}`).join('  ')}`);
      assert.deepEqual(table.rows.map((r) => r.name), ['m1@t1', 'm2@t1', 'm1@t2', 'p1@t1', 'p1@t2']);
      assert.equal(table.problems, 4);
      for (const r of table.rows) assert.ok(r.problems === 4 && r.value >= 0 && r.value <= 1 && Math.abs(r.correct - r.value * r.problems) < 1e-9);
      assert.ok(metricValue(table, 'p1@t2') >= metricValue(table, 'p1@t1'));
    }
  });

  test('a spec naming a model the store lacks fails planning, saying how to get it', async (t) => {
    const modelsHome = tempHome(t);
    await addTinyChat(modelsHome);
    const spec = tinyChatSpec('missing-model', 'no-such-model');
    await assert.rejects(planWith(spec, modelsHome), (err: Error) => {
      assert.ok(err instanceof ModelResolutionError, `${err.name}: ${err.message}`);
      assert.match(err.message, /no model "no-such-model" in the model store/);
      assert.match(err.message, /\(it has: tiny-chat\)/);
      assert.match(err.message, /`rise model pull NAME`/);
      return true;
    });
  });
});
