/**
 * `rise serve` as clients use it: the real server (the CLI in its own process, the engine behind it) on
 * 127.0.0.1, called with the `openai` npm client and plain fetch.
 */

import assert from 'node:assert/strict';
import { mkdirSync, cpSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { Generator, requestRngKey, type GenerationRequest } from '../../src/engine/generate.ts';
import { EnginePolicy } from '../../src/rise/policy.ts';
import { CompactTemplate } from '../../src/rise/template.ts';
import { choiceKey } from '../../src/serve/requests.ts';
import { createRun, finishStep, openStore, startStep } from '../../src/store/index.ts';
import { rise, tempHome, tinyPlan, tinySpec, waitFor } from '../workflows/helpers.ts';
import { SMOLLM2, smollm2Stored } from '../models/real-model.ts';
import { startServe, tinyCharModel, tinyCheckpoint, type RunningServer } from './helpers.ts';

const model = tinyCharModel();
const { tokenizer, config } = model;
const template = new CompactTemplate(tokenizer);
const generator = new Generator(config, model.params, tokenizer, { threads: 1 });
const conversation = { messages: [{ role: 'user' as const, content: 'Start with 7, plus 5.' }, { role: 'assistant' as const, content: '11' }, { role: 'user' as const, content: 'The answer is incorrect. Please try again.\nStart with 7, plus 5.' }] };

describe('rise serve', () => {
  let server: RunningServer;
  let client: OpenAI;
  // Cleanups registered while the suite's `before` runs, run when the suite ends.
  const cleanups: (() => unknown)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });
  before(async () => {
    const suite = { after: (fn: () => unknown) => void cleanups.push(fn) };
    server = await startServe(suite, [await tinyCheckpoint(suite), '--name', 'tiny', '--batch-size', '4', '--quiet']);
    client = new OpenAI({ baseURL: server.baseUrl, apiKey: 'unused', maxRetries: 0 });
  });

  test('chat completions: a request whose seed is a sample\'s stream key gets the in-process sample; n choices, log-probabilities, usage', async () => {
    const seed = 42;
    const id = 'p7|t2|c3|r0';
    const [local] = await new EnginePolicy({ config, params: model.params, tokenizer }).respond([{ id, conversation }], { temperature: 0.9, topP: 0.95, maxTokens: 40, seed });
    const response = await client.chat.completions.create({ model: 'tiny', messages: conversation.messages, temperature: 0.9, top_p: 0.95, max_tokens: 40, seed: requestRngKey(seed, id), logprobs: true, n: 3 });
    assert.equal(response.object, 'chat.completion');
    assert.equal(response.model, 'tiny');
    const [first, ...others] = response.choices;
    assert.equal(first.message.content, local.text);
    assert.equal(first.message.role, 'assistant');
    assert.equal(first.finish_reason, local.finishReason === 'stop' ? 'stop' : 'length');
    const entries = first.logprobs!.content!.map((e) => e.logprob);
    assert.equal(entries.length, local.tokens, 'one entry per generated token, the stop token included');
    assert.ok(Math.abs(entries.reduce((a, b) => a + b, 0) - local.logprob) < 1e-3, 'choice 0: log-probability');
    // Choice i > 0 samples from its own stream, derived from the seed.
    const prompt = template.renderPrompt(conversation);
    const more = await generator.generate(
      others.map((_, i): GenerationRequest => ({ id: `c${i + 1}`, prompt, rngKey: choiceKey(requestRngKey(seed, id), i + 1) })),
      { temperature: 0.9, topP: 0.95, maxNewTokens: 40, stopTokens: [...template.stopTokens] },
    );
    assert.deepEqual(others.map((c) => c.message.content), more.map((g) => g.text));
    assert.deepEqual(response.choices.map((c) => c.index), [0, 1, 2]);
    assert.equal(new Set(response.choices.map((c) => c.message.content)).size, 3, 'three different samples');
    const generated: number[] = [local.tokens, ...more.map((g) => g.tokens.length)];
    const completion = generated.reduce((a, b) => a + b, 0);
    assert.deepEqual(response.usage, { prompt_tokens: prompt.length, completion_tokens: completion, total_tokens: prompt.length + completion, prompt_tokens_details: { cached_tokens: 0 } });

  });

  test('a chat\'s next message starts from the prefix cache, and usage counts the prompt tokens that came from it', async () => {
    const opening = { messages: [{ role: 'user' as const, content: 'Start with 3, plus 4.' }] };
    const first = await client.chat.completions.create({ model: 'tiny', messages: opening.messages, temperature: 0.9, max_tokens: 30, seed: 5 });
    // The response's last token was never fed, so everything before it is cached.
    const next = { messages: [...opening.messages, { role: 'assistant' as const, content: first.choices[0].message.content! }, { role: 'user' as const, content: 'Again.' }] };
    const followUp = await client.chat.completions.create({ model: 'tiny', messages: next.messages, temperature: 0.9, max_tokens: 5, seed: 1 });
    assert.equal(followUp.usage!.prompt_tokens, template.renderPrompt(next).length);
    assert.equal(followUp.usage!.prompt_tokens_details!.cached_tokens, first.usage!.prompt_tokens + first.usage!.completion_tokens - 1);
    const [alone] = await generator.generate([{ id: 'next', prompt: template.renderPrompt(next), rngKey: choiceKey(1, 0) }], { temperature: 0.9, maxNewTokens: 5, stopTokens: [...template.stopTokens] });
    assert.equal(followUp.choices[0].message.content, alone.text, 'the sample the engine draws in process');
  });

  test('streaming: server-sent chunks add up to the response, stop strings held back until they cannot form, usage last', async () => {
    const request = { model: 'tiny', messages: conversation.messages, temperature: 1, max_tokens: 60, seed: 9, stop: ['q', 'xyz'] };
    const whole = await client.chat.completions.create(request);
    const stream = await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true }, logprobs: true });
    let text = '';
    let chunks = 0;
    let finish: string | null = null;
    let logprobs = 0;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      chunks++;
      assert.equal(chunk.object, 'chat.completion.chunk');
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        text += c.delta.content ?? '';
        logprobs += c.logprobs?.content?.length ?? 0;
        finish = c.finish_reason ?? finish;
      }
    }
    assert.equal(text, whole.choices[0].message.content);
    assert.equal(finish, whole.choices[0].finish_reason);
    assert.ok(chunks > 3, `${chunks} chunks: streamed, not sent at once`);
    assert.deepEqual(usage, whole.usage);
    assert.equal(logprobs, whole.usage!.completion_tokens, 'one log-probability per generated token');

    // The raw event stream: data lines, ending with [DONE].
    const raw = await fetch(`${server.baseUrl}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...request, stream: true }) });
    assert.equal(raw.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    const events = (await raw.text()).split('\n\n').filter((e) => e !== '');
    assert.ok(events.every((e) => e.startsWith('data: ')));
    assert.equal(events.at(-1), 'data: [DONE]');
  });

  test('completions: text prompts continued after BOS, token-id prompts, several prompts times n', async () => {
    const response = await client.completions.create({ model: 'tiny', prompt: ['12+7=', 'hello'], n: 2, temperature: 0.7, seed: 5, logprobs: 0 });
    assert.equal(response.choices.length, 4);
    const prompts = ['12+7=', 'hello'].map((p) => [tokenizer.special.bos, ...tokenizer.encode(p)]);
    const expected = await generator.generate(
      [0, 1, 2, 3].map((i) => ({ id: `${i}`, prompt: prompts[Math.floor(i / 2)], rngKey: choiceKey(5, i) })),
      { temperature: 0.7, maxNewTokens: 16, stopTokens: [tokenizer.special.eos] },
    );
    assert.deepEqual(response.choices.map((c) => c.text), expected.map((g) => g.text));
    assert.deepEqual(response.choices.map((c) => c.index), [0, 1, 2, 3]);
    assert.deepEqual(response.choices[0].logprobs!.token_logprobs!.length, expected[0].tokens.length);
    const ids = await client.completions.create({ model: 'tiny', prompt: prompts[0], temperature: 0.7, seed: 5 });
    assert.equal(ids.choices[0].text, expected[0].text, 'a prompt of token ids is the same prompt');
  });

  test('concurrent requests each get their own result from the shared batch', async () => {
    const prompts = Array.from({ length: 10 }, (_, i) => `Start with ${i}, plus ${i + 3}.`);
    const ask = (p: string, seed: number) => client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: p }], temperature: 1, max_tokens: 30, seed });
    const together = await Promise.all(prompts.map((p, i) => ask(p, i)));
    for (const [i, p] of prompts.entries()) {
      const alone = await ask(p, i);
      assert.equal(together[i].choices[0].message.content, alone.choices[0].message.content, `request ${i}`);
    }
    const health = (await (await fetch(`${server.baseUrl.replace(/\/v1$/, '')}/health`)).json()) as { active: number };
    assert.equal(health.active, 0);
  });

  test('bad requests get OpenAI-style errors with 4xx codes, naming the field', async () => {
    const messages = [{ role: 'user' as const, content: 'hi' }];
    const expectError = async (call: Promise<unknown>, status: number, param: string | null, message: RegExp) => {
      const error = await call.then(
        () => assert.fail('expected an error'),
        (e: unknown) => e,
      );
      assert.ok(error instanceof OpenAI.APIError, String(error));
      assert.equal(error.status, status);
      assert.equal(error.param ?? null, param);
      assert.match(error.message, message);
    };
    await expectError(client.chat.completions.create({ model: 'gpt-4', messages }), 404, 'model', /model `gpt-4` does not exist; this server serves `tiny`/);
    await expectError(client.chat.completions.create({ model: 'tiny', messages, temperature: 3 }), 400, 'temperature', /must be <= 2/);
    await expectError(client.chat.completions.create({ model: 'tiny', messages: [] }), 400, 'messages', /fewer than 1 items/);
    await expectError(client.chat.completions.create({ model: 'tiny', messages, top_logprobs: 2, logprobs: true }), 400, 'top_logprobs', /only the sampled token/);
    await expectError(client.chat.completions.create({ model: 'tiny', messages, frequency_penalty: 0.5 }), 400, 'frequency_penalty', /not supported/);
    await expectError(client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'x'.repeat(200) }] }), 400, 'messages', /maximum context length is 144 tokens/);
    await expectError(client.chat.completions.create({ model: 'tiny', messages: [messages[0], { role: 'system', content: 'late' }] }), 400, 'messages', /system message must come first/);
    await expectError(client.completions.create({ model: 'tiny', prompt: [99999] }), 400, 'prompt', /token 99999 is not in the vocabulary/);
    const post = (path: string, body: string) => fetch(`${server.baseUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const typed = await post('/chat/completions', JSON.stringify({ model: 'tiny', messages, max_tokens: '5' }));
    assert.equal(typed.status, 400);
    assert.deepEqual(await typed.json(), { error: { message: 'max_tokens: must be integer', type: 'invalid_request_error', param: 'max_tokens', code: null } });
    const role = await post('/chat/completions', JSON.stringify({ model: 'tiny', messages: [{ role: 'robot', content: 'x' }] }));
    assert.match(((await role.json()) as { error: { message: string } }).error.message, /messages\[0\]\.role: must be equal to one of the allowed values \("system", "user", "assistant"\)/);
    const json = await post('/chat/completions', '{"model":');
    assert.equal(json.status, 400);
    assert.equal(((await json.json()) as { error: { type: string } }).error.type, 'invalid_request_error');
    const missing = await fetch(`${server.baseUrl}/embeddings`, { method: 'POST' });
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), { error: { message: 'Unknown request URL: POST /v1/embeddings', type: 'not_found_error', param: null, code: 'unknown_url' } });
  });

  test('GET /v1/models lists the served model', async () => {
    const models = await client.models.list();
    assert.deepEqual(models.data.map((m) => [m.id, m.object, m.owned_by]), [['tiny', 'model', 'rise']]);
    assert.equal((await client.models.retrieve('tiny')).id, 'tiny');
  });
});

