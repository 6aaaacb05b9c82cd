import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import { Generator, type GenerationRequest } from '../../src/engine/generate.ts';
import { buildDecodeGraph } from '../../src/engine/graphs.ts';
import { DEFAULT_SAMPLING, sampleBatch } from '../../src/engine/sampling.ts';
import { createSession } from '../../src/engine/session.ts';
import { loadPretrained } from '../../src/models/load.ts';
import { chatTemplateFor } from '../../src/rise/chat-template.ts';
import { episodeContext, stateConversation } from '../../src/rise/conversation.ts';
import { everyRowLogits } from '../engine/logit-rows.ts';
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

test('on SmolLM2, a prefill that computes only each prompt\'s last logits samples exactly what every token\'s logits gave', async () => {
  const model = await loadPretrained(smollm2Stored().card.digest);
  const decode = await createSession(buildDecodeGraph(model.config), 1, model.params);
  const run = (step: Record<string, ort.Tensor>) => decode.run(step);
  // One prompt alone (a one-row output head) and three of different lengths prefilled together.
  const texts = ['Question: What is 7 times 8?\nAnswer:', 'Question: A train travels 60 km in 1.5 hours. What is its speed?\nAnswer:', 'Hi'];
  const requests: GenerationRequest[] = texts.map((text, i) => ({ id: `r${i}`, prompt: model.tokenizer.encode(text) }));
  const options = { ...DEFAULT_SAMPLING, temperature: 1, maxNewTokens: 4, seed: 5 };
  for (const batch of [requests.slice(0, 1), requests]) {
    const m = { config: model.config, tokenizer: model.tokenizer };
    const now = await sampleBatch({ ...m, decode: run }, batch, { ...options, batchSize: batch.length });
    const before = await sampleBatch({ ...m, decode: everyRowLogits(run) }, batch, { ...options, batchSize: batch.length });
    assert.deepEqual(now, before, `${batch.length} prompts`);
  }
});

test('on SmolLM2, a RISE episode\'s later turns start from the prefix cache and sample what prefilling the whole chat samples', async () => {
  const model = await loadPretrained(smollm2Stored().card.digest);
  const generator = new Generator(model.config, model.params, model.tokenizer, { threads: 1 });
  const decode = await createSession(buildDecodeGraph(model.config), 1, model.params);
  const plain = { config: model.config, tokenizer: model.tokenizer, decode: (step: Record<string, ort.Tensor>) => decode.run(step) };
  const template = chatTemplateFor(model.tokenizer);
  const prompting = { instruction: 'Solve the problem. End with the answer.', feedback: 'Your answer may be wrong. Try again.' };
  const problems = ['What is 17 times 3?', 'A shop sells 4 pens for $6. How much do 10 pens cost?'];
  const attempts: string[][] = problems.map(() => []);
  const fed = problems.map(() => 0);
  const options = { ...DEFAULT_SAMPLING, temperature: 0.7, maxNewTokens: 16, stopTokens: [...template.stopTokens], seed: 9, batchSize: 2 };
  for (let turn = 1; turn <= 3; turn++) {
    const requests: GenerationRequest[] = problems.map((problem, p) => ({
      id: `p${p}|t${turn}`,
      prompt: template.renderPrompt(stateConversation(episodeContext(prompting, { prompt: problem }), attempts[p])),
      keepCache: true,
    }));
    const cached = await generator.generate(requests, options);
    const whole = await sampleBatch(plain, requests, options);
    for (const [p, r] of requests.entries()) {
      assert.deepEqual(cached[p].tokens, whole[p].tokens, `turn ${turn}: ${r.id}`);
      cached[p].logprobs.forEach((lp, t) => assert.ok(Math.abs(lp - whole[p].logprobs[t]) < 1e-4, `turn ${turn}: ${r.id}: log-prob ${t}`));
      // From turn 2 the last turn's prompt and response (but its last token, never fed) come from the cache.
      assert.equal(cached[p].cachedTokens, turn === 1 ? 0 : fed[p], `turn ${turn}: ${r.id}`);
      attempts[p].push(cached[p].text);
      fed[p] = r.prompt.length + cached[p].tokens.length - 1;
    }
  }
});
