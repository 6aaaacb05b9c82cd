import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import type { ModelConfig } from '../../src/engine/config.ts';
import { buildForwardGraph } from '../../src/engine/graphs.ts';
import { readSafetensors, writeSafetensors } from '../../src/engine/safetensors.ts';
import { createSession } from '../../src/engine/session.ts';
import type { NamedTensor } from '../../src/engine/tensor.ts';
import { hfModelConfig, readHuggingFaceModel } from '../../src/models/huggingface.ts';
import { readPretrained } from '../../src/models/import.ts';

// Written by scripts/reference/tiny_models.py with transformers, which also computed logits.json.
const LLAMA = fileURLToPath(new URL('../fixtures/tiny-llama/', import.meta.url));
const QWEN2 = fileURLToPath(new URL('../fixtures/tiny-qwen2/', import.meta.url));

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rise-hf-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function engineLogits(config: ModelConfig, params: NamedTensor[], tokens: number[][]): Promise<Float32Array> {
  const session = await createSession(buildForwardGraph(config));
  const feeds: Record<string, ort.Tensor> = Object.fromEntries(params.map((p) => [p.name, new ort.Tensor('float32', p.data, p.shape)]));
  feeds.tokens = new ort.Tensor('int64', BigInt64Array.from(tokens.flat().map(BigInt)), [tokens.length, tokens[0].length]);
  return (await session.run(feeds)).logits.data as Float32Array;
}

async function assertMatchesTransformers(dir: string) {
  const reference = JSON.parse(readFileSync(join(dir, 'logits.json'), 'utf8')) as { tokens: number[][]; logits: number[][][] };
  const model = await readHuggingFaceModel(dir);
  const got = await engineLogits(model.config, model.params, reference.tokens);
  const want = reference.logits.flat(2);
  assert.equal(got.length, want.length);
  const scale = Math.max(...want.map(Math.abs));
  const worst = Math.max(...want.map((w, i) => Math.abs(got[i] - w)));
  // Reference logits are rounded to 6 decimals; the rest is float32 summation order.
  assert.ok(worst <= 1e-5 * scale + 2e-6, `max |engine − transformers| = ${worst} (largest logit ${scale})`);
  return model;
}

test('a Llama checkpoint (F32, untied head, grouped KV heads) gives transformers\' logits', async () => {
  const model = await assertMatchesTransformers(LLAMA);
  assert.equal(model.architecture, 'LlamaForCausalLM');
  assert.deepEqual(model.config, {
    vocabSize: 64, layers: 2, dim: 32, heads: 4, kvHeads: 2, hidden: 48, context: 64,
    ropeTheta: 10000, normEps: 1e-5, tiedEmbeddings: false, seed: 0,
  });
});

test('a Qwen2 checkpoint (F16, q/k/v biases, tied embeddings) gives transformers\' logits', async () => {
  const model = await assertMatchesTransformers(QWEN2);
  assert.equal(model.config.qkvBias, true);
  assert.equal(model.config.tiedEmbeddings, true);
  assert.equal(model.config.ropeTheta, 1000);
});

/** The fixture's tensors as BF16 (rounded to nearest even) in two shards with an index. */
async function writeBf16Shards(dir: string): Promise<Map<string, Float32Array>> {
  const { tensors } = await readSafetensors(join(LLAMA, 'model.safetensors'));
  const rounded = new Map<string, Float32Array>();
  const shards: NamedTensor[][] = [[], []];
  tensors.forEach((t, i) => shards[i % 2].push(t));
  const weightMap: Record<string, string> = {};
  shards.forEach((shard, s) => {
    const file = `model-0000${s + 1}-of-00002.safetensors`;
    const header: Record<string, unknown> = {};
    const chunks: Uint8Array[] = [];
    let offset = 0;
    for (const t of shard) {
      const bits = new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length);
      const halves = Uint16Array.from(bits, (b) => (b + 0x7fff + ((b >>> 16) & 1)) >>> 16);
      rounded.set(t.name, new Float32Array(Uint32Array.from(halves, (h) => h << 16).buffer));
      header[t.name] = { dtype: 'BF16', shape: t.shape, data_offsets: [offset, offset + halves.byteLength] };
      chunks.push(new Uint8Array(halves.buffer));
      offset += halves.byteLength;
      weightMap[t.name] = file;
    }
    const json = Buffer.from(JSON.stringify(header));
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(json.length));
    writeFileSync(join(dir, file), Buffer.concat([length, json, ...chunks]));
  });
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  cpSync(join(LLAMA, 'config.json'), join(dir, 'config.json'));
  return rounded;
}

