import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { DEFAULT_ADAMW } from '../../src/engine/adamw.ts';
import { loadCheckpoint } from '../../src/engine/checkpoint.ts';
import { resolveModelConfig, type ModelConfig } from '../../src/engine/config.ts';
import { buildForwardGraph, buildTrainStepGraph, weightedNll } from '../../src/engine/graphs.ts';
import { initLoraAdapters, LORA_TARGETS, loraSpecs, mergeLora, resolveLoraConfig, type LoraConfig } from '../../src/engine/lora.ts';
import { initParameters, parameterSpecs } from '../../src/engine/parameters.ts';
import { Rng } from '../../src/engine/random.ts';
import { createSession } from '../../src/engine/session.ts';
import type { NamedTensor } from '../../src/engine/tensor.ts';
import { CharTokenizer } from '../../src/engine/tokenizer.ts';
import { Trainer, type Example } from '../../src/engine/trainer.ts';
import { gradCheck } from './gradcheck.ts';

const every: LoraConfig = { rank: 2, alpha: 4, targets: [...LORA_TARGETS], dropout: 0 };

test('a LoRA config is checked field by field and its targets put in canonical order', () => {
  assert.deepEqual(resolveLoraConfig({ rank: 4, alpha: 8, targets: ['down', 'q', 'v'], dropout: 0 }).targets, ['q', 'v', 'down']);
  assert.throws(() => resolveLoraConfig({ ...every, rank: 0 }), /lora config: "rank" must be a positive integer, got 0/);
  assert.throws(() => resolveLoraConfig({ ...every, alpha: -1 }), /"alpha" must be a positive number/);
  assert.throws(() => resolveLoraConfig({ ...every, targets: [] }), /"targets" must name at least one/);
  assert.throws(() => resolveLoraConfig({ ...every, targets: ['q', 'x' as 'q'] }), /unknown projection "x"/);
  assert.throws(() => resolveLoraConfig({ ...every, targets: ['q', 'q'] }), /repeats a projection/);
  assert.throws(() => resolveLoraConfig({ ...every, dropout: 0.05 }), /"dropout" must be 0 \(LoRA dropout is not implemented\), got 0.05/);
});

test('adapter specs: A [in, r] and B [r, out] per targeted block of each layer', () => {
  const config = resolveModelConfig({ vocabSize: 10, layers: 2, dim: 12, heads: 3, kvHeads: 1, hidden: 20 });
  const specs = loraSpecs(config, resolveLoraConfig({ rank: 3, alpha: 3, targets: ['k', 'o', 'up'], dropout: 0 }));
  assert.deepEqual(
    specs.slice(0, 6).map((s) => [s.name, s.shape, s.init]),
    [
      ['lora.layers.0.k.a', [12, 3], 'normal'],
      ['lora.layers.0.k.b', [3, 4], 'zeros'],
      ['lora.layers.0.o.a', [12, 3], 'normal'],
      ['lora.layers.0.o.b', [3, 12], 'zeros'],
      ['lora.layers.0.up.a', [12, 3], 'normal'],
      ['lora.layers.0.up.b', [3, 20], 'zeros'],
    ],
  );
  assert.equal(specs.length, 12);
});

/** The weighted loss through every adapter, differentiated w.r.t. adapters and base alike, in float64. */
test('LoRA gradient (every target, GQA, QKV bias) matches central differences', async () => {
  const config = resolveModelConfig({ vocabSize: 11, layers: 1, dim: 8, heads: 2, kvHeads: 1, hidden: 12, context: 8, qkvBias: true });
  const r = await gradCheck({
    build: (g, x) => {
      const p = new Map(parameterSpecs(config).map((s) => [s.name, x.float(s.shape, -0.5, 0.5)]));
      const a = new Map(loraSpecs(config, every).map((s) => [s.name, x.float(s.shape, -0.5, 0.5)]));
      const tokens = x.int64([2, 5], [1, 4, 2, 9, 10, 3, 0, 7, 7, 5]);
      const w = g.constant(Float64Array.from([0, 0, 1, 2, 1, 0, 1, 0, 0.5, 1]), 'float64', [2, 5]);
      return weightedNll(g, config, p, tokens, w, { lora: every, p: a }).loss;
    },
  });
  assert.ok(r.checked > 500, `only ${r.checked} entries checked`);
  assert.ok(r.maxRelError < 1e-6, `max relative error ${r.maxRelError} over ${r.checked} entries`);
});

test('the LoRA train step takes the base as frozen inputs and updates only the adapters', () => {
  const config = resolveModelConfig({ vocabSize: 11, layers: 2, dim: 8, heads: 2, hidden: 12, context: 8 });
  const lora = resolveLoraConfig({ rank: 2, alpha: 2, targets: ['q', 'down'], dropout: 0 });
  const g = buildTrainStepGraph(config, DEFAULT_ADAMW, 'float32', lora);
  const adapters = loraSpecs(config, lora).map((s) => s.name);
  const base = parameterSpecs(config).map((s) => s.name);
  assert.deepEqual(
    g.inputs.map((v) => v.name),
    [...base, ...adapters, ...adapters.map((n) => `m.${n}`), ...adapters.map((n) => `v.${n}`), 'tokens', 'weights', 'lr', 'step'],
  );
  assert.deepEqual(
    g.outputs.map((v) => v.name),
    ['loss', 'nll', 'grad_norm', ...adapters.flatMap((n) => [`new.${n}`, `new_m.${n}`, `new_v.${n}`])],
  );
});

