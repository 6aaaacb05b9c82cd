import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveModelConfig } from '../../src/engine/config.ts';
import { parameterSpecs } from '../../src/engine/parameters.ts';
import type { NamedTensor } from '../../src/engine/tensor.ts';
import { engineParameters, fuseTransposed, hfTensorShapes, type HfTensorSource } from '../../src/models/layout.ts';

const config = resolveModelConfig({ vocabSize: 10, layers: 2, dim: 8, heads: 2, kvHeads: 1, hidden: 12, tiedEmbeddings: false, qkvBias: true });

/** Every value names where it came from: tensor index · 1000 + flat index, so a misplaced one is identified. */
function sourceOf(shapes: Map<string, number[]>, overrides: Record<string, number[]> = {}): HfTensorSource & { tensors: Map<string, NamedTensor> } {
  const tensors = new Map(
    [...shapes].map(([name, shape], k) => {
      const s = overrides[name] ?? shape;
      const size = s.reduce((a, b) => a * b, 1);
      return [name, { name, shape: s, data: Float32Array.from({ length: size }, (_, i) => k * 1000 + i) }];
    }),
  );
  return {
    tensors,
    whereIs: (name) => `fake.safetensors: tensor "${name}"`,
    async read(name) {
      const t = tensors.get(name);
      if (t === undefined) throw new Error(`fake.safetensors: missing tensor "${name}"`);
      return t;
    },
  };
}

const at = (t: NamedTensor, r: number, c: number) => t.data[r * t.shape[1] + c];

test('engine parameters come out in parameterSpecs order with their shapes', async () => {
  const params = await engineParameters(config, sourceOf(hfTensorShapes(config)));
  assert.deepEqual(
    params.map((p) => [p.name, p.shape]),
    parameterSpecs(config).map((s) => [s.name, s.shape]),
  );
});

test('projections are transposed and fused as x·W expects', async () => {
  const source = sourceOf(hfTensorShapes(config));
  const params = new Map((await engineParameters(config, source)).map((p) => [p.name, p]));
  const hf = (name: string) => source.tensors.get(name)!;
  const p = 'model.layers.1.';
  const hd = config.dim / config.heads;
  const q = hf(`${p}self_attn.q_proj.weight`);
  const k = hf(`${p}self_attn.k_proj.weight`);
  const v = hf(`${p}self_attn.v_proj.weight`);
  const wqkv = params.get('layers.1.wqkv')!;
  for (let r = 0; r < config.dim; r++) {
    for (let c = 0; c < config.heads * hd; c++) assert.equal(at(wqkv, r, c), at(q, c, r));
    for (let c = 0; c < config.kvHeads * hd; c++) {
      assert.equal(at(wqkv, r, config.heads * hd + c), at(k, c, r));
      assert.equal(at(wqkv, r, (config.heads + config.kvHeads) * hd + c), at(v, c, r));
    }
  }
  assert.deepEqual(
    [...params.get('layers.1.bqkv')!.data],
    [...hf(`${p}self_attn.q_proj.bias`).data, ...hf(`${p}self_attn.k_proj.bias`).data, ...hf(`${p}self_attn.v_proj.bias`).data],
  );
  const gateUp = params.get('layers.1.w_gate_up')!;
  const gate = hf(`${p}mlp.gate_proj.weight`);
  const up = hf(`${p}mlp.up_proj.weight`);
  for (let r = 0; r < config.dim; r++) {
    for (let c = 0; c < config.hidden; c++) {
      assert.equal(at(gateUp, r, c), at(gate, c, r));
      assert.equal(at(gateUp, r, config.hidden + c), at(up, c, r));
    }
  }
  const pairs: [string, string][] = [
    ['layers.1.wo', `${p}self_attn.o_proj.weight`],
    ['layers.1.w_down', `${p}mlp.down_proj.weight`],
    ['lm_head', 'lm_head.weight'],
  ];
  for (const [engine, name] of pairs) {
    const e = params.get(engine)!;
    const h = hf(name);
    assert.deepEqual(e.shape, [h.shape[1], h.shape[0]], engine);
    for (let r = 0; r < e.shape[0]; r++) for (let c = 0; c < e.shape[1]; c++) assert.equal(at(e, r, c), at(h, c, r), engine);
  }
  assert.equal(params.get('tok_emb')!.data, hf('model.embed_tokens.weight').data);
  assert.equal(params.get('layers.0.mlp_norm')!.data, hf('model.layers.0.post_attention_layernorm.weight').data);
});

test('a tensor of the wrong shape or a missing one is named with its file', async () => {
  await assert.rejects(
    engineParameters(config, sourceOf(hfTensorShapes(config), { 'model.layers.0.mlp.up_proj.weight': [12, 9] })),
    /fake\.safetensors: tensor "model\.layers\.0\.mlp\.up_proj\.weight": shape \[12,9\] does not match the model config, which implies \[12,8\]/,
  );
  const shapes = hfTensorShapes(config);
  shapes.delete('model.norm.weight');
  await assert.rejects(engineParameters(config, sourceOf(shapes)), /fake\.safetensors: missing tensor "model\.norm\.weight"/);
});

test('a tied model reads no lm_head', () => {
  const tied = resolveModelConfig({ ...config, tiedEmbeddings: true });
  assert.ok(!hfTensorShapes(tied).has('lm_head.weight'));
  assert.ok(hfTensorShapes(config).has('lm_head.weight'));
});

test('fuseTransposed over tiles of uneven size', () => {
  const a = { name: 'a', shape: [37, 45], data: Float32Array.from({ length: 37 * 45 }, (_, i) => i) };
  const b = { name: 'b', shape: [3, 45], data: Float32Array.from({ length: 3 * 45 }, (_, i) => -i) };
  const out = fuseTransposed([a, b], 45);
  for (let r = 0; r < 45; r++) {
    for (let c = 0; c < 37; c++) assert.equal(out[r * 40 + c], a.data[c * 45 + r]);
    for (let c = 0; c < 3; c++) assert.equal(out[r * 40 + 37 + c], b.data[c * 45 + r]);
  }
});
