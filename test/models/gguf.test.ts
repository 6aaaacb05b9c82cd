import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, openAsBlob, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildGgufHeader, gguf, type GGUFTypedMetadata } from '@huggingface/gguf';
import { parameterSpecs } from '../../src/engine/parameters.ts';
import { readGgufModel, shortestFloat32, unpermuteRotary } from '../../src/models/gguf.ts';
import { readHuggingFaceModel } from '../../src/models/huggingface.ts';
import { readPretrained } from '../../src/models/import.ts';
import { smollm2Gguf } from './real-model.ts';

// The same random Llama as a Hugging Face directory and as a GGUF file written the way llama.cpp's
// converter writes one (q/k rows permuted), by scripts/reference/tiny_models.py.
const LLAMA = fileURLToPath(new URL('../fixtures/tiny-llama/', import.meta.url));
const LLAMA_GGUF = join(LLAMA, 'model.gguf');

test('a GGUF file imports to exactly the parameters of the checkpoint it was converted from', async () => {
  const fromGguf = await readGgufModel(LLAMA_GGUF);
  const fromHf = await readHuggingFaceModel(LLAMA);
  assert.equal(fromGguf.architecture, 'llama');
  assert.deepEqual(fromGguf.config, fromHf.config);
  assert.deepEqual(fromGguf.params, fromHf.params);
});

test('un-permuting q/k restores the "rotate half" row order', () => {
  // 2 heads of size 4, one column: Hugging Face rows per head are [x0 x1 | y0 y1] (the halves "rotate
  // half" pairs); llama.cpp stores them as pairs [x0 y0 x1 y1].
  const stored = Float32Array.from([10, 20, 11, 21, 30, 40, 31, 41]);
  assert.deepEqual([...unpermuteRotary(stored, 2, 8, 'test')], [10, 11, 20, 21, 30, 31, 40, 41]);
  // With two columns each row moves whole.
  const wide = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual([...unpermuteRotary(wide, 1, 4, 'test')], [1, 2, 5, 6, 3, 4, 7, 8]);
  assert.throws(() => unpermuteRotary(new Float32Array(6), 2, 6, 'f.gguf: tensor "blk.0.attn_q.weight"'), /f\.gguf: tensor "blk\.0\.attn_q\.weight": 6 rows do not split into 2 heads of even size/);
});

test('float32 metadata reads back as the decimal the model was configured with', () => {
  assert.equal(shortestFloat32(Math.fround(1e-5)), 1e-5);
  assert.equal(shortestFloat32(Math.fround(1e-6)), 1e-6);
  assert.equal(shortestFloat32(100000), 100000);
  assert.equal(shortestFloat32(Math.fround(0.1234567)), 0.1234567);
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rise-gguf-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The tiny GGUF with edited metadata (the tensors unchanged), through @huggingface/gguf's header writer. */
async function withMetadata(edit: (metadata: GGUFTypedMetadata) => void): Promise<string> {
  const parsed = await gguf(LLAMA_GGUF, { allowLocalFile: true, typedMetadata: true });
  edit(parsed.typedMetadata);
  const header = await buildGgufHeader(await openAsBlob(LLAMA_GGUF), parsed.typedMetadata, {
    littleEndian: true,
    tensorInfoByteRange: parsed.tensorInfoByteRange,
  });
  const path = join(tempDir(), 'edited.gguf');
  writeFileSync(path, Buffer.concat([Buffer.from(await header.arrayBuffer()), readFileSync(LLAMA_GGUF).subarray(Number(parsed.tensorDataOffset))]));
  return path;
}

test('errors name the file and the metadata key or tensor', async () => {
  const unknown = await withMetadata((m) => (m['general.architecture']!.value = 'gpt2'));
  await assert.rejects(readGgufModel(unknown), (e: Error) => e.message === `${unknown}: "general.architecture" is "gpt2"; supported: llama, mistral, qwen2`);
  const deeper = await withMetadata((m) => (m['llama.block_count']!.value = 3));
  await assert.rejects(readGgufModel(deeper), (e: Error) => e.message === `${deeper}: missing tensor "blk.2.attn_norm.weight"`);
  const wide = await withMetadata((m) => (m['llama.feed_forward_length']!.value = 40));
  await assert.rejects(readGgufModel(wide), (e: Error) => e.message.startsWith(`${wide}: tensor "blk.0.ffn_gate.weight": shape [48,32] does not match`));
  const noEps = await withMetadata((m) => delete m['llama.attention.layer_norm_rms_epsilon']);
  await assert.rejects(readGgufModel(noEps), (e: Error) => e.message === `${noEps}: "llama.attention.layer_norm_rms_epsilon" must be a number, got undefined`);
});


test('SmolLM2-135M-Instruct (Q4_1, Q8_0 embeddings) imports with its config, shapes and chat metadata', async () => {
  const real = smollm2Gguf();
  const model = await readPretrained(real);
  assert.deepEqual(model.config, {
    vocabSize: 49152, layers: 30, dim: 576, heads: 9, kvHeads: 3, hidden: 1536, context: 8192,
    ropeTheta: 100000, normEps: 1e-5, tiedEmbeddings: true, seed: 0,
  });
  assert.deepEqual(model.source, { format: 'gguf', architecture: 'llama', file: real });
  assert.deepEqual(
    model.params.map((p) => [p.name, p.shape]),
    parameterSpecs(model.config).map((s) => [s.name, s.shape]),
  );
  assert.equal(model.params.reduce((n, p) => n + p.data.length, 0), 134_515_008);
  for (const p of model.params) assert.ok(p.data.every(Number.isFinite), `${p.name} has a non-finite value`);
  const embedding = model.params[0].data;
  for (let row = 0; row < 4; row++) {
    const values = embedding.subarray(row * 576, (row + 1) * 576);
    assert.ok(values.some((x) => x !== 0), `tok_emb row ${row} is all zeros`);
  }
  assert.deepEqual(model.specialTokens, { bos: '<|im_start|>', eos: '<|im_end|>', pad: '<|im_end|>' });
  assert.deepEqual(model.generationStop, ['<|im_end|>']);
  assert.match(model.chatTemplate!, /<\|im_start\|>/);
  assert.equal(model.tokenizer, null);
  const tokens = model.ggufTokenizerMetadata!['tokenizer.ggml.tokens'] as string[];
  assert.equal(tokens.length, 49152);
  assert.equal(model.ggufTokenizerMetadata!['tokenizer.ggml.model'], 'gpt2');
});
