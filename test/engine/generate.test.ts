import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import { resolveModelConfig } from '../../src/engine/config.ts';
import { Generator, sampleToken, type Generation, type GenerationRequest } from '../../src/engine/generate.ts';
import { buildDecodeGraph, buildForwardGraph } from '../../src/engine/graphs.ts';
import { initParameters } from '../../src/engine/parameters.ts';
import { Rng } from '../../src/engine/random.ts';
import { DEFAULT_SAMPLING, sampleBatch, walksTempered } from '../../src/engine/sampling.ts';
import { createSession } from '../../src/engine/session.ts';
import { CharTokenizer } from '../../src/engine/tokenizer.ts';
import { everyRowLogits } from './logit-rows.ts';

const tokenizer = new CharTokenizer();
const config = resolveModelConfig({ vocabSize: tokenizer.vocabSize, layers: 2, dim: 32, heads: 4, kvHeads: 2, context: 144, seed: 5 });
const params = initParameters(config);
for (const p of params) if (p.shape.length === 2) p.data = p.data.map((x) => x * 8);
const generator = new Generator(config, params, tokenizer, { threads: 1 });
/** A row's softmax in float32 (at temperature T), as the decode graph gives it to the sampler. */
function softmaxOf(logits: Float32Array, T = 1): Float32Array {
  const max = Math.max(...logits);
  const e = Float64Array.from(logits, (l) => Math.exp((l - max) / T));
  const z = e.reduce((a, b) => a + b, 0);
  return Float32Array.from(e, (x) => x / z);
}

const requests: GenerationRequest[] = ['12+7=', 'hello', 'a', '99*3=', 'xyz xyz', '0', 'RISE', '5-8='].map((text, i) => ({
  id: `item-${i}`,
  prompt: tokenizer.encode(text),
}));

test('outputs do not depend on batch size or queue order', async () => {
  const options = { temperature: 1, maxNewTokens: 12, seed: 7 };
  const one = await generator.generate(requests, { ...options, batchSize: 1 });
  const three = await generator.generate(requests, { ...options, batchSize: 3 });
  const reversed = await generator.generate(requests.slice().reverse(), { ...options, batchSize: 8 });
  const byId = new Map(reversed.map((g) => [g.id, g]));
  for (let i = 0; i < requests.length; i++) {
    assert.deepEqual(three[i].tokens, one[i].tokens, `batch 3 vs 1 for ${requests[i].id}`);
    assert.deepEqual(byId.get(requests[i].id)!.tokens, one[i].tokens, `reversed batch 8 vs 1 for ${requests[i].id}`);
  }
  const distinct = new Set(one.map((g) => g.tokens.join(',')));
  assert.ok(distinct.size > 1, 'all sequences are identical: sampling is not per request');
  const other = await generator.generate(requests, { ...options, seed: 8, batchSize: 4 });
  assert.notDeepEqual(other.map((g) => g.tokens), one.map((g) => g.tokens), 'a different seed gave the same samples');
});

test('a prompt shared by several requests is prefilled once, and each request samples what it samples alone', async () => {
  // Best-of-5 over three prompts, the copies interleaved with distinct prompts and split across admissions.
  const prompts = ['12+7=', 'hello', '99*3='];
  const shared: GenerationRequest[] = [];
  for (let c = 0; c < 5; c++) prompts.forEach((text, p) => shared.push({ id: `p${p}|c${c}`, prompt: tokenizer.encode(text) }));
  shared.push(...requests.slice(4));
  const options = { ...DEFAULT_SAMPLING, temperature: 1, maxNewTokens: 12, seed: 11, batchSize: 4 };
  const decode = await createSession(buildDecodeGraph(config), 1, params);
  let prefilledRows = 0;
  const model = {
    config,
    tokenizer,
    decode: (step: Record<string, ort.Tensor>) => {
      if (step.tokens.dims[1] > 1) prefilledRows += step.tokens.dims[0];
      return decode.run(step);
    },
  };
  const together = await sampleBatch(model, shared, options);
  assert.equal(prefilledRows, prompts.length + 4, 'each distinct prompt prefilled once');
  // Two rows hold at most two prompts' caches: the third interleaved prompt evicts one, prefilled again later.
  prefilledRows = 0;
  const evicting = await sampleBatch(model, shared, { ...options, batchSize: 2 });
  assert.ok(prefilledRows > prompts.length + 4, `${prefilledRows} prompts prefilled: no prompt was evicted and prefilled again`);
  for (const [i, r] of shared.entries()) {
    const [alone] = await sampleBatch(model, [r], options);
    for (const [name, g] of [['batch 4', together[i]], ['batch 2, evicting', evicting[i]]] as const) {
      const { logprobs, ...rest } = g;
      assert.deepEqual({ ...rest, logprobs: [] }, { ...alone, logprobs: [] }, `${name}: request ${r.id}`);
      // Same tokens; the log-probs' rounding depends on the shapes of the runs (batch size, padding), as without sharing.
      logprobs.forEach((lp, t) => assert.ok(Math.abs(lp - alone.logprobs[t]) < 1e-5, `${name}: request ${r.id}: log-prob ${t}`));
    }
  }
  assert.equal(new Set(together.slice(0, 15).map((g) => g.tokens.join(','))).size > 3, true, 'copies of a prompt drew different samples');
});

