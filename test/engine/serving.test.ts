import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveModelConfig } from '../../src/engine/config.ts';
import { Generator, RequestDroppedError, requestRngKey, type Generation } from '../../src/engine/generate.ts';
import { initParameters } from '../../src/engine/parameters.ts';
import { CharTokenizer } from '../../src/engine/tokenizer.ts';

const tokenizer = new CharTokenizer();
const config = resolveModelConfig({ vocabSize: tokenizer.vocabSize, layers: 2, dim: 32, heads: 4, kvHeads: 2, context: 144, seed: 5 });
const params = initParameters(config);
for (const p of params) if (p.shape.length === 2) p.data = p.data.map((x) => x * 8);
const generator = new Generator(config, params, tokenizer, { threads: 1 });
const requests = ['12+7=', 'hello', 'a', '99*3=', 'xyz xyz', '0', 'RISE', '5-8='].map((text, i) => ({ id: `item-${i}`, prompt: tokenizer.encode(text) }));

const strip = (g: Generation) => ({ tokens: g.tokens, text: g.text, finishReason: g.finishReason });

/** Equal samples; log-probabilities to float32 rounding, which ONNX Runtime's kernels do differently at other batch shapes. */
function assertSame(actual: Generation, expected: Generation, what: string): void {
  assert.deepEqual(strip(actual), strip(expected), what);
  assert.equal(actual.logprobs.length, expected.logprobs.length, what);
  actual.logprobs.forEach((l, i) => assert.ok(Math.abs(l - expected.logprobs[i]) < 1e-4, `${what}: log-probability ${i}`));
}

test('a serving batch samples what a generation job samples: same streams, requests queued past the batch size', async (t) => {
  const options = { temperature: 1, topP: 0.9, maxNewTokens: 30, seed: 11, stopStrings: ['9'] };
  const expected = await generator.generate(requests, { ...options, batchSize: 8 });
  const batch = generator.serve({ batchSize: 3 });
  t.after(() => batch.close());
  const { seed: _, ...sampling } = options;
  const served = await Promise.all(requests.map((r) => batch.submit({ prompt: r.prompt, sampling, rngKey: requestRngKey(options.seed, r.id) })));
  served.forEach((g, i) => assertSame(g, expected[i], requests[i].id));
  assert.equal(batch.active, 0);
});

test('each request of a serving batch keeps its own knobs and streams its tokens as they are drawn', async (t) => {
  const batch = generator.serve({ batchSize: 4 });
  t.after(() => batch.close());
  const knobs = [
    { temperature: 0, maxNewTokens: 12 },
    { temperature: 1.3, maxNewTokens: 40 },
    { temperature: 0.5, topP: 0.5, maxNewTokens: 25 },
  ];
  const streamed: { token: number; logprob: number }[][] = knobs.map(() => []);
  const served = await Promise.all(
    knobs.map((k, i) => batch.submit({ prompt: requests[i].prompt, sampling: k, rngKey: requestRngKey(3, requests[i].id) }, { onToken: (token, logprob) => streamed[i].push({ token, logprob }) })),
  );
  for (const [i, k] of knobs.entries()) {
    const [alone] = await generator.generate([requests[i]], { ...k, seed: 3 });
    assertSame(served[i], alone, `request ${i} alone`);
    assert.deepEqual(streamed[i], served[i].tokens.map((token, j) => ({ token, logprob: served[i].logprobs[j] })), `request ${i}'s streamed tokens`);
  }
});

test('a request whose caller goes away leaves the batch: its row serves the next request', async (t) => {
  const batch = generator.serve({ batchSize: 1 });
  t.after(() => batch.close());
  // One row: the second request is admitted only when the first leaves it, and the third waits in the queue.
  const gone = new AbortController();
  let drawn = 0;
  const first = batch.submit({ prompt: requests[1].prompt, sampling: { temperature: 1, maxNewTokens: 130 }, rngKey: 1 }, {
    onToken: () => {
      if (++drawn === 2) gone.abort();
    },
    signal: gone.signal,
  });
  const queuedGone = new AbortController();
  const queued = batch.submit({ prompt: requests[2].prompt, sampling: { temperature: 1, maxNewTokens: 130 }, rngKey: 2 }, { signal: queuedGone.signal });
  queuedGone.abort();
  const next = batch.submit({ prompt: requests[3].prompt, sampling: { temperature: 0, maxNewTokens: 10 }, rngKey: 3 });
  await Promise.all([assert.rejects(first, RequestDroppedError), assert.rejects(queued, RequestDroppedError)]);
  assert.ok(drawn < 130, `the dropped request stopped after ${drawn} tokens`);
  const [alone] = await generator.generate([requests[3]], { temperature: 0, maxNewTokens: 10 });
  assertSame(await next, alone, 'the request after the dropped ones');
  assert.equal(batch.active, 0);
  assert.equal(batch.dropped, 2);
});

test('a bad request is refused before it reaches the batch, and close() rejects what is in flight', async () => {
  const batch = generator.serve({ batchSize: 2 });
  await assert.rejects(batch.submit({ prompt: [] }), /empty prompt/);
  await assert.rejects(batch.submit({ prompt: tokenizer.encode('x'.repeat(150)) }), /context is 144/);
  const running = batch.submit({ prompt: requests[0].prompt, sampling: { temperature: 1, maxNewTokens: 130 }, rngKey: 4 }, { onToken: () => void batch.close() });
  await assert.rejects(running, /cancelled/);
  assert.equal(batch.active, 0);
});
