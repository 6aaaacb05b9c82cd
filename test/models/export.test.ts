import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveCheckpoint } from '../../src/engine/checkpoint.ts';
import { resolveModelConfig, type ModelConfig, type ModelConfigInput } from '../../src/engine/config.ts';
import { HfTokenizer } from '../../src/engine/hf-tokenizer.ts';
import { initLoraAdapters, LORA_TARGETS, loraScale, loraSite, mergeLora, resolveLoraConfig, type LoraConfig } from '../../src/engine/lora.ts';
import { initParameters } from '../../src/engine/parameters.ts';
import { Rng } from '../../src/engine/random.ts';
import { readSafetensors } from '../../src/engine/safetensors.ts';
import type { NamedTensor } from '../../src/engine/tensor.ts';
import { CharTokenizer } from '../../src/engine/tokenizer.ts';
import { importModel, importOnce } from '../../src/models/convert.ts';
import { exportModel, hfTensors } from '../../src/models/export.ts';
import { derivedMeta } from '../../src/models/load.ts';
import { addModel, loadStoredModel, type StoredModel } from '../../src/models/store.ts';

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rise-export-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];
const CHARS = [...'abcdefghijklmnopqrstuvwxyz0123456789 +=?.\n'];
const CHAT_TEMPLATE =
  "{% for message in messages %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/** A character-level BPE (no merges) in full tokenizer.json form, so both tokenizers libraries load it. */
function tinyTokenizer(): HfTokenizer {
  const vocab = Object.fromEntries([...SPECIALS, ...CHARS].map((t, id) => [t, id]));
  const addedTokens = SPECIALS.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  const model = { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: [] };
  const tokenizer = { version: '1.0', truncation: null, padding: null, added_tokens: addedTokens, normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, model };
  return HfTokenizer.fromJSON({ kind: 'huggingface', tokenizer, special: { pad: '<|endoftext|>', bos: '<|im_start|>', eos: '<|im_end|>' }, chatTemplate: CHAT_TEMPLATE });
}

/** Random weights with norm gains away from 1, so a misplaced tensor shows. */
function randomParams(config: ModelConfig): NamedTensor[] {
  const rng = new Rng(11, 'export-test');
  return initParameters(config).map((p) => (p.shape.length === 1 ? { ...p, data: p.data.map(() => 1 + 0.3 * rng.normal()) } : p));
}

async function storeTinyModel(home: string, input: Partial<ModelConfigInput> = {}): Promise<{ stored: StoredModel; config: ModelConfig; params: NamedTensor[]; tokenizer: HfTokenizer }> {
  const tokenizer = tinyTokenizer();
  const config = resolveModelConfig({ vocabSize: tokenizer.vocabSize, layers: 2, dim: 16, heads: 4, kvHeads: 2, hidden: 24, context: 32, tiedEmbeddings: false, ...input });
  const params = randomParams(config);
  const architecture = config.qkvBias ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM';
  const stored = await addModel(home, { config, params, tokenizer, source: { format: 'huggingface', architecture, file: '/models/tiny' }, chat: { stop: ['<|im_end|>', '<|endoftext|>'] } }, 'tiny');
  return { stored, config, params, tokenizer };
}

/** Adapters on every projection, B drawn nonzero so the adapters change the model. */
function randomAdapters(config: ModelConfig): { lora: LoraConfig; adapters: NamedTensor[] } {
  const lora = resolveLoraConfig({ rank: 2, alpha: 6, targets: [...LORA_TARGETS], dropout: 0 });
  const rng = new Rng(5, 'export-test-b');
  const adapters = initLoraAdapters(config, lora, 9).map((t) => (t.name.endsWith('.b') ? { ...t, data: t.data.map(() => 0.2 * rng.normal()) } : t));
  return { lora, adapters };
}

async function loraFixture() {
  const home = tempDir();
  const base = await storeTinyModel(home);
  const { lora, adapters } = randomAdapters(base.config);
  const checkpoint = join(tempDir(), 'models', 'abc', 'g0');
  await saveCheckpoint(checkpoint, { config: base.config, tokenizer: base.tokenizer, params: adapters, lora, meta: derivedMeta(base.stored.card.digest) });
  return { home, checkpoint, lora, adapters, ...base };
}

function assertClose(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let worst = 0;
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / Math.max(1, Math.abs(want[i])));
  assert.ok(worst <= 1e-6, `${what}: max relative difference ${worst}`);
}