test('a prefill that computes only each prompt\'s last logits samples exactly what every token\'s logits gave', async () => {
  const decode = await createSession(buildDecodeGraph(config), 1, params);
  const run = (step: Record<string, ort.Tensor>) => decode.run(step);
  // The output head over fewer rows rounds no differently (the rows themselves are checked above: a request
  // samples what it samples alone). Prompts of different lengths, right-padded together, best-of-3 each.
  const shared = requests.flatMap((r) => [0, 1, 2].map((c) => ({ id: `${r.id}|c${c}`, prompt: r.prompt })));
  for (const temperature of [1, 0, 0.6]) {
    const options = { ...DEFAULT_SAMPLING, temperature, maxNewTokens: 10, seed: 13, batchSize: 6 };
    const now = await sampleBatch({ config, tokenizer, decode: run }, shared, options);
    const before = await sampleBatch({ config, tokenizer, decode: everyRowLogits(run) }, shared, options);
    assert.deepEqual(now, before, `temperature ${temperature}`);
  }
});

test('requests at their own temperatures, one prompt among them, each draw what they draw alone', async () => {
  // One prompt at four temperatures from the same stream: a prompt's first token is drawn from the softmax
  // at the request's own temperature even when a request at another shares the prompt.
  const prompt = tokenizer.encode('12+7=');
  const mixed: GenerationRequest[] = [0.5, 1.7, 0, 1].flatMap((temperature, i) => [
    { id: `same|${temperature}`, prompt, rngKey: 99, sampling: { temperature } },
    { ...requests[i], sampling: { temperature: [1.3, 0.8, 1, 0][i] } },
  ]);
  const together = await generator.generate(mixed, { maxNewTokens: 10, seed: 21, batchSize: 5 });
  for (const [i, r] of mixed.entries()) {
    const [alone] = await generator.generate([r], { maxNewTokens: 10, seed: 21, batchSize: 1 });
    assert.deepEqual(together[i].tokens, alone.tokens, r.id);
  }
  assert.ok(new Set(together.slice(0, 8).filter((_, i) => i % 2 === 0).map((g) => g.tokens.join(','))).size > 2, 'the temperatures drew alike from one stream');
});

test('greedy decoding with the cache follows the argmax of full forward passes', async () => {
  // A 58-token prompt and 20 new tokens: the cache grows past its first chunk of 64 positions mid-way.
  const long = { id: 'long', prompt: tokenizer.encode('The quick brown fox jumps over the lazy dog; 12+7=19, 9*9=81') };
  const steps = 20;
  const [g] = await generator.generate([long, ...requests], { temperature: 0, maxNewTokens: steps, batchSize: 3 });
  const forward = await createSession(buildForwardGraph(config));
  const feeds = Object.fromEntries(params.map((p) => [p.name, new ort.Tensor('float32', p.data, p.shape)]));
  const seq = [...long.prompt];
  for (let i = 0; i < steps; i++) {
    const out = await forward.run({ ...feeds, tokens: new ort.Tensor('int64', BigInt64Array.from(seq.map(BigInt)), [1, seq.length]) });
    const logits = out.logits.data as Float32Array;
    const V = config.vocabSize;
    const last = logits.subarray((seq.length - 1) * V, seq.length * V);
    const next = last.indexOf(Math.max(...last));
    assert.equal(g.tokens[i], next, `token ${i}`);
    const logZ = Math.log(last.reduce((s, x) => s + Math.exp(x), 0));
    assert.ok(Math.abs(g.logprobs[i] - (last[next] - logZ)) < 1e-3, `log-prob of token ${i}`);
    seq.push(next);
  }
});

