/**
 * ONNX Runtime's fused kernels compute what the plain ops compute: the decode graph with each fusion,
 * against the plain decode graph, over a prefill of rows at different positions and a cached step; and
 * the train step with the fused norm, whose gradient is autodiff's rule, against the plain train step.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import { resolveModelConfig, type ModelConfig } from '../../src/engine/config.ts';
import { DEFAULT_ADAMW } from '../../src/engine/adamw.ts';
import { buildDecodeGraph, buildTrainStepGraph } from '../../src/engine/graphs.ts';
import { initParameters } from '../../src/engine/parameters.ts';
import { Rng } from '../../src/engine/random.ts';
import { createSession } from '../../src/engine/session.ts';
import { MASKED, PLAIN, type Fusion } from '../../src/engine/transformer.ts';
import { noTemperedRows } from './tiny-decode.ts';

const FUSIONS: Record<string, Fusion> = {
  norm: { ...PLAIN, norm: true },
  rotary: { ...PLAIN, rotary: true },
  'norm + rotary': { norm: true, rotary: true },
};

/** A prefill of S tokens per row after P cached ones, each row starting at its own position. */
function stepFeeds(config: ModelConfig, rng: Rng, B: number, P: number, S: number, cache: Record<string, ort.Tensor>): Record<string, ort.Tensor> {
  const hd = config.dim / config.heads;
  const start = Array.from({ length: B }, (_, b) => b * 3);
  const feeds: Record<string, ort.Tensor> = {
    tokens: new ort.Tensor('int64', BigInt64Array.from({ length: B * S }, () => BigInt(rng.int(config.vocabSize))), [B, S]),
    positions: new ort.Tensor('int64', BigInt64Array.from({ length: B * S }, (_, i) => BigInt(start[Math.floor(i / S)] + P + (i % S))), [B, S]),
    // Causal over cache + step, and the first cached position of odd rows masked (as left padding is).
    mask: new ort.Tensor('float32', Float32Array.from({ length: B * S * (P + S) }, (_, i) => {
      const k = i % (P + S);
      const q = Math.floor(i / (P + S)) % S;
      const b = Math.floor(i / (S * (P + S)));
      return k - P > q || (b % 2 === 1 && k === 0 && P > 0) ? MASKED : 0;
    }), [B, 1, S, P + S]),
    logit_rows: new ort.Tensor('int64', BigInt64Array.from({ length: B * S }, (_, i) => BigInt(i)), [B * S]),
    ...noTemperedRows(),
  };
  for (let l = 0; l < config.layers; l++) {
    for (const kv of ['k', 'v']) {
      feeds[`past_${kv}.${l}`] = cache[`${kv}.${l}`] ?? new ort.Tensor('float32', new Float32Array(0), [B, config.kvHeads, 0, hd]);
    }
  }
  return feeds;
}

async function maxDiffs(config: ModelConfig, fusion: Fusion): Promise<{ diff: number; spread: number }> {
  const params = initParameters(config);
  // Scaled-up weights, so logits are far from uniform and a wrong position or mask would show.
  for (const p of params) if (p.shape.length === 2) p.data = p.data.map((x) => x * 10);
  const plain = await createSession(buildDecodeGraph(config, 'float32', PLAIN), 1, params);
  const fused = await createSession(buildDecodeGraph(config, 'float32', fusion), 1, params);
  const B = 3;
  let diff = 0;
  let spread = 0;
  let cache: Record<string, ort.Tensor> = {};
  // The prefill, then one cached step whose past is the plain graph's keys and values.
  for (const [P, S] of [[0, 5], [5, 1]]) {
    const feeds = stepFeeds(config, new Rng(`step ${P}`), B, P, S, cache);
    const want = await plain.run(feeds);
    const got = await fused.run(feeds);
    for (const name of plain.outputNames) {
      assert.deepEqual(got[name].dims, want[name].dims, name);
      if (want[name].type === 'int64') {
        assert.deepEqual(got[name].data, want[name].data, name);
        continue;
      }
      const a = want[name].data as Float32Array;
      const b = got[name].data as Float32Array;
      for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]));
    }
    const logits = want.logits.data as Float32Array;
    spread = Math.max(spread, Math.max(...logits) - Math.min(...logits));
    cache = Object.fromEntries(Object.entries(want).filter(([name]) => name !== 'logits'));
  }
  return { diff, spread };
}