test('a client that disconnects frees its slot: the next request is served at once', async (t) => {
  // One row and a context of 4096: the first request alone would decode for thousands of steps. Greedy,
  // because this model samples its end-of-sequence token within a few hundred tokens at temperature 1,
  // and a request that had already finished when the client went away could not be dropped; its greedy
  // continuation of "hello" runs the whole 4000 tokens.
  const server = await startServe(t, [await tinyCheckpoint(t, 4096), '--name', 'tiny', '--batch-size', '1', '--quiet']);
  const health = async () => (await (await fetch(`${server.baseUrl.replace(/\/v1$/, '')}/health`)).json()) as { active: number; dropped: number };
  const gone = new AbortController();
  const long = await fetch(`${server.baseUrl}/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tiny', prompt: 'hello', max_tokens: 4000, temperature: 0, stream: true }),
    signal: gone.signal,
  });
  const reader = long.body!.getReader();
  await reader.read(); // the first chunk: the request holds the row
  gone.abort();
  await waitFor('the dropped request to leave the batch', async () => ((await health()).dropped === 1 ? true : undefined), 120_000, 50);
  const next = await fetch(`${server.baseUrl}/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'tiny', prompt: 'hi', max_tokens: 5 }) });
  assert.equal(next.status, 200);
  assert.deepEqual(await health(), { status: 'ok', model: 'tiny', active: 0, dropped: 1 });
});