test('a batch decoding greedily takes the graph\'s argmax, and draws exactly what top-k 1 draws on the host', async () => {
  // The same requests (each in a scope of its own, so neither run starts from what the other kept): greedy
  // steps fetch only the graph's greedy draws; top-k 1 steps fetch the logit rows and draw here.
  const scoped = (scope: string) => requests.map((r) => ({ ...r, cacheScope: scope }));
  const inGraph = await generator.generate(scoped('graph'), { temperature: 0, maxNewTokens: 24, batchSize: 5 });
  const onHost = await generator.generate(scoped('host'), { temperature: 1, topK: 1, maxNewTokens: 24, batchSize: 5 });
  inGraph.forEach((g, i) => {
    assert.deepEqual(g.tokens, onHost[i].tokens, g.id);
    g.logprobs.forEach((lp, t) => assert.ok(Math.abs(lp - onHost[i].logprobs[t]) < 1e-12, `${g.id}: log-prob ${t}: ${lp} vs ${onHost[i].logprobs[t]}`));
  });
});

test('stop tokens, stop strings, max tokens and the context limit end a sequence', async () => {
  const free = await generator.generate([requests[1]], { temperature: 0, maxNewTokens: 20 });
  assert.equal(free[0].finishReason, 'length');
  assert.equal(free[0].tokens.length, 20);
  const stopToken = free[0].tokens[3];
  const byToken = await generator.generate([requests[1]], { temperature: 0, maxNewTokens: 20, stopTokens: [stopToken] });
  const cut = free[0].tokens.indexOf(stopToken);
  assert.equal(byToken[0].finishReason, 'stop');
  assert.deepEqual(byToken[0].tokens, free[0].tokens.slice(0, cut + 1));
  assert.equal(byToken[0].text, tokenizer.decode(free[0].tokens.slice(0, cut)));
  const stopString = free[0].text.slice(5, 7);
  const byString = await generator.generate([requests[1]], { temperature: 0, maxNewTokens: 20, stopStrings: [stopString] });
  assert.equal(byString[0].finishReason, 'stop');
  assert.equal(byString[0].text, free[0].text.slice(0, free[0].text.indexOf(stopString)));
  const long = { id: 'long', prompt: tokenizer.encode('x'.repeat(120)) };
  const [ctx] = await generator.generate([long], { temperature: 0, maxNewTokens: 100 });
  assert.equal(ctx.finishReason, 'context');
  assert.equal(120 + ctx.tokens.length, config.context + 1);
});

test('the compute thread samples exactly what the same loop samples on the calling thread', async () => {
  const decode = await createSession(buildDecodeGraph(config), 1, params);
  const model = { config, tokenizer, decode: (step: Record<string, ort.Tensor>) => decode.run(step) };
  for (const options of [{ temperature: 0.7, maxNewTokens: 30, batchSize: 3, seed: 2 }, { temperature: 1, topP: 0.9, maxNewTokens: 70, batchSize: 8, seed: 3, stopStrings: ['9'] }]) {
    const here = await sampleBatch(model, requests, { ...DEFAULT_SAMPLING, ...options });
    assert.deepEqual(await generator.generate(requests, options), here);
  }
});

test('results are reported one at a time in finishing order, and a hook that throws stops the sampling', async () => {
  const seen: string[] = [];
  let busy = false;
  const options = { temperature: 1, maxNewTokens: 40, batchSize: 2, seed: 4 };
  const all = await generator.generate(requests, options, {
    onResult: async (g, done, total) => {
      assert.ok(!busy, 'a call began before the previous one ended');
      busy = true;
      await new Promise((resolve) => setTimeout(resolve, 5));
      seen.push(`${g.id} ${done}/${total}`);
      busy = false;
    },
  });
  assert.equal(seen.length, requests.length, 'every call ended before generate resolved');
  assert.deepEqual(seen.map((s) => s.split(' ')[1]), requests.map((_, i) => `${i + 1}/${requests.length}`));
  assert.deepEqual(new Set(seen.map((s) => s.split(' ')[0])), new Set(all.map((g) => g.id)));

  const reported: Generation[] = [];
  await assert.rejects(
    generator.generate(requests, options, {
      onResult: async (g) => {
        reported.push(g);
        if (reported.length === 2) throw new Error('cancelled by the caller');
      },
    }),
    /cancelled by the caller/,
  );
  assert.equal(reported.length, 2, 'no call after the one that threw');
  assert.deepEqual(reported, seen.slice(0, 2).map((s) => all.find((g) => g.id === s.split(' ')[0])));
  assert.deepEqual(await generator.generate(requests, options), all, 'the thread serves the next call');
});

