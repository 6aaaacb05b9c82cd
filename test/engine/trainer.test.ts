import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveModelConfig } from '../../src/engine/config.ts';
import { initParameters } from '../../src/engine/parameters.ts';
import { Rng } from '../../src/engine/random.ts';
import { CharTokenizer } from '../../src/engine/tokenizer.ts';
import { collate, learningRate, NonFiniteLossError, Trainer, type Example } from '../../src/engine/trainer.ts';
import * as ort from 'onnxruntime-node';
import { gradients } from '../../src/engine/autodiff.ts';
import { Graph } from '../../src/engine/graph.ts';
import { createSession } from '../../src/engine/session.ts';

const tokenizer = new CharTokenizer();
const config = resolveModelConfig({ vocabSize: tokenizer.vocabSize, layers: 1, dim: 16, heads: 2, context: 16, seed: 2 });
const rng = new Rng('trainer-test');
const examples: Example[] = Array.from({ length: 10 }, (_, i) => {
  const n = 4 + (i % 5);
  return { tokens: Array.from({ length: n }, () => 7 + rng.int(20)), weights: Array.from({ length: n }, (_, t) => (t < 2 ? 0 : 1 + (i % 3))) };
});

test('collate right-pads with the pad token and weight 0', () => {
  const b = collate([{ tokens: [5, 6, 7], weights: [0, 1, 1] }, { tokens: [8], weights: [2] }], 0);
  assert.equal(b.length, 3);
  assert.deepEqual([...b.tokens].map(Number), [5, 6, 7, 8, 0, 0]);
  assert.deepEqual([...b.weights], [0, 1, 1, 2, 0, 0]);
});

test('learning rate warms up linearly, then decays by a cosine to the floor', () => {
  const s = { lr: 1, warmupSteps: 10, totalSteps: 110, minLrRatio: 0.1 };
  assert.equal(learningRate(s, 0), 0.1);
  assert.equal(learningRate(s, 9), 1);
  assert.ok(Math.abs(learningRate(s, 10) - 1) < 1e-12);
  assert.ok(Math.abs(learningRate(s, 60) - 0.55) < 1e-12);
  assert.ok(Math.abs(learningRate(s, 110) - 0.1) < 1e-12);
});

test('a fit resumed from a mid-run checkpoint ends with the same parameters as an uninterrupted one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rise-trainer-'));
  try {
    const options = { epochs: 3, batchSize: 4, lr: 1e-2, seed: 3 };
    const straight = new Trainer(config, initParameters(config), tokenizer.special.pad);
    await straight.fit(examples, options);

    const crashing = new Trainer(config, initParameters(config), tokenizer.special.pad);
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
    const resumed = await Trainer.resume(dir, tokenizer.special.pad);
    assert.equal(resumed.step, 4, 'the checkpoint holds the state after the last multiple of `every`');
    await resumed.fit(examples, { ...options, resumeFromStep: resumed.step });
    assert.equal(resumed.step, straight.step);
    straight.params.forEach((p, i) => assert.deepEqual(resumed.params[i].data, p.data, `parameter ${p.name}`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('training lowers the evaluation loss, and a non-finite loss stops training without touching parameters', async () => {
  const trainer = new Trainer(config, initParameters(config), tokenizer.special.pad);
  const before = await trainer.evaluate(examples);
  const fit = await trainer.fit(examples, { epochs: 10, batchSize: 5, lr: 1e-2, evalExamples: examples });
  assert.ok(fit.evalLoss.at(-1)! < before.loss * 0.8, `eval loss ${before.loss} → ${fit.evalLoss.at(-1)}`);
  assert.equal(before.nll.length, examples.length);

  const snapshot = trainer.params.map((p) => p.data.slice());
  const poisoned = [{ tokens: [7, 8, 9], weights: [0, Number.NaN, 1] }];
  await assert.rejects(trainer.trainStep(poisoned, 1e-2), NonFiniteLossError);
  trainer.params.forEach((p, i) => assert.deepEqual(p.data, snapshot[i]));
});

test('bad examples are named', async () => {
  const trainer = new Trainer(config, initParameters(config), tokenizer.special.pad);
  await assert.rejects(trainer.trainStep([{ tokens: Array(17).fill(7), weights: Array(17).fill(1) }], 1e-3), /example 0: 17 tokens exceed the model context of 16/);
  await assert.rejects(trainer.trainStep([{ tokens: [7, 8], weights: [1] }], 1e-3), /example 0: 2 tokens but 1 weights/);
});

test('the embedding gradient (rows looked up many times) is bit-exact from run to run on two threads', async () => {
  // The sum over repeated rows is where a multi-threaded scatter-add would follow thread timing.
  const [rows, width, n] = [104, 128, 4096];
  const g = new Graph('embedding-grad');
  const table = g.input('table', 'float32', [rows, width]);
  const ids = g.input('ids', 'int64', [n]);
  const w = g.input('w', 'float32', [n, width]);
  const [grad] = gradients(g, g.sumAll(g.mul(g.gather(table, ids, 0), w)), [table]);
  g.output('grad', grad);
  const session = await createSession(g, 2);
  const feeds = {
    table: new ort.Tensor('float32', new Float32Array(rows * width), [rows, width]),
    ids: new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, k) => BigInt((k * 7) % 50)), [n]),
    w: new ort.Tensor('float32', Float32Array.from({ length: n * width }, (_, k) => Math.sin(k * 1.3)), [n, width]),
  };
  const results = new Set<string>();
  for (let run = 0; run < 30; run++) {
    const out = (await session.run(feeds)).grad.data as Float32Array;
    results.add(Buffer.from(out.buffer, out.byteOffset, out.byteLength).toString('base64'));
  }
  assert.equal(results.size, 1);
});

test('train steps on two threads are bit-exact from run to run (full fine-tuning and LoRA)', async () => {
  const wide = resolveModelConfig({ vocabSize: tokenizer.vocabSize, layers: 2, dim: 64, heads: 4, kvHeads: 2, context: 16, seed: 4 });
  const lora = { rank: 4, alpha: 8, targets: ['q' as const, 'v' as const, 'down' as const], dropout: 0 };
  const runs = async (make: () => Trainer) => {
    const results = new Set<string>();
    for (let run = 0; run < 3; run++) {
      const trainer = make();
      for (let s = 0; s < 3; s++) await trainer.trainStep(examples.slice(s * 3, s * 3 + 4), 1e-2);
      results.add(trainer.params.map((p) => Buffer.from(p.data.buffer, p.data.byteOffset, p.data.byteLength).toString('base64')).join());
    }
    return results.size;
  };
  assert.equal(await runs(() => new Trainer(wide, initParameters(wide), tokenizer.special.pad, undefined, { threads: 2 })), 1);
  assert.equal(await runs(() => Trainer.withLora(wide, initParameters(wide), lora, tokenizer.special.pad, { session: { threads: 2 } })), 1);
});
