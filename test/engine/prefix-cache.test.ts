import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import { resolveModelConfig } from '../../src/engine/config.ts';
import { buildDecodeGraph } from '../../src/engine/graphs.ts';
import { joinSpans, type KvRows, type KvSpan } from '../../src/engine/kv-cache.ts';
import { initParameters } from '../../src/engine/parameters.ts';
import { BLOCK, PrefixCache, prefixCacheBudget } from '../../src/engine/prefix-cache.ts';
import { DEFAULT_SAMPLING, sampleBatch, type GenerationRequest } from '../../src/engine/sampling.ts';
import { createSession } from '../../src/engine/session.ts';
import { CharTokenizer } from '../../src/engine/tokenizer.ts';

/** Keys and values of one row over `tokens`, two layers, one head of width 2: position p holds token·10 + p. */
function rowOf(tokens: readonly number[]): KvSpan {
  const layer = (sign: number) => Float32Array.from({ length: tokens.length * 2 }, (_, i) => sign * (tokens[i >> 1] * 10 + (i & 1)));
  const kv: KvRows = { keys: [layer(1), layer(2)], values: [layer(-1), layer(-2)] };
  return { kv, row: 0, stride: tokens.length, count: tokens.length };
}
const BYTES_PER_POSITION = 2 * 2 * 2 * 4;
const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

test('spans are joined in order, each from its own row and stride', () => {
  // Row 1 of a 2-row, 2-head output with 3 positions a row, then 2 positions of a one-row span.
  const wide: KvRows = { keys: [Float32Array.from(range(0, 2 * 2 * 3 * 1))], values: [Float32Array.from(range(100, 12))] };
  const narrow: KvRows = { keys: [Float32Array.of(50, 51, 52, 53)], values: [Float32Array.of(150, 151, 152, 153)] };
  const joined = joinSpans([{ kv: wide, row: 1, stride: 3, count: 3 }, { kv: narrow, row: 0, stride: 2, count: 2 }], 2, 1);
  assert.deepEqual([...joined.keys[0]], [6, 7, 8, 50, 51, 9, 10, 11, 52, 53]);
  assert.deepEqual([...joined.values[0]], [106, 107, 108, 150, 151, 109, 110, 111, 152, 153]);
});

test('a prompt starts from the kept sequence it shares most with, never past its own last token', () => {
  const cache = new PrefixCache(1 << 20);
  const a = range(0, 80);
  const b = [...range(0, 40), ...range(500, 40)];
  cache.keep('', a, [rowOf(a)]);
  cache.keep('', b, [rowOf(b)]);
  assert.equal(cache.size, 2);

  const followsA = [...range(0, 70), 900, 901];
  const m = cache.match('', followsA)!;
  assert.equal(m.length, 70, 'the common prefix with a, not with b (40)');
  assert.deepEqual([...joinSpans(m.spans, 1, 2).keys[1]].slice(-2), [2 * 690, 2 * 691], 'the span is a\'s, up to position 69');
  assert.equal(cache.match('', a)!.length, 79, 'the whole of a matches, but its last token is left to run');
  assert.equal(cache.match('', [...range(0, 45), 7])!.length, 45, 'a prompt sharing a block and a part of the next with both');
  assert.equal(cache.match('', [...range(0, BLOCK - 1), 7]), null, 'less than a block shared');
  assert.equal(cache.match('', range(1, 80)), null, 'nothing shared from the start');
});

test('a sequence that extends a kept one replaces it, and one already covered is not kept twice', () => {
  const cache = new PrefixCache(1 << 20);
  const turn1 = range(0, 40);
  cache.keep('', turn1, [rowOf(turn1)]);
  // The next turn's prompt: turn 1 from the cache, the rest from a prefill.
  const turn2 = [...turn1, ...range(300, 30)];
  const m = cache.match('', turn2)!;
  cache.keep('', turn2, [...m.spans, { ...rowOf(turn2.slice(40)) }]);
  assert.equal(cache.size, 1, 'turn 1 went: turn 2 serves every prompt it served');
  assert.equal(cache.bytes, turn2.length * BYTES_PER_POSITION, 'turn 1\'s arrays, now held by turn 2, and its own');
  cache.keep('', turn2.slice(0, 50), [rowOf(turn2.slice(0, 50))]);
  assert.equal(cache.size, 1, 'a prefix of a kept sequence adds nothing');
  cache.keep('', range(0, 20), [rowOf(range(0, 20))]);
  assert.equal(cache.size, 1, 'shorter than a block: not kept');
});

