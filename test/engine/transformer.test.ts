import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import { resolveModelConfig, type ModelConfigInput } from '../../src/engine/config.ts';
import { buildForwardGraph, buildLossGraph, weightedNll } from '../../src/engine/graphs.ts';
import { initParameters, parameterSpecs } from '../../src/engine/parameters.ts';
import { createSession } from '../../src/engine/session.ts';
import { rotaryFrequencies } from '../../src/engine/transformer.ts';
import { gradCheck } from './gradcheck.ts';

/** The whole decoder and its weighted loss, differentiated w.r.t. every parameter, in float64. */
async function checkModel(input: ModelConfigInput) {
  const config = resolveModelConfig(input);
  return gradCheck({
    build: (g, x) => {
      const p = new Map(parameterSpecs(config).map((s) => [s.name, x.float(s.shape, -0.5, 0.5)]));
      const B = 2;
      const T = 6;
      const tokens = x.int64([B, T], [1, 4, 2, 9, 12, 3, 0, 7, 7, 5, 1, 11]);
      // Mixed weights, including 0 (prompt tokens) and a reward-like 3.
      const w = g.constant(Float64Array.from([0, 0, 1, 1, 3, 1, 0, 1, 0.5, 1, 1, 0]), 'float64', [B, T]);
      return weightedNll(g, config, p, tokens, w).loss;
    },
  });
}

test('whole-transformer gradient (GQA, untied head) matches central differences', async () => {
  const r = await checkModel({ vocabSize: 13, layers: 2, dim: 8, heads: 2, kvHeads: 1, hidden: 16, context: 8, tiedEmbeddings: false });
  assert.ok(r.checked > 1000, `only ${r.checked} entries checked`);
  assert.ok(r.maxRelError < 1e-6, `max relative error ${r.maxRelError} over ${r.checked} entries`);
});

test('whole-transformer gradient (tied embeddings) matches central differences', async () => {
  const r = await checkModel({ vocabSize: 13, layers: 1, dim: 8, heads: 2, kvHeads: 2, hidden: 16, context: 8, tiedEmbeddings: true });
  assert.ok(r.maxRelError < 1e-6, `max relative error ${r.maxRelError} over ${r.checked} entries`);
});

test('whole-transformer gradient with QKV bias and Llama 3 rope scaling matches central differences', async () => {
  const r = await checkModel({
    vocabSize: 13, layers: 1, dim: 8, heads: 2, kvHeads: 1, hidden: 16, context: 8, qkvBias: true,
    ropeScaling: { kind: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 4 },
  });
  assert.ok(r.maxRelError < 1e-6, `max relative error ${r.maxRelError} over ${r.checked} entries`);
});

test('Llama 3 rotary frequencies match Hugging Face (_compute_llama3_parameters)', () => {
  // transformers 5.24, ROPE_INIT_FUNCTIONS['llama3'] for head size 32, theta 5e5, factor 8, low/high
  // frequency factors 1/4, original context 256 (float32 there): kept, interpolated and stretched bands.
  const expected = [
    1.0, 0.44036662578582764, 0.193922758102417, 0.07243003696203232, 0.010538230650126934, 0.0020700551103800535,
    0.0009115831344388425, 0.00040143076330423355, 0.00017677668074611574, 7.784655463183299e-5, 3.428102354519069e-5,
    1.5096217794052791e-5, 6.647869668086059e-6, 2.927499735960737e-6, 1.289173155782919e-6, 5.677088097399974e-7,
  ];
  const scaled = resolveModelConfig({
    vocabSize: 8, dim: 64, heads: 2, ropeTheta: 5e5, context: 8192,
    ropeScaling: { kind: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 256 },
  });
  const got = rotaryFrequencies(scaled);
  assert.equal(got.length, expected.length);
  got.forEach((f, i) => assert.ok(Math.abs(f - expected[i]) <= 1e-6 * expected[i], `frequency ${i}: ${f} vs ${expected[i]}`));
  const plain = rotaryFrequencies({ ...scaled, ropeScaling: undefined });
  assert.equal(plain[3], 5e5 ** (-6 / 32), 'without scaling the frequencies are θ^(−2i/hd)');
});

test('the loss graph (head at weighted positions only) keeps the weighted-NLL definition', async () => {
  const config = resolveModelConfig({ vocabSize: 11, layers: 1, dim: 8, heads: 2, hidden: 16, context: 8, seed: 4 });
  const [B, T, V] = [3, 5, config.vocabSize];
  const tokens = BigInt64Array.from([1, 4, 2, 9, 3, 0, 7, 7, 5, 1, 6, 2, 8, 10, 4].map(BigInt));
  // A row with no weighted token, a reward-like weight, and a weighted position next to unweighted ones.
  const weights = Float32Array.from([0, 0, 1, 2.5, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0.5, 0]);
  const feeds: Record<string, ort.Tensor> = { tokens: new ort.Tensor('int64', tokens, [B, T]) };
  for (const p of initParameters(config)) feeds[p.name] = new ort.Tensor('float32', p.data, p.shape);
  const logits = (await (await createSession(buildForwardGraph(config))).run(feeds)).logits.data as Float32Array;
  const out = await (await createSession(buildLossGraph(config))).run({ ...feeds, weights: new ort.Tensor('float32', weights, [B, T]) });

  // Reference from the full forward pass: token t is predicted at position t − 1.
  let weighted = 0;
  let count = 0;
  const nll: number[] = [];
  for (let b = 0; b < B; b++) {
    let sum = 0;
    let n = 0;
    for (let t = 1; t < T; t++) {
      const w = weights[b * T + t];
      if (w === 0) continue;
      const row = logits.subarray((b * T + t - 1) * V, (b * T + t) * V);
      const max = Math.max(...row);
      const logZ = max + Math.log(row.reduce((a, x) => a + Math.exp(x - max), 0));
      const tokenNll = logZ - row[Number(tokens[b * T + t])];
      weighted += w * tokenNll;
      if (w > 0) [count, sum, n] = [count + 1, sum + tokenNll, n + 1];
    }
    nll.push(n > 0 ? sum / n : 0);
  }
  const loss = (out.loss.data as Float32Array)[0];
  assert.ok(Math.abs(loss - weighted / count) < 1e-5, `loss ${loss} vs ${weighted / count}`);
  [...(out.nll.data as Float32Array)].forEach((x, b) => assert.ok(Math.abs(x - nll[b]) < 1e-5, `nll[${b}] ${x} vs ${nll[b]}`));

  const none = await (await createSession(buildLossGraph(config))).run({ ...feeds, weights: new ort.Tensor('float32', new Float32Array(B * T), [B, T]) });
  assert.equal((none.loss.data as Float32Array)[0], 0, 'a batch with no weighted token has loss 0');
  assert.deepEqual([...(none.nll.data as Float32Array)], [0, 0, 0]);
});