test('a sharded BF16 checkpoint imports as its F32 twin with the same rounding', async () => {
  const dir = tempDir();
  const rounded = await writeBf16Shards(dir);
  const fromBf16 = await readHuggingFaceModel(dir);
  // The F32 fixture with its tensors replaced by their BF16 roundings must import to the same params.
  const twin = tempDir();
  cpSync(join(LLAMA, 'config.json'), join(twin, 'config.json'));
  const { tensors } = await readSafetensors(join(LLAMA, 'model.safetensors'));
  await writeSafetensors(join(twin, 'model.safetensors'), tensors.map((t) => ({ ...t, data: rounded.get(t.name)! })));
  const fromF32 = await readHuggingFaceModel(twin);
  assert.deepEqual(fromBf16.params, fromF32.params);
  const original = await readHuggingFaceModel(LLAMA);
  assert.notDeepEqual(fromBf16.params, original.params, 'BF16 rounding must have changed something');
});

function withConfig(edit: (config: Record<string, unknown>) => void): string {
  const dir = tempDir();
  const config = JSON.parse(readFileSync(join(LLAMA, 'config.json'), 'utf8'));
  edit(config);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  cpSync(join(LLAMA, 'model.safetensors'), join(dir, 'model.safetensors'));
  return dir;
}

test('errors name the file and the field or tensor', async () => {
  const unknown = withConfig((c) => (c.architectures = ['GPT2LMHeadModel']));
  await assert.rejects(readHuggingFaceModel(unknown), (e: Error) => e.message.includes(join(unknown, 'config.json')) && /"architectures" is \["GPT2LMHeadModel"\]/.test(e.message));
  const wide = withConfig((c) => (c.intermediate_size = 40));
  await assert.rejects(
    readHuggingFaceModel(wide),
    (e: Error) => e.message.startsWith(`${join(wide, 'model.safetensors')}: tensor "model.layers.0.mlp.gate_proj.weight": shape [48,32]`),
  );
  const deeper = withConfig((c) => (c.num_hidden_layers = 3));
  await assert.rejects(readHuggingFaceModel(deeper), (e: Error) => e.message === `${join(deeper, 'model.safetensors')}: missing tensor "model.layers.2.input_layernorm.weight"`);
  const biased = withConfig((c) => (c.attention_bias = true));
  await assert.rejects(readHuggingFaceModel(biased), /"attention_bias" is true: attention biases are supported for Qwen2 only/);
});

test('config.json: both rope key styles, Llama 3 scaling, Mistral\'s sliding window', () => {
  const base = JSON.parse(readFileSync(join(LLAMA, 'config.json'), 'utf8'));
  const v4 = { ...base, rope_parameters: undefined, rope_theta: 500000, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } };
  const llama3 = hfModelConfig(v4, 'config.json').config;
  assert.equal(llama3.ropeTheta, 500000);
  assert.deepEqual(llama3.ropeScaling, { kind: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8192 });
  assert.throws(() => hfModelConfig({ ...v4, rope_scaling: { type: 'yarn', factor: 4 } }, 'config.json'), /config\.json: "rope_scaling" type "yarn" is not supported/);

  const mistral = hfModelConfig({ ...base, architectures: ['MistralForCausalLM'], max_position_embeddings: 128, sliding_window: 16 }, 'config.json');
  assert.equal(mistral.config.context, 16);
  assert.match(mistral.notes[0], /context limited to the 16-token sliding window/);
  assert.equal(hfModelConfig({ ...base, architectures: ['MistralForCausalLM'], sliding_window: null }, 'config.json').config.context, 64);
  assert.throws(() => hfModelConfig({ ...base, hidden_size: 'big' }, 'config.json'), /config\.json: "hidden_size" must be a number, got "big"/);
});

test('readPretrained on a directory: Hugging Face format, chat files when present', async () => {
  const dir = withConfig(() => {});
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ eos_token: { content: '<|im_end|>' }, bos_token: '<s>', chat_template: '{{ "<|im_start|>" }}...<|im_end|>' }));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({ model: { type: 'BPE', vocab: { a: 0, '</s>': 5 } }, added_tokens: [{ id: 7, content: '<|im_end|>' }] }));
  writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: [5, 7] }));
  const model = await readPretrained(dir);
  assert.deepEqual(model.source, { format: 'huggingface', architecture: 'LlamaForCausalLM', file: dir });
  assert.deepEqual(model.specialTokens, { bos: '<s>', eos: '<|im_end|>', pad: null });
  assert.deepEqual(model.generationStop, ['<|im_end|>', '</s>']);
  assert.equal(model.chatTemplate, '{{ "<|im_start|>" }}...<|im_end|>');
  assert.deepEqual(Object.keys(model.tokenizer!.json), ['model', 'added_tokens']);
  assert.equal(model.ggufTokenizerMetadata, undefined);
});
