/**
 * A remote policy against endpoints that answer, refuse, rate-limit, fail and hang (a stand-in endpoint
 * on 127.0.0.1 inside each test), over a real store: what is recorded, what is called again, what fails
 * and how, and where the API key goes.
 */

import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { requestRngKey } from '../../src/engine/sampling.ts';
import { endpointLimiter } from '../../src/remote/limiter.ts';
import { CallBudgetError, OpenAIPolicy, RemotePolicyError, RemoteUnavailableError, type OpenAIPolicyOptions } from '../../src/remote/openai-policy.ts';
import type { PolicyRequest, SamplingParams } from '../../src/rise/policy.ts';
import { callStats, startStep, type Store } from '../../src/store/index.ts';
import { rowCount, tempStore } from '../store/helpers.ts';
import { completion, failure, fakeEndpoint, type FakeAnswer, type FakeEndpoint, type ReceivedCall } from './fake-endpoint.ts';

const sampling: SamplingParams = { temperature: 0.7, topP: 1, maxTokens: 32, seed: 5 };

function requests(count: number, question = (i: number) => `question ${i}`): PolicyRequest[] {
  return Array.from({ length: count }, (_, i) => ({ id: `p${i}|t2|c0|r0`, conversation: { messages: [{ role: 'user', content: question(i) }] } }));
}

/** Answers every call: the question, the call's seed and the choice. */
const echo = (call: ReceivedCall) => completion(call, (i) => `${call.body.messages.at(-1)!.content} / seed ${call.body.seed} / choice ${i}`);

async function endpoint(t: TestContext, answer: (call: ReceivedCall, index: number) => FakeAnswer = echo): Promise<FakeEndpoint> {
  const e = await fakeEndpoint(answer);
  t.after(() => e.close());
  return e;
}

async function step(store: Store, key: string): Promise<string> {
  await startStep(store, { key, kind: 'relabel', params: {}, inputs: [] });
  return key;
}

function policy(store: Store, e: FakeEndpoint, over: Partial<OpenAIPolicyOptions> = {}, stepKey = 'relabel-a'): OpenAIPolicy {
  return new OpenAIPolicy({
    name: 'expert',
    baseUrl: e.baseUrl,
    model: 'teacher',
    n: 1,
    apiKey: null,
    concurrency: 4,
    requestsPerMinute: null,
    timeoutSeconds: 10,
    retries: 2,
    budget: { maxCalls: null, maxTokens: null },
    ledger: { store, stepKey, runId: null },
    ...over,
  });
}

test('every response is recorded before use; a retry, another step and a later policy read it back instead of calling', async (t) => {
  const store = await tempStore(t);
  const e = await endpoint(t);
  await step(store, 'relabel-a');
  const asked = requests(6);
  const first = await policy(store, e).respond(asked, sampling);
  assert.equal(e.calls.length, 6);
  // Each call carries its sample's stream key as the seed, and the step's sampling knobs.
  assert.deepEqual(e.calls.map((c) => c.body.seed).sort(), asked.map((r) => requestRngKey(sampling.seed, r.id)).sort());
  assert.ok(e.calls.every((c) => c.body.temperature === 0.7 && c.body.max_tokens === 32 && c.body.model === 'teacher' && c.body.logprobs === true));
  assert.equal(await rowCount(store, 'remote_responses'), 6);
  assert.deepEqual(first.map((r) => r.tokens), first.map((r) => r.text.length), 'tokens: one per log-probability entry');
  assert.ok(first.every((r) => r.logprob === -0.25 * r.tokens && r.finishReason === 'stop'));

  const again = await policy(store, e).respond(asked, sampling);
  assert.equal(e.calls.length, 6, 'a retried step pays for nothing already recorded');
  assert.deepEqual(again, first);
  await step(store, 'relabel-b');
  const other = await policy(store, e, {}, 'relabel-b').respond([...asked, ...requests(8).slice(6)], sampling);
  assert.equal(e.calls.length, 8, 'another step asking the same pays only for what is new');
  assert.deepEqual(other.slice(0, 6), first);
  const stats = await callStats(store, ['relabel-a', 'relabel-b']);
  assert.deepEqual(stats.get('relabel-a'), { calls: 6, promptTokens: 60, completionTokens: first.reduce((n, r) => n + r.tokens, 0), served: 6 });
  assert.deepEqual({ calls: stats.get('relabel-b')!.calls, served: stats.get('relabel-b')!.served }, { calls: 2, served: 6 });

  // Other sampling knobs, seed or model are other requests.
  await policy(store, e).respond(asked.slice(0, 1), { ...sampling, temperature: 0.5 });
  await policy(store, e).respond(asked.slice(0, 1), { ...sampling, seed: 6 });
  await policy(store, e, { model: 'other' }).respond(asked.slice(0, 1), sampling);
  assert.equal(e.calls.length, 11);
});

