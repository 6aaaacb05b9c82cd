/**
 * The decode graph with ONNX Runtime's fused kernels (SimplifiedLayerNormalization, RotaryEmbedding; its default) on
 * the real SmolLM2-135M: a prefill of each reference prompt gives the plain decode graph's logits within
 * 2e-4 (logits up to ~40), and transformers' within the 1e-3 that logits.test.ts holds the forward graph to.
 * (With the weights bound, ONNX Runtime lays out each graph's MatMul weights for its kernels, which moves
 * the two graphs' rounding apart a little: 1.1e-4, where with the weights fed it stayed under 1e-4.)
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import test from 'node:test';
import ort from 'onnxruntime-node';
import { buildDecodeGraph } from '../../src/engine/graphs.ts';
import { createSession } from '../../src/engine/session.ts';
import { MASKED, PLAIN } from '../../src/engine/transformer.ts';
import { loadPretrained } from '../../src/models/load.ts';
import { noTemperedRows } from '../engine/tiny-decode.ts';
import { smollm2Stored } from './real-model.ts';

const fixture = JSON.parse(readFileSync(new URL('../fixtures/smollm2-logits.json', import.meta.url), 'utf8')) as {
  prompts: { name: string; tokenIds: number[]; ids: number[]; positions: { logits: number[] }[] }[];
};

test('SmolLM2 through the fused decode graph: the plain graph within 2e-4, transformers within 1e-3', async (t) => {
  const model = await loadPretrained(smollm2Stored().card.digest);
  const { config } = model;
  const hd = config.dim / config.heads;
  const plain = await createSession(buildDecodeGraph(config, 'float32', PLAIN), 2, model.params);
  const fused = await createSession(buildDecodeGraph(config), 2, model.params);
  const V = config.vocabSize;
  let fromPlain = 0;
  let fromTransformers = 0;
  for (const prompt of fixture.prompts) {
    const T = prompt.tokenIds.length;
    const feeds: Record<string, ort.Tensor> = {
      tokens: new ort.Tensor('int64', BigInt64Array.from(prompt.tokenIds.map(BigInt)), [1, T]),
      positions: new ort.Tensor('int64', BigInt64Array.from({ length: T }, (_, i) => BigInt(i)), [1, T]),
      mask: new ort.Tensor('float32', Float32Array.from({ length: T * T }, (_, i) => (i % T > Math.floor(i / T) ? MASKED : 0)), [1, 1, T, T]),
      logit_rows: new ort.Tensor('int64', BigInt64Array.from({ length: T }, (_, i) => BigInt(i)), [T]),
      ...noTemperedRows(),
    };
    for (let l = 0; l < config.layers; l++) {
      for (const kv of ['k', 'v']) feeds[`past_${kv}.${l}`] = new ort.Tensor('float32', new Float32Array(0), [1, config.kvHeads, 0, hd]);
    }
    const want = (await plain.run(feeds)).logits.data as Float32Array;
    const got = (await fused.run(feeds)).logits.data as Float32Array;
    for (let i = 0; i < want.length; i++) fromPlain = Math.max(fromPlain, Math.abs(got[i] - want[i]));
    prompt.positions.forEach((ref, at) => {
      prompt.ids.forEach((id, k) => (fromTransformers = Math.max(fromTransformers, Math.abs(got[at * V + id] - ref.logits[k]))));
    });
  }
  t.diagnostic(`largest |logit difference|: ${fromPlain.toExponential(2)} from the plain graph, ${fromTransformers.toExponential(2)} from transformers`);
  assert.ok(fromPlain < 2e-4, `fused vs plain: ${fromPlain}`);
  assert.ok(fromTransformers < 1e-3, `fused vs transformers: ${fromTransformers}`);
});
