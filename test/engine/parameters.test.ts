import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveModelConfig } from '../../src/engine/config.ts';
import { initParameters, parameterSpecs } from '../../src/engine/parameters.ts';
import { sizeOf } from '../../src/engine/tensor.ts';

const config = resolveModelConfig({ vocabSize: 50, layers: 2, dim: 32, heads: 4, kvHeads: 2, hidden: 64, seed: 7 });

test('parameter names, shapes, init kinds and decay follow the layout', () => {
  const specs = parameterSpecs(config);
  const layer = (i: number) => [
    [`layers.${i}.attn_norm`, [32], 'ones', false],
    // (4 query heads + 2·2 key/value heads) · head size 8
    [`layers.${i}.wqkv`, [32, 64], 'normal', true],
    [`layers.${i}.wo`, [32, 32], 'normal', true],
    [`layers.${i}.mlp_norm`, [32], 'ones', false],
    [`layers.${i}.w_gate_up`, [32, 128], 'normal', true],
    [`layers.${i}.w_down`, [64, 32], 'normal', true],
  ];
  assert.deepEqual(
    specs.map((s) => [s.name, s.shape, s.init, s.decay]),
    [['tok_emb', [50, 32], 'normal', true], ...layer(0), ...layer(1), ['norm', [32], 'ones', false]],
  );
  for (const s of specs) assert.equal(s.decay, s.shape.length === 2, s.name);
  const untied = parameterSpecs({ ...config, tiedEmbeddings: false });
  assert.deepEqual(untied.at(-1), { name: 'lm_head', shape: [32, 50], init: 'normal', std: 0.02, decay: true });
  assert.equal(untied.length, specs.length + 1);
});

test('output projections get the depth-scaled standard deviation', () => {
  const std = new Map(parameterSpecs(config).map((s) => [s.name, s.std]));
  assert.equal(std.get('tok_emb'), 0.02);
  assert.equal(std.get('layers.1.wqkv'), 0.02);
  assert.equal(std.get('layers.1.w_gate_up'), 0.02);
  assert.equal(std.get('layers.0.wo'), 0.02 / 2);
  assert.equal(std.get('layers.1.w_down'), 0.02 / 2);
  assert.equal(std.get('norm'), 0);
});

test('initialisation follows the specs: ones for norms, normals of the given spread for matrices', () => {
  const big = resolveModelConfig({ vocabSize: 512, layers: 8, dim: 64, heads: 4, seed: 3 });
  const specs = parameterSpecs(big);
  const params = initParameters(big);
  assert.deepEqual(params.map((p) => [p.name, p.shape]), specs.map((s) => [s.name, s.shape]));
  for (const [i, p] of params.entries()) {
    const spec = specs[i];
    assert.equal(p.data.length, sizeOf(spec.shape));
    if (spec.init === 'ones') {
      assert.ok(p.data.every((v) => v === 1), p.name);
      continue;
    }
    const mean = p.data.reduce((a, b) => a + b, 0) / p.data.length;
    const std = Math.sqrt(p.data.reduce((a, b) => a + (b - mean) ** 2, 0) / p.data.length);
    // Thousands of samples each: the sample spread is within a few percent of the target.
    assert.ok(Math.abs(std / spec.std - 1) < 0.05, `${p.name}: std ${std} vs ${spec.std}`);
    assert.ok(Math.abs(mean) < 4 * (spec.std / Math.sqrt(p.data.length)), `${p.name}: mean ${mean}`);
  }
});

test('the same seed gives identical bytes; another seed gives different values', () => {
  const bytes = (seed: number) =>
    initParameters({ ...config, seed }).map((p) => Buffer.from(p.data.buffer, p.data.byteOffset, p.data.byteLength));
  const a = bytes(7);
  const b = bytes(7);
  const c = bytes(8);
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) assert.ok(a[i].equals(b[i]));
  const matrices = parameterSpecs(config).flatMap((s, i) => (s.init === 'normal' ? [i] : []));
  for (const i of matrices) assert.ok(!a[i].equals(c[i]));
  // Different parameters of one model draw different values too.
  assert.notDeepEqual(a[matrices[1]].subarray(0, 64), a[matrices[2]].subarray(0, 64));
});

test("a parameter's values do not depend on which other parameters exist", () => {
  const tied = initParameters(config);
  const untied = initParameters({ ...config, tiedEmbeddings: false });
  assert.deepEqual(untied.slice(0, tied.length), tied);
});