test('a LoRA checkpoint exports as a PEFT adapter whose merge, done PEFT\'s way, is mergeLora', async () => {
  const f = await loraFixture();
  const out = join(tempDir(), 'adapter');
  const result = await exportModel(f.checkpoint, out, { home: f.home });
  assert.equal(result.format, 'peft');
  assert.deepEqual(readdirSync(out).sort(), ['adapter_config.json', 'adapter_model.safetensors']);

  const config = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
  assert.equal(config.peft_type, 'LORA');
  assert.equal(config.task_type, 'CAUSAL_LM');
  assert.equal(config.r, 2);
  assert.equal(config.lora_alpha, 6);
  assert.equal(config.bias, 'none');
  assert.equal(config.fan_in_fan_out, false);
  assert.equal(config.base_model_name_or_path, 'tiny');
  assert.deepEqual(config.target_modules, ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);

  const { tensors, metadata } = await readSafetensors(join(out, 'adapter_model.safetensors'));
  assert.equal(metadata.format, 'pt');
  assert.equal(tensors.length, 2 * 7 * f.config.layers);
  const peft = new Map(tensors.map((t) => [t.name, t]));
  // PEFT: W' = W + (alpha/r)·B·A with A [r, in], B [out, r], applied to the base's Hugging Face weights.
  const byHand = new Map(hfTensors(f.config, f.params).map((t) => [t.name, { ...t, data: Float64Array.from(t.data) }]));
  const modules = { q: 'self_attn.q_proj', k: 'self_attn.k_proj', v: 'self_attn.v_proj', o: 'self_attn.o_proj', gate: 'mlp.gate_proj', up: 'mlp.up_proj', down: 'mlp.down_proj' };
  for (let layer = 0; layer < f.config.layers; layer++) {
    for (const target of LORA_TARGETS) {
      const prefix = `base_model.model.model.layers.${layer}.${modules[target]}`;
      const a = peft.get(`${prefix}.lora_A.weight`)!;
      const b = peft.get(`${prefix}.lora_B.weight`)!;
      const site = loraSite(f.config, layer, target);
      assert.deepEqual(a.shape, [2, site.inputs], `${prefix}.lora_A shape`);
      assert.deepEqual(b.shape, [site.size, 2], `${prefix}.lora_B shape`);
      const w = byHand.get(`model.layers.${layer}.${modules[target]}.weight`)!;
      assert.deepEqual(w.shape, [site.size, site.inputs]);
      for (let o = 0; o < site.size; o++) {
        for (let i = 0; i < site.inputs; i++) {
          let sum = 0;
          for (let k = 0; k < 2; k++) sum += b.data[o * 2 + k] * a.data[k * site.inputs + i];
          w.data[o * site.inputs + i] += sum * loraScale(f.lora);
        }
      }
    }
  }
  const merged = hfTensors(f.config, mergeLora(f.params, f.adapters, f.config, f.lora));
  assert.deepEqual(merged.map((t) => t.name), [...byHand.keys()]);
  for (const t of merged) assertClose(t.data, Float32Array.from(byHand.get(t.name)!.data), t.name);
  const original = hfTensors(f.config, f.params);
  const changed = merged.filter((t, i) => t.data.some((v, j) => v !== original[i].data[j]));
  assert.equal(changed.length, 7 * f.config.layers, 'every adapted projection, and nothing else, changed');
});

