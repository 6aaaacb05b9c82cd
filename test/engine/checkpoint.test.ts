import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCheckpoint, saveCheckpoint, type Checkpoint } from '../../src/engine/checkpoint.ts';
import { resolveModelConfig } from '../../src/engine/config.ts';
import { initLoraAdapters } from '../../src/engine/lora.ts';
import { initParameters } from '../../src/engine/parameters.ts';
import { serializeSafetensors } from '../../src/engine/safetensors.ts';
import { CharTokenizer } from '../../src/engine/tokenizer.ts';

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'rise-checkpoint-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const tokenizer = new CharTokenizer();
const config = resolveModelConfig({ vocabSize: tokenizer.vocabSize, layers: 2, dim: 16, heads: 2, hidden: 32, context: 64, seed: 5 });

function sample(seed = 5): Checkpoint {
  const params = initParameters({ ...config, seed });
  return {
    config: { ...config, seed },
    tokenizer,
    params,
    optimizer: {
      step: 120,
      tensors: params.flatMap((p) => [
        { name: `m.${p.name}`, shape: p.shape, data: p.data.map((v) => v * 0.5) },
        { name: `v.${p.name}`, shape: p.shape, data: p.data.map((v) => v * v) },
      ]),
    },
    meta: { step: 120, metrics: { loss: 1.25, accuracy: [0.5, 0.75] }, note: 'ok' },
  };
}

function comparable(c: Checkpoint) {
  return { ...c, tokenizer: c.tokenizer.toJSON() };
}

test('round trip: params, optimizer state, config, tokenizer and meta come back identical', async () => {
  await withTempDir(async (root) => {
    const dir = join(root, 'runs', 'a', 'ckpt');
    const saved = sample();
    await saveCheckpoint(dir, saved);
    assert.deepEqual((await readdir(dir)).sort(), [
      'config.json',
      'meta.json',
      'model.safetensors',
      'optimizer.safetensors',
      'tokenizer.json',
    ]);
    const loaded = await loadCheckpoint(dir);
    assert.deepEqual(comparable(loaded), comparable(saved));
    assert.equal(loaded.tokenizer.decode(loaded.tokenizer.encode('<|user|>1+1<|end|>')), '<|user|>1+1<|end|>');
    const configFile = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    assert.deepEqual(configFile, { format: 'rise-checkpoint', version: 1, model: saved.config });
  });
});

test('optional parts stay absent, and params come back in parameterSpecs order', async () => {
  await withTempDir(async (root) => {
    const dir = join(root, 'ckpt');
    const { config: c, params } = sample();
    await saveCheckpoint(dir, { config: c, tokenizer, params: [...params].reverse() });
    assert.deepEqual((await readdir(dir)).sort(), ['config.json', 'model.safetensors', 'tokenizer.json']);
    const loaded = await loadCheckpoint(dir);
    assert.equal(loaded.optimizer, undefined);
    assert.equal(loaded.meta, undefined);
    assert.deepEqual(loaded.params, params);
  });
});

test('saving over a checkpoint replaces it and leaves no temporary directories', async () => {
  await withTempDir(async (root) => {
    const dir = join(root, 'ckpt');
    await saveCheckpoint(dir, sample(1));
    const second = sample(2);
    delete second.meta;
    await saveCheckpoint(dir, second);
    assert.deepEqual(await readdir(root), ['ckpt']);
    assert.deepEqual(comparable(await loadCheckpoint(dir)), comparable(second));
    // An existing empty directory is replaced as well.
    const empty = join(root, 'empty');
    await mkdir(empty);
    await saveCheckpoint(empty, sample(3));
    assert.deepEqual((await readdir(root)).sort(), ['ckpt', 'empty']);
  });
});