const tokenizer = new CharTokenizer();
const config = resolveModelConfig({ vocabSize: tokenizer.vocabSize, layers: 2, dim: 16, heads: 4, kvHeads: 2, hidden: 32, context: 16, seed: 3 });
const rng = new Rng('lora-test');
const examples: Example[] = Array.from({ length: 8 }, (_, i) => {
  const n = 5 + (i % 4);
  return { tokens: Array.from({ length: n }, () => 7 + rng.int(20)), weights: Array.from({ length: n }, (_, t) => (t < 2 ? 0 : 1)) };
});
const batch = examples.slice(0, 4).map((e) => e.tokens.slice(0, 5));

async function logits(c: ModelConfig, params: NamedTensor[], lora?: { config: LoraConfig; adapters: NamedTensor[] }): Promise<Float32Array> {
  const session = await createSession(buildForwardGraph(c, 'float32', lora?.config));
  const feeds: Record<string, ort.Tensor> = { tokens: new ort.Tensor('int64', BigInt64Array.from(batch.flat().map(BigInt)), [batch.length, 5]) };
  for (const p of [...params, ...(lora?.adapters ?? [])]) feeds[p.name] = new ort.Tensor('float32', p.data, p.shape);
  return (await session.run(feeds)).logits.data as Float32Array;
}

test('fresh adapters (B = 0) leave the logits exactly those of the base model', async () => {
  const base = initParameters(config);
  const adapters = initLoraAdapters(config, every, 1);
  assert.ok(adapters.some((t) => t.data.some((x) => x !== 0)), 'A is initialised');
  assert.deepEqual(await logits(config, base, { config: every, adapters }), await logits(config, base));
});

test('a LoRA fit changes only the adapters, and mergeLora reproduces its logits with the plain graph', async () => {
  // A fresh model's tied head (std 0.02) caps how far any hidden state can move the logits; a wider
  // embedding gives the frozen head room, as a pretrained one has.
  const base = initParameters(config).map((p) => (p.name === 'tok_emb' ? { ...p, data: p.data.map((x) => x * 25) } : p));
  const frozen = base.map((p) => p.data.slice());
  const trainer = Trainer.withLora(config, base, every, tokenizer.special.pad, { seed: 1 });
  const before = await trainer.evaluate(examples);
  const fit = await trainer.fit(examples, { epochs: 10, batchSize: 4, lr: 2e-2, evalExamples: examples });
  assert.ok(fit.evalLoss.at(-1)! < before.loss * 0.9, `eval loss ${before.loss} → ${fit.evalLoss.at(-1)}`);
  base.forEach((p, i) => assert.deepEqual(p.data, frozen[i], `base parameter ${p.name} changed`));
  assert.ok(trainer.params.every((t) => t.name.startsWith('lora.')));

  const adapted = await logits(config, base, { config: every, adapters: trainer.params });
  const merged = await logits(config, mergeLora(base, trainer.params, config, every));
  const plain = await logits(config, base);
  let diff = 0;
  let moved = 0;
  adapted.forEach((x, i) => {
    diff = Math.max(diff, Math.abs(x - merged[i]));
    moved = Math.max(moved, Math.abs(x - plain[i]));
  });
  assert.ok(moved > 1e-2, `training moved the logits by only ${moved}`);
  assert.ok(diff < 1e-4, `merged logits differ from the LoRA graph's by ${diff}`);
});

test('a LoRA checkpoint holds the adapters, their optimizer state and the config; resuming ends where an uninterrupted fit does', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'rise-lora-'));
  try {
    const lora: LoraConfig = { rank: 2, alpha: 4, targets: ['q', 'v', 'gate'], dropout: 0 };
    const options = { epochs: 3, batchSize: 3, lr: 1e-2, seed: 2 };
    const straight = Trainer.withLora(config, initParameters(config), lora, tokenizer.special.pad);
    await straight.fit(examples, options);

    const crashing = Trainer.withLora(config, initParameters(config), lora, tokenizer.special.pad);
    await assert.rejects(
      crashing.fit(examples, {
        ...options,
        checkpoint: { dir, every: 2, tokenizer },
        onStep: (r) => {
          if (r.step === 5) throw new Error('simulated crash');
        },
      }),
      /simulated crash/,
    );
    assert.deepEqual((await readdir(dir)).sort(), ['adapters.safetensors', 'config.json', 'meta.json', 'optimizer.safetensors', 'tokenizer.json']);
    const file = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    assert.deepEqual(file.lora, lora);
    const ckpt = await loadCheckpoint(dir);
    assert.deepEqual(ckpt.lora, lora);
    assert.deepEqual(ckpt.params.map((p) => p.name), loraSpecs(config, lora).map((s) => s.name));
    assert.deepEqual(
      ckpt.optimizer!.tensors.map((t) => t.name).sort(),
      ckpt.params.flatMap((p) => [`m.${p.name}`, `v.${p.name}`]).sort(),
    );

    await assert.rejects(Trainer.resume(dir, tokenizer.special.pad), /a LoRA checkpoint holds adapters only; resuming needs the base parameters/);
    const resumed = await Trainer.resume(dir, tokenizer.special.pad, undefined, undefined, initParameters(config));
    assert.equal(resumed.step, 4);
    await resumed.fit(examples, { ...options, resumeFromStep: resumed.step });
    straight.params.forEach((p, i) => assert.deepEqual(resumed.params[i].data, p.data, `adapter ${p.name}`));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('mergeLora names adapters that are missing or misshapen', () => {
  const base = initParameters(config);
  const adapters = initLoraAdapters(config, every, 0);
  assert.throws(() => mergeLora(base, adapters.slice(1), config, every), /mergeLora: adapters lack "lora\.layers\.0\.q\.a"/);
  const bad = adapters.map((t, i) => (i === 1 ? { ...t, shape: [1, 1] } : t));
  assert.throws(() => mergeLora(base, bad, config, every), /adapter "lora\.layers\.0\.q\.b" has shape \[1,1\]/);
});
