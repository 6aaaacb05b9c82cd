import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import { resolveModelConfig } from '../../src/engine/config.ts';
import { buildDecodeGraph, buildForwardGraph } from '../../src/engine/graphs.ts';
import { initParameters } from '../../src/engine/parameters.ts';
import { Rng } from '../../src/engine/random.ts';
import { createSession } from '../../src/engine/session.ts';
import { MASKED } from '../../src/engine/transformer.ts';
import { noTemperedRows } from './tiny-decode.ts';

// Grouped KV heads and an untied head, so both code paths are under the parity check.
const config = resolveModelConfig({ vocabSize: 23, layers: 2, dim: 32, heads: 4, kvHeads: 2, context: 24, tiedEmbeddings: false, seed: 3 });
const params = initParameters(config);
// Scale weights up so logits are far from uniform and a wrong position or mask would show.
for (const p of params) if (p.shape.length === 2) p.data = p.data.map((x) => x * 10);
const paramFeeds = Object.fromEntries(params.map((p) => [p.name, new ort.Tensor('float32', p.data, p.shape)]));
const hd = config.dim / config.heads;

test('incremental decoding with the KV cache matches a full forward pass', async () => {
  const forward = await createSession(buildForwardGraph(config));
  const decode = await createSession(buildDecodeGraph(config), 1, params);
  const rng = new Rng('parity');
  const B = 3;
  const T = 12;
  const prompt = 5;
  const tokens = Array.from({ length: B * T }, () => rng.int(config.vocabSize));
  const full = await forward.run({ ...paramFeeds, tokens: new ort.Tensor('int64', BigInt64Array.from(tokens.map(BigInt)), [B, T]) });
  const expected = full.logits.data as Float32Array;
  const V = config.vocabSize;

  // Prefill the first `prompt` tokens (no past), then feed one token at a time with a growing cache.
  const keys: Float32Array[][] = [];
  const values: Float32Array[][] = [];
  let maxDiff = 0;
  for (let t = 0; t < T; ) {
    const s = t === 0 ? prompt : 1;
    const past = t;
    const feeds: Record<string, ort.Tensor> = {
      tokens: new ort.Tensor('int64', BigInt64Array.from({ length: B * s }, (_, i) => BigInt(tokens[Math.floor(i / s) * T + t + (i % s)])), [B, s]),
      positions: new ort.Tensor('int64', BigInt64Array.from({ length: B * s }, (_, i) => BigInt(t + (i % s))), [B, s]),
      mask: new ort.Tensor('float32', Float32Array.from({ length: B * s * (past + s) }, (_, i) => ((i % (past + s)) - past > Math.floor(i / (past + s)) % s ? MASKED : 0)), [B, 1, s, past + s]),
      logit_rows: everyRow(B * s),
      ...noTemperedRows(),
    };
    for (let l = 0; l < config.layers; l++) {
      feeds[`past_k.${l}`] = new ort.Tensor('float32', concatTime(keys.map((k) => k[l]), B, past), [B, config.kvHeads, past, hd]);
      feeds[`past_v.${l}`] = new ort.Tensor('float32', concatTime(values.map((v) => v[l]), B, past), [B, config.kvHeads, past, hd]);
    }
    const out = await decode.run(feeds);
    const logits = out.logits.data as Float32Array;
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < s; j++) {
        for (let v = 0; v < V; v++) {
          const got = logits[(b * s + j) * V + v];
          const want = expected[(b * T + t + j) * V + v];
          maxDiff = Math.max(maxDiff, Math.abs(got - want));
        }
      }
    }
    // Keep each step's new keys/values, split per position, as the cache the next step sees.
    for (let j = 0; j < s; j++) {
      keys.push(Array.from({ length: config.layers }, (_, l) => pick(out[`k.${l}`].data as Float32Array, B, s, j)));
      values.push(Array.from({ length: config.layers }, (_, l) => pick(out[`v.${l}`].data as Float32Array, B, s, j)));
    }
    t += s;
  }
  assert.ok(maxDiff < 1e-4, `max logit difference ${maxDiff}`);
  const spread = Math.max(...expected) - Math.min(...expected);
  assert.ok(spread > 1, `logits are too flat (${spread}) for the comparison to mean anything`);
});

