import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveModelConfig, type ModelConfigInput } from '../../src/engine/config.ts';
import { weightedNll } from '../../src/engine/graphs.ts';
import { parameterSpecs } from '../../src/engine/parameters.ts';
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
