/**
 * The imported SmolLM2-135M-Instruct computes what Hugging Face transformers computes on the same GGUF:
 * logits at every position of several prompts within 1e-3 (on logits up to ~40), and the same greedy
 * continuations. The reference (test/fixtures/smollm2-logits.json) comes from transformers' own GGUF
 * loader — dequantization, the q/k un-permute and the model code all independent of ours — by
 * scripts/reference/logits_reference.py, which stays runnable (bench/torch/setup.sh makes its venv).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import test from 'node:test';
import ort from 'onnxruntime-node';
import { Generator } from '../../src/engine/generate.ts';
import { getSession } from '../../src/engine/session.ts';
import { loadPretrained } from '../../src/models/load.ts';
import { smollm2Stored } from './real-model.ts';

interface Position {
  argmax: number;
  logsumexp: number;
  logits: number[];
}
interface Prompt {
  name: string;
  tokenIds: number[];
  ids: number[];
  positions: Position[];
  greedy?: { newTokenIds: number[]; margins: number[] };
}
const fixture = JSON.parse(readFileSync(new URL('../fixtures/smollm2-logits.json', import.meta.url), 'utf8')) as { eosTokenId: number; prompts: Prompt[] };

const TOLERANCE = 1e-3;

test('SmolLM2 logits equal transformers on the same GGUF at every position of every prompt (within 1e-3)', async (t) => {
  const model = await loadPretrained(smollm2Stored().card.digest);
  const session = await getSession({ kind: 'forward', config: model.config });
  const weights = Object.fromEntries(model.params.map((p) => [p.name, new ort.Tensor('float32', p.data, p.shape)]));
  const V = model.config.vocabSize;
  let worst = 0;
  for (const prompt of fixture.prompts) {
    const T = prompt.tokenIds.length;
    const out = await session.run({ ...weights, tokens: new ort.Tensor('int64', BigInt64Array.from(prompt.tokenIds.map(BigInt)), [1, T]) });
    const logits = out.logits.data as Float32Array;
    assert.equal(prompt.positions.length, T, `${prompt.name}: one reference row per position`);
    prompt.positions.forEach((ref, at) => {
      const row = logits.subarray(at * V, (at + 1) * V);
      let max = -Infinity;
      let argmax = 0;
      for (let i = 0; i < V; i++) if (row[i] > max) [max, argmax] = [row[i], i];
      let z = 0;
      for (let i = 0; i < V; i++) z += Math.exp(row[i] - max);
      const lse = max + Math.log(z);
      assert.ok(Math.abs(lse - ref.logsumexp) < TOLERANCE, `${prompt.name} position ${at}: logsumexp ${lse} vs ${ref.logsumexp}`);
      prompt.ids.forEach((id, k) => {
        const diff = Math.abs(row[id] - ref.logits[k]);
        worst = Math.max(worst, diff);
        assert.ok(diff < TOLERANCE, `${prompt.name} position ${at} token ${id}: ${row[id]} vs transformers ${ref.logits[k]}`);
      });
      assert.equal(argmax, ref.argmax, `${prompt.name} position ${at}: argmax`);
    });
  }
  t.diagnostic(`largest |logit difference| ${worst.toExponential(2)}`);
});

test('SmolLM2 greedy continuations equal transformers generate()', async () => {
  const model = await loadPretrained(smollm2Stored().card.digest);
  const generator = new Generator(model.config, model.params, model.tokenizer);
  for (const prompt of fixture.prompts.filter((p) => p.greedy !== undefined)) {
    const want = prompt.greedy!.newTokenIds;
    const [out] = await generator.generate([{ id: prompt.name, prompt: prompt.tokenIds }], {
      temperature: 0,
      maxNewTokens: want.length,
      stopTokens: [fixture.eosTokenId],
      batchSize: 1,
    });
    assert.deepEqual(out.tokens, want, `${prompt.name}: greedy tokens`);
  }
});