test('logits of the rows asked for are exactly those rows of every logit, keys and values unchanged', async () => {
  // A prefill of right-padded prompts of different lengths: the sampler asks for each prompt's last token.
  const decode = await createSession(buildDecodeGraph(config), 1, params);
  const rng = new Rng('logit rows');
  const lengths = [7, 3, 5, 1];
  const B = lengths.length;
  const s = Math.max(...lengths);
  const feeds: Record<string, ort.Tensor> = {
    tokens: new ort.Tensor('int64', BigInt64Array.from({ length: B * s }, () => BigInt(rng.int(config.vocabSize))), [B, s]),
    positions: new ort.Tensor('int64', BigInt64Array.from({ length: B * s }, (_, i) => BigInt(i % s)), [B, s]),
    mask: new ort.Tensor('float32', Float32Array.from({ length: B * s * s }, (_, i) => (i % s > Math.floor(i / s) % s ? MASKED : 0)), [B, 1, s, s]),
    ...noTemperedRows(),
  };
  for (let l = 0; l < config.layers; l++) {
    feeds[`past_k.${l}`] = new ort.Tensor('float32', new Float32Array(0), [B, config.kvHeads, 0, hd]);
    feeds[`past_v.${l}`] = new ort.Tensor('float32', new Float32Array(0), [B, config.kvHeads, 0, hd]);
  }
  const all = await decode.run({ ...feeds, logit_rows: everyRow(B * s), greedy_rows: everyRow(B * s) });
  const lastRows = lengths.map((n, b) => b * s + n - 1);
  const last = await decode.run({ ...feeds, logit_rows: new ort.Tensor('int64', BigInt64Array.from(lastRows, BigInt), [B]), greedy_rows: everyRow(B) });
  const V = config.vocabSize;
  assert.deepEqual(all.logits.dims, [B * s, V]);
  assert.deepEqual(last.logits.dims, [B, V]);
  const full = all.logits.data as Float32Array;
  lastRows.forEach((row, b) => assert.deepEqual(last.logits.data.slice(b * V, (b + 1) * V), full.slice(row * V, (row + 1) * V), `prompt ${b}`));
  const probs = all.probs.data as Float32Array;
  lastRows.forEach((row, b) => assert.deepEqual(last.probs.data.slice(b * V, (b + 1) * V), probs.slice(row * V, (row + 1) * V), `softmax of prompt ${b}`));
  lastRows.forEach((row, b) => {
    assert.equal(last.greedy_token.data[b], all.greedy_token.data[row], `greedy token of prompt ${b}`);
    assert.equal(last.greedy_logprob.data[b], all.greedy_logprob.data[row], `its log-probability`);
  });
  for (const name of Object.keys(all).filter((n) => !['logits', 'probs', 'greedy_token', 'greedy_logprob'].includes(n))) assert.deepEqual(last[name].data, all[name].data, name);
});

test('probs is each logit row\'s softmax, and tempered the softmax at its temperature of each row it names, to float32 rounding', async () => {
  const decode = await createSession(buildDecodeGraph(config), 1, params);
  const rng = new Rng('probs');
  const B = 3;
  const s = 4;
  const feeds: Record<string, ort.Tensor> = {
    tokens: new ort.Tensor('int64', BigInt64Array.from({ length: B * s }, () => BigInt(rng.int(config.vocabSize))), [B, s]),
    positions: new ort.Tensor('int64', BigInt64Array.from({ length: B * s }, (_, i) => BigInt(i % s)), [B, s]),
    mask: new ort.Tensor('float32', Float32Array.from({ length: B * s * s }, (_, i) => (i % s > Math.floor(i / s) % s ? MASKED : 0)), [B, 1, s, s]),
    logit_rows: everyRow(B * s),
    tempered_rows: new ort.Tensor('int64', BigInt64Array.of(5n, 1n), [2]),
    inverse_temperature: new ort.Tensor('float32', Float32Array.of(1 / 0.7, 1 / 1.6), [2]),
    greedy_rows: new ort.Tensor('int64', new BigInt64Array(0), [0]),
  };
  for (let l = 0; l < config.layers; l++) {
    feeds[`past_k.${l}`] = new ort.Tensor('float32', new Float32Array(0), [B, config.kvHeads, 0, hd]);
    feeds[`past_v.${l}`] = new ort.Tensor('float32', new Float32Array(0), [B, config.kvHeads, 0, hd]);
  }
  const out = await decode.run(feeds);
  const logits = out.logits.data as Float32Array;
  const probs = out.probs.data as Float32Array;
  const tempered = out.tempered.data as Float32Array;
  const V = config.vocabSize;
  assert.deepEqual(out.probs.dims, out.logits.dims);
  assert.deepEqual(out.tempered.dims, [2, V]);
  let worst = 0;
  const check = (got: Float32Array, r: number, T: number) => {
    const row = logits.subarray(r * V, (r + 1) * V);
    const max = Math.max(...row);
    const z = row.reduce((a, l) => a + Math.exp((l - max) / T), 0);
    for (let i = 0; i < V; i++) {
      const want = Math.exp((row[i] - max) / T) / z;
      worst = Math.max(worst, Math.abs(got[i] - want) / want);
    }
  };
  for (let r = 0; r < B * s; r++) check(probs.subarray(r * V, (r + 1) * V), r, 1);
  check(tempered.subarray(0, V), 5, 0.7);
  check(tempered.subarray(V, 2 * V), 1, 1.6);
  assert.ok(worst < 1e-5, `largest relative error of a probability: ${worst}`);
});

/** Every one of the step's `n` tokens as a logit row. */
function everyRow(n: number): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(i)), [n]);
}

/** Position j of a [B, kvH, s, hd] tensor, as [B, kvH, 1, hd]. */
function pick(data: Float32Array, B: number, s: number, j: number): Float32Array {
  const out = new Float32Array(B * config.kvHeads * hd);
  for (let bh = 0; bh < B * config.kvHeads; bh++) out.set(data.subarray((bh * s + j) * hd, (bh * s + j + 1) * hd), bh * hd);
  return out;
}

/** Concatenates per-position [B, kvH, 1, hd] tensors along time into [B, kvH, P, hd]. */
function concatTime(steps: Float32Array[], B: number, past: number): Float32Array {
  const out = new Float32Array(B * config.kvHeads * past * hd);
  steps.forEach((step, t) => {
    for (let bh = 0; bh < B * config.kvHeads; bh++) out.set(step.subarray(bh * hd, (bh + 1) * hd), (bh * past + t) * hd);
  });
  return out;
}