test('a reader running alongside repeated saves sees whole checkpoints only', async () => {
  await withTempDir(async (root) => {
    const dir = join(root, 'ckpt');
    const versions = [sample(1), sample(2)];
    for (const v of versions) v.meta = { seed: v.config.seed };
    await saveCheckpoint(dir, versions[0]);
    let saving = true;
    const writer = (async () => {
      for (let i = 1; i <= 12; i++) await saveCheckpoint(dir, versions[i % 2]);
      saving = false;
    })();
    let whole = 0;
    while (saving) {
      try {
        const loaded = await loadCheckpoint(dir);
        // Files from one save only: params and meta match the config they were loaded with.
        const expected = versions.find((v) => v.config.seed === loaded.config.seed)!;
        assert.deepEqual(comparable(loaded), comparable(expected));
        whole++;
      } catch (e) {
        // The only other outcome: caught in the instant between moving the old copy aside and renaming.
        assert.match((e as Error).message, /directory does not exist|replaced by concurrent saves/);
      }
    }
    await writer;
    assert.ok(whole > 0);
    assert.deepEqual(await readdir(root), ['ckpt']);
  });
});

test('a failed save leaves the old checkpoint and no temporary directories', async () => {
  await withTempDir(async (root) => {
    const dir = join(root, 'ckpt');
    const first = sample(1);
    await saveCheckpoint(dir, first);
    const bad = sample(2);
    bad.meta = { big: 10n } as unknown as Record<string, unknown>;
    await assert.rejects(saveCheckpoint(dir, bad), /BigInt/);
    assert.deepEqual(await readdir(root), ['ckpt']);
    assert.deepEqual(comparable(await loadCheckpoint(dir)), comparable(first));
  });
});

test('inconsistent checkpoints are refused before anything is written', async () => {
  await withTempDir(async (root) => {
    const dir = join(root, 'ckpt');
    const good = sample();
    const wrongShape = good.params.map((p) => (p.name === 'layers.1.wo' ? { ...p, shape: [4, 64] } : p));
    await assert.rejects(saveCheckpoint(dir, { ...good, params: wrongShape }), /parameter "layers\.1\.wo" has shape \[4,64\] but the config expects \[16,16\]/);
    await assert.rejects(saveCheckpoint(dir, { ...good, params: good.params.slice(1) }), /missing parameters: "tok_emb"/);
    await assert.rejects(saveCheckpoint(dir, { ...good, config: { ...good.config, dim: 15 } }), /"dim" \(15\) must be divisible by "heads"/);
    await assert.rejects(saveCheckpoint(dir, { ...good, config: { ...good.config, vocabSize: 50 } }), /tokenizer has 104 tokens but the model config only 50/);
    await assert.rejects(saveCheckpoint(dir, { ...good, optimizer: { step: -1, tensors: [] } }), /step must be a non-negative integer/);
    assert.deepEqual(await readdir(root), []);
  });
});