test('--merged writes a Hugging Face directory that imports back to the merged parameters', async () => {
  const f = await loraFixture();
  const out = join(tempDir(), 'merged');
  const result = await exportModel(f.checkpoint, out, { merged: true, home: f.home });
  assert.equal(result.format, 'huggingface');
  assert.deepEqual(result.files, ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
  const hf = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.deepEqual(hf.architectures, ['LlamaForCausalLM']);
  assert.equal(hf.tie_word_embeddings, false);
  assert.equal(hf.bos_token_id, 1);
  const tokenizerConfig = JSON.parse(readFileSync(join(out, 'tokenizer_config.json'), 'utf8'));
  assert.equal(tokenizerConfig.chat_template, CHAT_TEMPLATE);
  assert.equal(tokenizerConfig.eos_token, '<|im_end|>');
  const weights = await readSafetensors(join(out, 'model.safetensors'));
  assert.deepEqual(weights.tensors.find((t) => t.name === 'model.layers.1.mlp.down_proj.weight')?.shape, [16, 24], '[out, in]');

  const home = tempDir();
  const imported = await importModel(home, out);
  const loaded = await loadStoredModel(home, imported.card.digest);
  assert.deepEqual(loaded.config, f.config);
  assert.deepEqual(loaded.params, mergeLora(f.params, f.adapters, f.config, f.lora));
  assert.deepEqual(loaded.tokenizer.toJSON(), f.tokenizer.toJSON());
  assert.deepEqual(imported.card.chat, f.stored.card.chat);
});

test('a stored model exports and imports back to the same digest: Llama, and Qwen2 with tied embeddings and Llama 3 rope scaling', async () => {
  const ropeScaling = { kind: 'llama3' as const, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 16 };
  for (const input of [{}, { qkvBias: true as const, tiedEmbeddings: true, ropeTheta: 1000, ropeScaling }]) {
    const home = tempDir();
    const { stored, config } = await storeTinyModel(home, input);
    const out = join(tempDir(), 'hf');
    await exportModel('tiny', out, { home });
    const hf = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    assert.deepEqual(hf.architectures, [config.qkvBias ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM']);
    const names = (await readSafetensors(join(out, 'model.safetensors'))).tensors.map((t) => t.name);
    assert.equal(names.includes('lm_head.weight'), !config.tiedEmbeddings);
    assert.equal(names.includes('model.layers.0.self_attn.k_proj.bias'), config.qkvBias === true);
    const again = await importModel(tempDir(), out);
    assert.equal(again.card.digest, stored.card.digest, `${hf.architectures[0]}: config, weights, tokenizer and stop tokens all round-trip`);
  }
});

test('refuses an occupied --out, a directory that is no checkpoint, a missing base, a char tokenizer; leaves nothing behind', async () => {
  const f = await loraFixture();
  const parent = tempDir();
  const occupied = join(parent, 'occupied');
  mkdirSync(occupied);
  writeFileSync(join(occupied, 'keep.txt'), 'mine');
  await assert.rejects(exportModel(f.checkpoint, occupied, { home: f.home }), (e: Error) => e.message === `--out ${occupied}: exists and is not empty; export into a new directory`);
  assert.deepEqual(readdirSync(occupied), ['keep.txt']);

  const empty = join(parent, 'empty');
  mkdirSync(empty);
  await exportModel(f.checkpoint, empty, { home: f.home });
  assert.deepEqual(readdirSync(empty).sort(), ['adapter_config.json', 'adapter_model.safetensors'], 'an empty --out is filled');

  const notCheckpoint = tempDir();
  await assert.rejects(exportModel(notCheckpoint, join(parent, 'a'), { home: f.home }), new RegExp(`^Error: ${notCheckpoint}: not a rise checkpoint \\(no config\\.json\\)`));
  await assert.rejects(exportModel(join(parent, 'nowhere/g0'), join(parent, 'a'), { home: f.home }), /nowhere\/g0: no such checkpoint directory/);

  const otherStore = tempDir();
  await assert.rejects(
    exportModel(f.checkpoint, join(parent, 'b'), { home: otherStore }),
    (e: Error) => e.name === 'ModelStoreError' && e.message.includes(`checkpoint ${f.checkpoint}: its base model ${f.stored.card.digest.slice(0, 12)} (meta.json "base") is not in the model store ${otherStore}`),
  );
  await assert.rejects(exportModel('nonesuch', join(parent, 'c'), { home: f.home }), /no model "nonesuch" in the model store/);

  const tokenizer = new CharTokenizer();
  const config = resolveModelConfig({ vocabSize: tokenizer.vocabSize, layers: 1, dim: 8, heads: 2, hidden: 16, context: 16 });
  const scratch = join(tempDir(), 'g0');
  await saveCheckpoint(scratch, { config, tokenizer, params: initParameters(config) });
  await assert.rejects(exportModel(scratch, join(parent, 'd'), { home: f.home }), /its tokenizer is rise's char tokenizer, which Hugging Face tools cannot load/);

  assert.deepEqual(readdirSync(parent).sort(), ['empty', 'occupied'], 'no temp directory or partial export is left');
});

test('a spec path is imported once per content: the same files find the same stored model without converting again', async () => {
  const source = tempDir();
  const { stored } = await storeTinyModel(source);
  const dir = join(tempDir(), 'hf');
  await exportModel(stored.card.digest, dir, { home: source });

  const home = tempDir();
  const first = await importOnce(home, dir);
  const converted = readdirSync(join(home, 'imports'));
  assert.equal(converted.length, 1);
  // A second import of the same content is answered from the record: the stored entry is not rewritten.
  const before = statSync(join(home, first.card.digest)).mtimeMs;
  const second = await importOnce(home, dir);
  assert.equal(second.card.digest, first.card.digest);
  assert.equal(statSync(join(home, first.card.digest)).mtimeMs, before);
  assert.deepEqual(readdirSync(join(home, 'imports')), converted);

  // Changed content is another source: a new import, a new record.
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, rms_norm_eps: 1e-6 }));
  const third = await importOnce(home, dir);
  assert.notEqual(third.card.digest, first.card.digest);
  assert.equal(readdirSync(join(home, 'imports')).length, 2);
});