test('a plain draw at a temperature other than 1 needs the softmax at that temperature', () => {
  const logits = Float32Array.from([0.1, 2.0, 1.9, -1]);
  assert.throws(() => sampleToken(logits, softmaxOf(logits), null, { temperature: 0.7, topK: 0, topP: 1 }, new Rng('t')), /temperature 0.7 needs the softmax at that temperature/);
});

test('top-k 1 is greedy and top-p keeps the smallest nucleus', () => {
  const logits = Float32Array.from([0.1, 2.0, 1.9, -1]);
  const probs = softmaxOf(logits);
  const rng = new Rng('sample');
  for (let i = 0; i < 50; i++) assert.equal(sampleToken(logits, probs, null, { temperature: 1, topK: 1, topP: 1 }, rng).token, 1);
  const seen = new Set<number>();
  for (let i = 0; i < 200; i++) seen.add(sampleToken(logits, probs, null, { temperature: 1, topK: 0, topP: 0.6 }, rng).token);
  assert.deepEqual([...seen].sort(), [1, 2]);
});

test('a token whose softmax entry is below float32\'s normal range gets its exact log-probability', () => {
  // e^-95 is a float32 subnormal: its log would be off in the second decimal. At temperature 100 the two
  // tokens weigh nearly the same, so both are drawn.
  const logits = Float32Array.from([0, -95]);
  const probs = softmaxOf(logits);
  assert.ok(probs[1] > 0 && probs[1] < 2 ** -126, `a subnormal softmax entry (${probs[1]})`);
  const rng = new Rng('subnormal');
  const drawn = Array.from({ length: 40 }, () => sampleToken(logits, probs, null, { temperature: 100, topK: 2, topP: 1 }, rng));
  const rare = drawn.filter((d) => d.token === 1);
  assert.ok(rare.length > 0, 'token 1 was drawn');
  for (const d of rare) assert.ok(Math.abs(d.logprob - (-95 - Math.log1p(Math.exp(-95)))) < 1e-9, `log-probability ${d.logprob}`);
});

test('bad requests are rejected with the request named', async () => {
  await assert.rejects(generator.generate([{ id: 'a', prompt: [] }]), /"a" has an empty prompt/);
  await assert.rejects(generator.generate([{ id: 'a', prompt: [1] }, { id: 'a', prompt: [2] }]), /duplicate request id "a"/);
});

test('sampling frequencies follow the tempered softmax on both the plain and the sorted path', () => {
  const logits = Float32Array.from([0, 1, 2, -1]);
  for (const [temperature, topP] of [[1, 1], [0.5, 1], [1.5, 1], [1, 0.9999]]) {
    const rng = new Rng('freq', temperature, topP);
    const counts = [0, 0, 0, 0];
    const n = 20000;
    const [probs, tempered] = [softmaxOf(logits), softmaxOf(logits, temperature)];
    for (let i = 0; i < n; i++) counts[sampleToken(logits, probs, tempered, { temperature, topK: 0, topP }, rng).token]++;
    const weights = [...logits].map((l) => Math.exp(l / temperature));
    const z = weights.reduce((a, b) => a + b, 0);
    weights.forEach((w, i) => assert.ok(Math.abs(counts[i] / n - w / z) < 0.015, `T=${temperature} topP=${topP} token ${i}: ${counts[i] / n} vs ${w / z}`));
  }
});

/**
 * Sampling written plainly, each weight computed where it is used: plain sampling walks the token ids in
 * order, weighing each by its entry in the softmax at the draw's temperature, as the graph gives it (what
 * rounding leaves over going to the last token with weight); top-k / top-p sorts the ids by logit (ties by
 * id) and sums the weights exp((l − max) / T) in that order. A log-probability is the log of the token's
 * softmax entry, or the float64 log-sum-exp where that entry is below float32's normal range.
 */