for (const [name, fusion] of Object.entries(FUSIONS)) {
  test(`the decode graph with fused ${name} computes the plain graph's logits, keys and values (within 1e-5)`, async () => {
    // Grouped KV heads, so the rotary kernel sees both head counts.
    const config = resolveModelConfig({ vocabSize: 23, layers: 2, dim: 32, heads: 4, kvHeads: 2, context: 24, tiedEmbeddings: false, seed: 3 });
    const { diff, spread } = await maxDiffs(config, fusion);
    assert.ok(spread > 1, `logits are too flat (${spread}) for the comparison to mean anything`);
    assert.ok(diff < 1e-5, `max difference ${diff} (logits spread ${spread})`);
  });
}

test('each fusion puts its kernel in the graph in place of the plain ops', () => {
  const config = resolveModelConfig({ vocabSize: 23, layers: 2, dim: 32, heads: 4, kvHeads: 2, context: 24 });
  const ops = (fusion: Fusion) => buildDecodeGraph(config, 'float32', fusion).nodes.map((n) => `${n.domain}:${n.op}`);
  assert.equal(ops(FUSIONS.norm).filter((op) => op === ':SimplifiedLayerNormalization').length, 2 * config.layers + 1);
  assert.ok(!ops(FUSIONS.norm).includes(':ReduceMean'));
  assert.equal(ops(FUSIONS.rotary).filter((op) => op === 'com.microsoft:RotaryEmbedding').length, 2 * config.layers);
  assert.ok(!ops(FUSIONS.rotary).includes(':Neg'));
  assert.ok(!ops(PLAIN).some((op) => op.endsWith('SimplifiedLayerNormalization') || op.endsWith('RotaryEmbedding')));
});

test('the train step with the fused norm (its gradient from autodiff) computes the plain train step within 1e-5', async () => {
  const config = resolveModelConfig({ vocabSize: 23, layers: 2, dim: 32, heads: 4, kvHeads: 2, context: 24, tiedEmbeddings: false, seed: 5 });
  const params = initParameters(config);
  const rng = new Rng('train');
  const B = 3;
  const T = 10;
  const feeds: Record<string, ort.Tensor> = {
    tokens: new ort.Tensor('int64', BigInt64Array.from({ length: B * T }, () => BigInt(rng.int(config.vocabSize))), [B, T]),
    weights: new ort.Tensor('float32', Float32Array.from({ length: B * T }, (_, i) => (i % T < 3 ? 0 : 1)), [B, T]),
    lr: new ort.Tensor('float32', Float32Array.of(1e-2), []),
    step: new ort.Tensor('float32', Float32Array.of(3), []),
  };
  for (const p of params) {
    feeds[p.name] = new ort.Tensor('float32', p.data, p.shape);
    // Moments as after a few steps, so the update is not Adam's first-step sign and small gradient differences stay small.
    feeds[`m.${p.name}`] = new ort.Tensor('float32', p.data.map((x) => x * 1e-2), p.shape);
    feeds[`v.${p.name}`] = new ort.Tensor('float32', p.data.map((x) => x * x * 1e-2 + 1e-4), p.shape);
  }
  const plain = await createSession(buildTrainStepGraph(config, DEFAULT_ADAMW, 'float32', undefined, PLAIN));
  const fused = await createSession(buildTrainStepGraph(config, DEFAULT_ADAMW, 'float32', undefined, FUSIONS.norm));
  const want = await plain.run(feeds);
  const got = await fused.run(feeds);
  assert.ok(buildTrainStepGraph(config, DEFAULT_ADAMW, 'float32', undefined, FUSIONS.norm).nodes.some((n) => n.op === 'SimplifiedLayerNormalization'));
  let diff = 0;
  for (const name of plain.outputNames) {
    const a = want[name].data as Float32Array;
    const b = got[name].data as Float32Array;
    for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]));
  }
  assert.ok((want.grad_norm.data as Float32Array)[0] > 0.1, 'a gradient to compare');
  assert.ok(diff < 1e-5, `max difference ${diff}`);
});