test('the cache holds to its budget, the least recently used going first', () => {
  const seq = (k: number) => range(1000 * k, 64);
  const cache = new PrefixCache(3 * 64 * BYTES_PER_POSITION);
  for (const k of [1, 2, 3]) cache.keep('', seq(k), [rowOf(seq(k))]);
  assert.ok(cache.match('', [...seq(1), 5]) !== null, 'sequence 1 used: now the most recent');
  cache.keep('', seq(4), [rowOf(seq(4))]);
  assert.equal(cache.size, 3);
  assert.equal(cache.match('', [...seq(2), 5]), null, 'sequence 2, the least recently used, went');
  for (const k of [1, 3, 4]) assert.ok(cache.match('', [...seq(k), 5]) !== null, `sequence ${k} kept`);
  cache.keep('', range(0, 4 * 64), [rowOf(range(0, 4 * 64))]);
  assert.equal(cache.size, 3, 'a sequence larger than the whole budget is not kept');
  const off = new PrefixCache(0);
  off.keep('', seq(1), [rowOf(seq(1))]);
  assert.equal(off.size, 0, 'a budget of 0 keeps nothing');
});

test('kept sequences hold views of the arrays they were computed in: an array several hold counts once, and goes with the last', () => {
  // Two prompts prefilled together: rows 0 and 1 of one output, padded to 64 positions.
  const a = range(0, 64);
  const b = range(100, 40);
  const prefill: KvRows = { keys: [new Float32Array(2 * 64 * 2)], values: [new Float32Array(2 * 64 * 2)] };
  const bytesOfPrefill = 2 * prefill.keys[0].byteLength;
  const cache = new PrefixCache(1 << 20);
  cache.keep('', a, [{ kv: prefill, row: 0, stride: 64, count: 64 }]);
  cache.keep('', b, [{ kv: prefill, row: 1, stride: 64, count: 40 }]);
  assert.equal(cache.bytes, bytesOfPrefill, 'the two rows share one output');
  assert.equal(cache.match('', [...a, 5])!.spans[0].kv, prefill, 'a match is a view, not a copy');

  // A turn after a's: a's positions from its view, the rest from its own prefill. a goes (the longer serves
  // all it served), but the output stays: b and the new turn still view it.
  const turn2 = [...a, ...range(500, 32)];
  const own = rowOf(turn2.slice(64));
  cache.keep('', turn2, [...cache.match('', turn2)!.spans, own]);
  assert.equal(cache.size, 2);
  assert.equal(cache.bytes, bytesOfPrefill + 32 * BYTES_PER_POSITION);
  const tight = new PrefixCache(bytesOfPrefill + 32 * BYTES_PER_POSITION);
  tight.keep('', b, [{ kv: prefill, row: 1, stride: 64, count: 40 }]);
  tight.keep('', turn2, [{ kv: prefill, row: 0, stride: 64, count: 64 }, own]);
  tight.keep('', range(900, 32), [rowOf(range(900, 32))]);
  assert.equal(tight.size, 1, 'over budget: b went first (it freed nothing), then turn 2, which freed the output');
  assert.equal(tight.bytes, 32 * BYTES_PER_POSITION);
});

test('sequences are matched only within the scope they were kept in', () => {
  const cache = new PrefixCache(1 << 20);
  const a = range(0, 64);
  cache.keep('collection 1', a, [rowOf(a)]);
  assert.equal(cache.match('collection 2', [...a, 5]), null);
  assert.equal(cache.match('', [...a, 5]), null, 'nor in the shared scope');
  assert.equal(cache.match('collection 1', [...a, 5])!.length, 64);
  cache.keep('collection 2', a, [rowOf(a)]);
  assert.equal(cache.size, 2, 'the same tokens in two scopes are two entries');
});

test('RISE_PREFIX_CACHE_MB sets the budget, and a bad value is named', () => {
  assert.equal(prefixCacheBudget({}), 1024 * 2 ** 20);
  assert.equal(prefixCacheBudget({ RISE_PREFIX_CACHE_MB: '0' }), 0);
  assert.equal(prefixCacheBudget({ RISE_PREFIX_CACHE_MB: '64' }), 64 * 2 ** 20);
  for (const bad of ['-1', '1.5', 'lots']) assert.throws(() => prefixCacheBudget({ RISE_PREFIX_CACHE_MB: bad }), new RegExp(`RISE_PREFIX_CACHE_MB="${bad}"`));
});