test('with n > 1, candidates for the same messages share calls of up to n choices', async (t) => {
  const store = await tempStore(t);
  const e = await endpoint(t);
  await step(store, 'relabel-a');
  const same = Array.from({ length: 5 }, (_, c) => ({ id: `p0|t2|c${c}|r0`, conversation: { messages: [{ role: 'user' as const, content: 'the same state' }] } }));
  const responses = await policy(store, e, { n: 2 }).respond([...same, ...requests(1)], sampling);
  assert.deepEqual(e.calls.map((c) => c.body.n ?? 1).sort(), [1, 1, 2, 2]);
  assert.equal(new Set(responses.map((r) => r.text)).size, 6, 'every request its own choice');
  const firstCall = e.calls.find((c) => c.body.n === 2 && c.body.seed === requestRngKey(sampling.seed, same[0].id));
  assert.ok(firstCall, 'a call is seeded with its first request\'s stream key');
  assert.deepEqual(
    responses.slice(0, 2).map((r) => r.text),
    [0, 1].map((i) => `the same state / seed ${firstCall.body.seed} / choice ${i}`),
  );
  await policy(store, e, { n: 2 }).respond(same, sampling);
  assert.equal(e.calls.length, 4, 'each choice was recorded under its own request');
});

test('a 429 is retried no sooner than its Retry-After, which holds every caller of the endpoint', async (t) => {
  const store = await tempStore(t);
  const e = await endpoint(t, (call, i) => (i === 0 ? failure(429, 'slow down', { 'retry-after': '1' }) : echo(call)));
  await step(store, 'relabel-a');
  // One call at a time: the first is refused, the rest queue behind its Retry-After.
  const responses = await policy(store, e, { concurrency: 1 }).respond(requests(3), sampling);
  assert.equal(responses.length, 3);
  assert.equal(e.calls.length, 4);
  for (const later of e.calls.slice(1)) assert.ok(later.at - e.calls[0].at >= 1000, `a call ${later.at - e.calls[0].at} ms after the 429`);
  assert.equal(e.calls.filter((c) => c.body.seed === e.calls[0].body.seed).length, 2, 'the refused call, made again');
});

test('a 5xx is retried with backoff; one that persists fails the step as retryable, recording nothing', async (t) => {
  const store = await tempStore(t);
  await step(store, 'relabel-a');
  const flaky = await endpoint(t, (call, i) => (i < 2 ? failure(503, 'overloaded') : echo(call)));
  const [r] = await policy(store, flaky, { retries: 3 }).respond(requests(1), sampling);
  assert.match(r.text, /question 0/);
  assert.equal(flaky.calls.length, 3);
  assert.ok(flaky.calls[2].at - flaky.calls[1].at >= 250, 'backed off');

  const down = await endpoint(t, () => failure(500, 'internal error'));
  await assert.rejects(policy(store, down, { retries: 1 }).respond(requests(1, () => 'other'), sampling), (err: unknown) => {
    assert.ok(err instanceof RemoteUnavailableError);
    assert.match(err.message, /remote policy teacher at http:\/\/127\.0\.0\.1:\d+\/v1: HTTP 500: internal error, after 1 retries/);
    return true;
  });
  assert.equal(down.calls.length, 2);
  assert.equal(await rowCount(store, 'remote_calls'), 1, 'only the flaky endpoint\'s answered call');
});

test('a 400 fails the step at once, not retryable, with the server\'s message', async (t) => {
  const store = await tempStore(t);
  await step(store, 'relabel-a');
  const e = await endpoint(t, () => failure(400, "'temperature' must be at most 2"));
  await assert.rejects(policy(store, e).respond(requests(1), sampling), (err: unknown) => {
    assert.ok(err instanceof RemotePolicyError);
    assert.equal(err.name, 'RemotePolicyError');
    assert.match(err.message, /remote policy teacher at .* refused the call: HTTP 400: 'temperature' must be at most 2$/);
    return true;
  });
  assert.equal(e.calls.length, 1);
});

test('after a failure no further call starts, and the calls in flight are recorded before the step fails', async (t) => {
  const store = await tempStore(t);
  await step(store, 'relabel-a');
  const e = await endpoint(t, (call, i) => (i === 0 ? failure(400, 'bad request') : { ...echo(call), delayMs: 300 }));
  let failedAt = 0;
  await assert.rejects(
    policy(store, e, { concurrency: 3 }).respond(requests(6), sampling).finally(() => (failedAt = Date.now())),
    RemotePolicyError,
  );
  assert.equal(e.calls.length, 3, 'the two in flight, and none after');
  assert.ok(e.calls.slice(1).every((c) => c.answeredAt! <= failedAt), 'the step failed after the calls in flight were answered');
  assert.equal(await rowCount(store, 'remote_responses'), 2, 'and recorded');
});

test('a call that hangs past its timeout is retried, then fails the step as retryable; a closed port likewise', async (t) => {
  const store = await tempStore(t);
  await step(store, 'relabel-a');
  const e = await endpoint(t, (call) => ({ ...echo(call), delayMs: 3000 }));
  await assert.rejects(policy(store, e, { timeoutSeconds: 0.3, retries: 1 }).respond(requests(1), sampling), /no answer within 0\.3 s, after 1 retries/);
  assert.equal(e.calls.length, 2);
  const gone = await endpoint(t);
  const baseUrl = gone.baseUrl;
  await gone.close();
  await assert.rejects(policy(store, { ...gone, baseUrl }, { retries: 1 }).respond(requests(1), sampling), (err: unknown) => err instanceof RemoteUnavailableError && /connection failed/.test(err.message));
});