test('RUN:ARM:ITERATION serves the model a run trained; a wrong arm or an untrained iteration is a usage error', async (t) => {
  const home = tempHome(t);
  const store = await openStore({ home });
  t.after(async () => store.close());
  const spec = tinySpec('serve-run', { arms: { rise: {} } });
  const plan = tinyPlan(spec);
  const run = await createRun(store, { experiment: spec.name, spec, plan, arms: spec.arms });
  const boost = plan.arms[0].steps.find((s) => s.kind === 'boost')!;
  const dir = join('models', boost.key, 'g0');
  mkdirSync(join(home, 'models', boost.key), { recursive: true });
  cpSync(await tinyCheckpoint(t), join(home, dir), { recursive: true });
  await startStep(store, plan.steps[boost.key], run.id);
  await finishStep(store, boost.key, { model: { dir, config }, seconds: 1 });

  const server = await startServe(t, [`${run.id}:rise:0`, '--quiet'], { RISE_HOME: home });
  const client = new OpenAI({ baseURL: server.baseUrl, apiKey: 'unused', maxRetries: 0 });
  const served = await client.chat.completions.create({ model: `${run.id}:rise:0`, messages: conversation.messages, temperature: 0, max_tokens: 20 });
  const [local] = await new EnginePolicy({ config, params: model.params, tokenizer }).respond([{ id: 'x', conversation }], { temperature: 0, topP: 1, maxTokens: 20, seed: 0 });
  assert.equal(served.choices[0].message.content, local.text);

  const arm = await rise(['serve', `${run.id}:nope:0`], { RISE_HOME: home });
  assert.equal(arm.code, 2);
  assert.match(arm.stderr, /has no arm "nope"; its arms: rise/);
  const untrained = await rise(['serve', `${run.id}:rise:1`], { RISE_HOME: home });
  assert.equal(untrained.code, 2);
  assert.match(untrained.stderr, /the model of rise after iteration 1 is not in the store: its train step is/);
  const beyond = await rise(['serve', `${run.id}:rise:7`], { RISE_HOME: home });
  assert.equal(beyond.code, 2);
  assert.match(beyond.stderr, /has iterations 0 \(the boosted model\) to 1; found 7/);
});

test('SmolLM2 through rise serve answers as `rise generate --chat` does (its chat template, greedy)', async (t) => {
  smollm2Stored();
  const question = 'What is the capital of France?';
  const server = await startServe(t, [SMOLLM2, '--quiet']);
  const client = new OpenAI({ baseURL: server.baseUrl, apiKey: 'unused', maxRetries: 0 });
  const served = await client.chat.completions.create({ model: SMOLLM2, messages: [{ role: 'user', content: question }], temperature: 0, max_tokens: 32 });
  const local = await rise(['generate', '--model', SMOLLM2, '--chat', '--max-tokens', '32', question]);
  assert.equal(local.code, 0, local.stderr);
  assert.equal(`${served.choices[0].message.content}\n`, local.stdout);
  assert.match(served.choices[0].message.content ?? '', /Paris/);
  assert.equal(served.choices[0].finish_reason, 'stop');
});
