import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Generator, type GenerationRequest } from '../../src/engine/generate.ts';
import { loadPretrained } from '../../src/models/load.ts';
import { smollm2Stored } from './real-model.ts';

test('on SmolLM2, best-of-N from one prefill samples what each request samples alone', async () => {
  const model = await loadPretrained(smollm2Stored().card.digest);
  const generator = new Generator(model.config, model.params, model.tokenizer, { threads: 1 });
  const prompts = [
    'Question: Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?\nAnswer:',
    'Question: Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. How much did she earn?\nAnswer:',
  ].map((text) => model.tokenizer.encode(text));
  const requests: GenerationRequest[] = prompts.flatMap((prompt, p) => [0, 1, 2].map((c) => ({ id: `p${p}|c${c}`, prompt })));
  const options = { temperature: 1, maxNewTokens: 6, stopTokens: [], seed: 3 };
  const together = await generator.generate(requests, { ...options, batchSize: requests.length });
  for (const [i, r] of requests.entries()) {
    const [alone] = await generator.generate([r], { ...options, batchSize: 1 });
    assert.deepEqual(together[i].tokens, alone.tokens, `request ${r.id}`);
    together[i].logprobs.forEach((lp, t) => assert.ok(Math.abs(lp - alone.logprobs[t]) < 1e-4, `request ${r.id}: log-prob ${t}`));
  }
  assert.ok(new Set(together.slice(0, 3).map((g) => g.tokens.join(','))).size > 1, 'the copies of a prompt drew the same sample');
});