test('loading names what is missing or wrong', async () => {
  await withTempDir(async (root) => {
    await assert.rejects(loadCheckpoint(join(root, 'nope')), /checkpoint .*nope: directory does not exist/);
    const dir = join(root, 'ckpt');
    const reset = async () => saveCheckpoint(dir, sample());

    for (const file of ['model.safetensors', 'config.json', 'tokenizer.json']) {
      await reset();
      await unlink(join(dir, file));
      await assert.rejects(loadCheckpoint(dir), new RegExp(`ckpt: missing ${file.replace('.', '\\.')}`));
    }

    const configCases: [object, RegExp][] = [
      [{ format: 'other', version: 1, model: config }, /config\.json: "format" must be "rise-checkpoint"/],
      [{ format: 'rise-checkpoint', version: 2, model: config }, /config\.json: unsupported "version" 2/],
      [{ format: 'rise-checkpoint', version: 1, model: { ...config, layers: undefined } }, /"model": "layers" must be a finite number, got undefined/],
      [{ format: 'rise-checkpoint', version: 1, model: { ...config, tiedEmbeddings: 'yes' } }, /"tiedEmbeddings" must be a boolean/],
      [{ format: 'rise-checkpoint', version: 1, model: { ...config, heads: 3 } }, /"model": model config: "dim" \(16\) must be divisible by "heads" \(3\)/],
      [{ format: 'rise-checkpoint', version: 1, model: { ...config, dropout: 0.1 } }, /"model": unknown field "dropout"/],
    ];
    for (const [json, error] of configCases) {
      await reset();
      await writeFile(join(dir, 'config.json'), JSON.stringify(json));
      await assert.rejects(loadCheckpoint(dir), error);
    }

    await reset();
    await writeFile(join(dir, 'config.json'), '{"format": ');
    await assert.rejects(loadCheckpoint(dir), /config\.json is not valid JSON/);

    await reset();
    await writeFile(join(dir, 'tokenizer.json'), JSON.stringify({ kind: 'hf' }));
    await assert.rejects(loadCheckpoint(dir), /tokenizer\.json: tokenizer kind "hf" is not supported/);

    // A model file written for a different config: the shape mismatch names the parameter.
    await reset();
    const other = initParameters({ ...config, hidden: 48 });
    await writeFile(join(dir, 'model.safetensors'), serializeSafetensors(other));
    await assert.rejects(loadCheckpoint(dir), /model\.safetensors: parameter "layers\.0\.w_gate_up" has shape \[16,96\] but the config expects \[16,64\]/);

    await reset();
    await writeFile(join(dir, 'model.safetensors'), serializeSafetensors([...initParameters(config), { name: 'extra', shape: [1], data: new Float32Array(1) }]));
    await assert.rejects(loadCheckpoint(dir), /parameters not in the model config: "extra"/);

    await reset();
    const truncated = await readFile(join(dir, 'model.safetensors'));
    await writeFile(join(dir, 'model.safetensors'), truncated.subarray(0, truncated.length - 1));
    await assert.rejects(loadCheckpoint(dir), /ckpt\/model\.safetensors: tensor "norm": data_offsets .* run past the end/);

    await reset();
    await writeFile(join(dir, 'optimizer.safetensors'), serializeSafetensors([], { step: 'ten' }));
    await assert.rejects(loadCheckpoint(dir), /optimizer\.safetensors: metadata "step" \("ten"\): step must be a non-negative integer/);

    await reset();
    await writeFile(join(dir, 'meta.json'), '[1, 2]');
    await assert.rejects(loadCheckpoint(dir), /meta\.json must hold a JSON object/);

    await writeFile(join(root, 'file'), 'x');
    await assert.rejects(loadCheckpoint(join(root, 'file')), /file: not a directory/);
  });
});

test('a LoRA checkpoint stores adapters under its config and names a malformed LoRA config', async () => {
  await withTempDir(async (root) => {
    const dir = join(root, 'ckpt');
    const lora = { rank: 2, alpha: 4, targets: ['q' as const, 'down' as const], dropout: 0 };
    const adapters = initLoraAdapters(config, lora, 1);
    await assert.rejects(saveCheckpoint(dir, { config, tokenizer, params: initParameters(config), lora }), /params: parameters not in the model config: "tok_emb"/);
    await saveCheckpoint(dir, { config, tokenizer, params: [...adapters].reverse(), lora });
    assert.deepEqual((await readdir(dir)).sort(), ['adapters.safetensors', 'config.json', 'tokenizer.json']);
    const loaded = await loadCheckpoint(dir);
    assert.deepEqual(loaded.lora, lora);
    assert.deepEqual(loaded.params, adapters);

    const cases: [unknown, RegExp][] = [
      [{ ...lora, dropout: 0.1 }, /config\.json: "lora": lora config: "dropout" must be 0/],
      [{ ...lora, targets: ['down', 'q'] }, /"lora": "targets" must be in the order \["q","down"\]/],
      [{ ...lora, scale: 2 }, /"lora": unknown field "scale"/],
      [{ rank: 2, alpha: 4, targets: ['q'] }, /"lora": "dropout" is missing/],
    ];
    for (const [value, error] of cases) {
      await writeFile(join(dir, 'config.json'), JSON.stringify({ format: 'rise-checkpoint', version: 1, model: config, lora: value }));
      await assert.rejects(loadCheckpoint(dir), error);
    }
  });
});