function referenceSample(logits: Float32Array, probs: Float32Array, tempered: Float32Array, o: { temperature: number; topK: number; topP: number }, rng: Rng): { token: number; logprob: number } {
  const max = Math.max(...logits);
  const logprob = (c: number) => (probs[c] >= 2 ** -126 ? Math.log(probs[c]) : logits[c] - max - Math.log(logits.reduce((z, l) => z + Math.exp(l - max), 0)));
  if (o.topK <= 0 && o.topP >= 1) {
    const w = [...(o.temperature === 1 ? probs : tempered)];
    let u = rng.uniform() * w.reduce((t, x) => t + x, 0);
    const at = w.findIndex((x) => x > 0 && (u -= x) < 0);
    const choice = at < 0 ? [...w.keys()].filter((i) => w[i] > 0).at(-1)! : at;
    return { token: choice, logprob: logprob(choice) };
  }
  const order = [...logits.keys()].sort((a, b) => logits[b] - logits[a] || a - b);
  const weights = order.slice(0, o.topK > 0 ? o.topK : order.length).map((i) => Math.exp((logits[i] - max) / o.temperature));
  const total = weights.reduce((a, b) => a + b, 0);
  let kept = weights.length;
  let mass = 0;
  if (o.topP < 1) kept = weights.findIndex((p) => (mass += p / total) >= o.topP) + 1 || weights.length;
  let u = rng.uniform() * weights.slice(0, kept).reduce((a, b) => a + b, 0);
  const at = weights.slice(0, kept).findIndex((p) => (u -= p) < 0);
  const choice = order[at < 0 ? kept - 1 : at];
  return { token: choice, logprob: logprob(choice) };
}

test('sampling draws exactly what the plain reference draws, on the plain and the sorted path, ties included', () => {
  const data = new Rng('sorted path');
  for (let trial = 0; trial < 300; trial++) {
    // Few distinct values (ties, and both signs of zero) and sometimes a wide spread.
    const V = 1 + data.int(300);
    const levels = 1 + data.int(12);
    const logits = Float32Array.from({ length: V }, () => {
      const x = (data.int(levels) - levels / 2) * (trial % 3 === 0 ? 7.3 : 0.9);
      return x === 0 && data.int(2) === 0 ? -0 : x;
    });
    const o = { temperature: [0.3, 0.7, 1, 1.6][trial % 4], topK: trial % 5 === 1 ? 1 + data.int(V + 3) : 0, topP: [1, 0.9, 0.5, 0.05, 0.999][trial % 5] };
    const [probs, tempered] = [softmaxOf(logits), softmaxOf(logits, o.temperature)];
    const [mine, reference] = [new Rng('draw', trial), new Rng('draw', trial)];
    for (let draw = 0; draw < 5; draw++) {
      assert.deepEqual(sampleToken(logits, probs, walksTempered(o) ? tempered : null, o, mine), referenceSample(logits, probs, tempered, o, reference), `trial ${trial} draw ${draw}`);
    }
  }
});

test('sampling over a real vocabulary (49k logits, every bit of the sort used) draws exactly what the plain reference draws', () => {
  const data = new Rng('wide vocabulary');
  for (let trial = 0; trial < 12; trial++) {
    // Logits spread like a model's, some repeated, a few far below the rest (large negative exponents).
    const logits = Float32Array.from({ length: 49152 }, () => {
      const x = data.normal() * [1, 3, 8][trial % 3];
      return data.int(20) === 0 ? Math.round(x) : data.int(50) === 0 ? x - 1e4 : x;
    });
    const o = { temperature: [1, 0.7, 0, 1.3][trial % 4], topK: trial % 3 === 1 ? 1 + data.int(100) : 0, topP: [1, 0.9, 0.95, 0.5][trial % 4] };
    const probs = softmaxOf(logits);
    const tempered = o.temperature === 0 ? probs : softmaxOf(logits, o.temperature);
    const [mine, reference] = [new Rng('wide draw', trial), new Rng('wide draw', trial)];
    for (let draw = 0; draw < 3; draw++) {
      const expected = o.temperature === 0 ? greedyReference(logits, probs) : referenceSample(logits, probs, tempered, o, reference);
      assert.deepEqual(sampleToken(logits, probs, walksTempered(o) ? tempered : null, o, mine), expected, `trial ${trial} draw ${draw}`);
    }
  }
});

/** Greedy decoding written plainly: the first largest logit, its log-probability the log of its softmax entry. */
function greedyReference(logits: Float32Array, probs: Float32Array): { token: number; logprob: number } {
  let max = -Infinity;
  for (const l of logits) max = Math.max(max, l);
  const token = logits.indexOf(max);
  return { token, logprob: Math.log(probs[token]) };
}