test('a budget stops the step before the call that would exceed it; read-backs cost nothing', async (t) => {
  const store = await tempStore(t);
  const e = await endpoint(t);
  await step(store, 'relabel-a');
  await policy(store, e, { budget: { maxCalls: 3, maxTokens: null }, concurrency: 1 }).respond(requests(3), sampling);
  await assert.rejects(policy(store, e, { budget: { maxCalls: 3, maxTokens: null } }).respond(requests(4), sampling), (err: unknown) => {
    assert.ok(err instanceof CallBudgetError);
    assert.match(err.message, /the step's budget of 3 calls is spent \(3 made, 0 in flight\); raise budget\.maxCalls to go on/);
    return true;
  });
  assert.equal(e.calls.length, 3);
  const read = await policy(store, e, { budget: { maxCalls: 0, maxTokens: null } }).respond(requests(3), sampling);
  assert.equal(read.length, 3, 'a budget of 0 calls still answers from the ledger');
  // Tokens: before it starts, a call counts as its prompt's bytes + the template allowance + max_tokens.
  await step(store, 'relabel-b');
  const bound = 64 + Buffer.byteLength('new') + 16 + sampling.maxTokens;
  const tokens = (maxTokens: number) => policy(store, e, { budget: { maxCalls: null, maxTokens } }, 'relabel-b');
  await assert.rejects(tokens(bound - 1).respond(requests(1, () => 'new'), sampling), new RegExp(`past its budget of ${bound - 1} tokens \\(0 paid, up to 0 in flight, up to ${bound} for this call\\)`));
  await tokens(bound).respond(requests(1, () => 'new'), sampling);
  assert.equal(e.calls.length, 4);
  await tokens(0).respond(requests(1), sampling);
  assert.equal(e.calls.length, 4, 'question 0 was recorded by the other step: free');
});

test('rate limits are per endpoint and shared by every step of the process: concurrency and requests per minute', async (t) => {
  const store = await tempStore(t);
  const e = await endpoint(t, (call) => ({ ...echo(call), delayMs: 150 }));
  await step(store, 'relabel-a');
  await step(store, 'relabel-b');
  const limits = { concurrency: 2, requestsPerMinute: 600 };
  const t0 = Date.now();
  await Promise.all([
    policy(store, e, limits, 'relabel-a').respond(requests(4, (i) => `a${i}`), sampling),
    policy(store, e, limits, 'relabel-b').respond(requests(4, (i) => `b${i}`), sampling),
  ]);
  assert.equal(e.calls.length, 8);
  assert.equal(e.maxInFlight, 2, 'two steps, two calls in flight in all');
  // 600 a minute: call i starts no sooner than 100 i ms after the first could (it arrives later still).
  const arrivals = e.calls.map((c) => c.at).sort((a, b) => a - b);
  arrivals.forEach((at, i) => assert.ok(at - t0 >= 100 * i - 2, `call ${i} arrived ${at - t0} ms after the steps began`));
  // A later step naming looser limits does not loosen them.
  assert.equal(endpointLimiter(e.baseUrl, { concurrency: 16, requestsPerMinute: null }), endpointLimiter(e.baseUrl, limits));
});

test('the API key goes to the endpoint as the bearer token and nowhere else: not in errors, not in the store', async (t) => {
  const store = await tempStore(t);
  const key = 'sk-test-6c1f0e4d2b9a87355e2d';
  const e = await endpoint(t, (call) => (call.body.messages[0].content === 'leak' ? failure(401, `Incorrect API key provided: ${key}`) : echo(call)));
  await step(store, 'relabel-a');
  await policy(store, e, { apiKey: key }).respond(requests(2), sampling);
  assert.ok(e.calls.every((c) => c.headers.authorization === `Bearer ${key}`));
  await assert.rejects(policy(store, e, { apiKey: key }).respond(requests(1, () => 'leak'), sampling), (err: unknown) => {
    assert.ok(err instanceof RemotePolicyError);
    assert.match(err.message, /HTTP 401: Incorrect API key provided: \[API key\]/);
    assert.ok(!err.message.includes(key));
    return true;
  });
  const anonymous = await endpoint(t);
  await policy(store, anonymous).respond(requests(1, () => 'no key'), sampling);
  assert.equal(anonymous.calls[0].headers.authorization, undefined, 'no key: no Authorization header at all');
  // The store's files, read with the store closed (reading them open would drop SQLite's locks).
  store.sqlite!.pragma('wal_checkpoint(TRUNCATE)');
  await store.close();
  for (const file of readdirSync(store.home, { recursive: true, withFileTypes: true }).filter((f) => f.isFile())) {
    assert.ok(!readFileSync(join(file.parentPath, file.name)).includes(key), `${file.name} holds the key`);
  }
});