test('later turns started from the prefix cache sample what prefilling their whole conversation samples', async () => {
  const tokenizer = new CharTokenizer();
  const config = resolveModelConfig({ vocabSize: tokenizer.vocabSize, layers: 2, dim: 32, heads: 4, kvHeads: 2, context: 200, seed: 5 });
  const params = initParameters(config);
  for (const p of params) if (p.shape.length === 2) p.data = p.data.map((x) => x * 8);
  const session = await createSession(buildDecodeGraph(config), 1, params);
  const fed = { cached: 0, plain: 0 };
  const model = (kind: keyof typeof fed, kept?: PrefixCache) => ({
    config,
    tokenizer,
    kept,
    decode: (step: Record<string, ort.Tensor>) => {
      if (step.tokens.dims[1] > 1) fed[kind] += step.tokens.dims[0] * step.tokens.dims[1];
      return session.run(step);
    },
  });
  const questions = ['Question: what is 12 plus 7? Think first.', 'Question: spell the word RISE backwards, please', 'Question: is 91 a prime number? Answer yes or no.'];
  const options = { ...DEFAULT_SAMPLING, temperature: 1, maxNewTokens: 9, seed: 17, batchSize: 3 };
  const kept = new PrefixCache(1 << 24);
  // Turn 1: best-of-2 per question, candidate 0 continued; then two turns of each continued conversation,
  // beside a prompt that shares only the start of a question and one that shares nothing.
  let prompts = questions.map((q) => tokenizer.encode(q));
  let requests: GenerationRequest[] = prompts.flatMap((prompt, q) => [0, 1].map((c) => ({ id: `q${q}|t1|c${c}`, prompt, keepCache: c === 0 })));
  for (let turn = 1; turn <= 3; turn++) {
    const cached = await sampleBatch(model('cached', kept), requests, options);
    const plain = await sampleBatch(model('plain'), requests, options);
    for (const [i, r] of requests.entries()) {
      assert.deepEqual(cached[i].tokens, plain[i].tokens, `turn ${turn}: ${r.id}`);
      cached[i].logprobs.forEach((lp, t) => assert.ok(Math.abs(lp - plain[i].logprobs[t]) < 1e-5, `turn ${turn}: ${r.id}: log-prob ${t}`));
      assert.equal(plain[i].cachedTokens, 0);
    }
    if (turn > 1) {
      questions.forEach((_, q) => {
        const g = cached.find((x) => x.id === `q${q}|t${turn}|c0`)!;
        // Everything the last turn fed came from the cache: its prompt and all its tokens but the last.
        assert.equal(g.cachedTokens, prompts[q].length - 1 - tokenizer.encode(' Again: ').length, `turn ${turn}: question ${q}`);
      });
      const partial = requests.find((r) => r.id === 'partial')!.prompt;
      const shared = turn === 2 ? partial.findIndex((t, i) => t !== prompts[1][i]) : partial.length - 1;
      assert.equal(cached.find((x) => x.id === 'partial')!.cachedTokens, shared, 'from the question it starts like, then from itself');
      assert.equal(cached.find((x) => x.id === 'unrelated')!.cachedTokens, 0);
    }
    // The next turn's prompt is this one, the response, and the feedback.
    const last = new Map(cached.map((g) => [g.id, g]));
    prompts = prompts.map((prompt, q) => [...prompt, ...last.get(requests.find((r) => r.id.startsWith(`q${q}|t${turn}|c0`))!.id)!.tokens, ...tokenizer.encode(' Again: ')]);
    requests = [
      ...prompts.map((prompt, q) => ({ id: `q${q}|t${turn + 1}|c0`, prompt, keepCache: true })),
      { id: 'partial', prompt: tokenizer.encode(`${questions[1].slice(0, 40)} and then forwards`) },
      { id: 'unrelated', prompt: tokenizer.encode('What comes after 41?') },
    ];
  }
  assert.ok(fed.cached < fed.plain / 2, `prefilled ${fed.cached} positions with the cache, ${fed.plain} without`);

  // A long cached prompt prefilled beside a long fresh one: the short part fed after the cached one is
  // padded to the fresh prompt's length, which must not run its positions past the context.
  const last: GenerationRequest[] = [{ id: 'continued', prompt: prompts[0] }, { id: 'long', prompt: tokenizer.encode('Question: '.padEnd(150, 'ab ')) }];
  const cachedLast = await sampleBatch(model('cached', kept), last, options);
  const plainLast = await sampleBatch(model('plain'), last, options);
  assert.deepEqual(cachedLast.map((g) => g.tokens), plainLast.map((g) => g.tokens));
  assert.ok(cachedLast[0].cachedTokens + 150 > config.context, `${cachedLast[0].cachedTokens} cached positions`);
});
