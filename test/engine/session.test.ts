import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { packTensors } from '../../src/engine/compute-messages.ts';
import { ComputeThread } from '../../src/engine/compute-thread.ts';
import { resolveModelConfig } from '../../src/engine/config.ts';
import { decodeFeeds, TINY_CONFIG, TINY_WEIGHTS } from './tiny-decode.ts';
import { Graph } from '../../src/engine/graph.ts';
import { buildGraph, type GraphRecipe } from '../../src/engine/graphs.ts';
import { externalData, toModelProto } from '../../src/engine/onnx.ts';
import { initParameters } from '../../src/engine/parameters.ts';
import { getSession, ortSessionOptions, serializeGraph } from '../../src/engine/session.ts';
import { DEFAULT_SAMPLING } from '../../src/engine/sampling.ts';
import { isShared, shareTensors } from '../../src/engine/tensor.ts';
import { CharTokenizer } from '../../src/engine/tokenizer.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const config = TINY_CONFIG;
const decode: GraphRecipe = { kind: 'decode', config };


const bytesOf = (t: ort.Tensor) => {
  const d = t.data as Float32Array;
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
};

/** y = x · W · W · …: `count` MatMuls of n×n, long enough to see whether the event loop is held. */
function matMulChain(n: number, count: number): Uint8Array {
  const g = new Graph('chain');
  const w = g.input('w', 'float32', [n, n]);
  let y = g.input('x', 'float32', [n, n]);
  for (let i = 0; i < count; i++) y = g.matMul(y, w);
  g.output('y', y);
  return toModelProto(g);
}

test('a graph is named by the SHA-256 of its serialized bytes', () => {
  const graph = serializeGraph(buildGraph(decode));
  assert.equal(graph.digest, createHash('sha256').update(toModelProto(buildGraph(decode))).digest('hex'));
  assert.deepEqual(graph.bytes, toModelProto(buildGraph(decode)), 'building is deterministic');
  assert.notEqual(serializeGraph(buildGraph({ kind: 'decode', config: { ...config, layers: 2 } })).digest, graph.digest);
});

test('sessions are shared by recipe and thread count, and run the graph', async () => {
  const forward: GraphRecipe = { kind: 'forward', config };
  const s1 = await getSession(forward, { threads: 1 });
  assert.equal(await getSession({ kind: 'forward', config: { ...config } }, { threads: 1 }), s1, 'the same session from memory');
  const s2 = await getSession(forward, { threads: 2 });
  assert.notEqual(s2, s1);
  assert.ok(s2.outputNames.includes('logits'));
  assert.ok(s1.inputNames.includes('tokens'));
  const weights = Object.fromEntries(TINY_WEIGHTS.map((p) => [p.name, new ort.Tensor('float32', p.data, p.shape)]));
  const out = await s1.run({ ...weights, tokens: new ort.Tensor('int64', BigInt64Array.of(3n, 7n, 1n), [1, 3]) });
  assert.deepEqual(out.logits.dims, [1, 3, config.vocabSize]);
});

test('a decode session binds its weights: they are not inputs, and other weights are refused by name', async () => {
  const session = await getSession(decode, { threads: 1 }, TINY_WEIGHTS);
  assert.ok(session.inputNames.includes('tokens'));
  assert.ok(!session.inputNames.some((name) => TINY_WEIGHTS.some((p) => p.name === name)), 'no weight is an input');
  assert.deepEqual((await session.run(decodeFeeds())).logits.dims, [3, config.vocabSize]);
  await assert.rejects(() => getSession(decode, { threads: 1 }), /binds \d+ weights at session creation; none were given/);
  await assert.rejects(() => getSession(decode, { threads: 1 }, TINY_WEIGHTS.slice(1)), new RegExp(`weight ${TINY_WEIGHTS[0].name} is missing`));
  const [first, ...rest] = TINY_WEIGHTS;
  const wrong = { ...first, shape: [first.shape[0] + 1, ...first.shape.slice(1)] };
  await assert.rejects(() => getSession(decode, { threads: 1 }, [wrong, ...rest]), new RegExp(`weight ${first.name} has shape`));
  await assert.rejects(() => getSession(decode, { threads: 1 }, [...TINY_WEIGHTS, { name: 'extra', shape: [1], data: new Float32Array(1) }]), /weight extra is not one the graph binds/);
  await assert.rejects(() => getSession({ kind: 'forward', config }, { threads: 1 }, TINY_WEIGHTS), /binds none/);
});

test('the compute thread computes exactly what ONNX Runtime computes on the calling thread', async () => {
  for (const threads of [1, 2]) {
    const inThread: ort.InferenceSession = await ort.InferenceSession.create(serializeGraph(buildGraph(decode)).bytes, { ...ortSessionOptions(threads, 'cpu'), externalData: externalData(TINY_WEIGHTS) });
    const expected: Record<string, ort.Tensor> = await inThread.run(decodeFeeds());
    const actual = await (await getSession(decode, { threads }, TINY_WEIGHTS)).run(decodeFeeds());
    assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort());
    for (const name of Object.keys(expected)) {
      assert.equal(actual[name].type, expected[name].type, name);
      assert.deepEqual(actual[name].dims, expected[name].dims, name);
      assert.ok(bytesOf(actual[name]).equals(bytesOf(expected[name])), `${name} differs bit for bit (${threads} threads)`);
    }
    await inThread.release();
  }
});

test('the event loop keeps turning while a long run is in flight', async () => {
  const n = 512;
  // Entries of 1/n keep every product at exactly 1, with no overflow or denormals to slow a MatMul.
  const w = new ort.Tensor('float32', new Float32Array(n * n).fill(1 / n), [n, n]);
  const x = new ort.Tensor('float32', new Float32Array(n * n).fill(1), [n, n]);
  const thread = new ComputeThread();
  // Machines differ tenfold in MatMul speed, so the chain grows until one run lasts long enough to count ticks in.
  for (let count = 60; ; count *= 2) {
    const spec = { key: `chain-${count}`, model: matMulChain(n, count), options: ortSessionOptions(1, 'cpu') };
    await thread.open(spec);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const started = performance.now();
    const out = await thread.run(spec, { w, x });
    const elapsed = performance.now() - started;
    clearInterval(timer);
    assert.ok((out.y.data as Float32Array).every((v) => v === 1));
    if (elapsed < 300 && count < 60 * 64) continue;
    await thread.stop();
    assert.ok(elapsed >= 300, `the run took ${elapsed.toFixed(0)} ms even with ${count} products, too short to tell`);
    assert.ok(ticks >= elapsed / 10 / 3, `a 10 ms timer ticked ${ticks} times during a ${elapsed.toFixed(0)} ms run`);
    return;
  }
});

test('feeds cross as copies of just their bytes, transferred; shared weights cross once', () => {
  const [weight] = shareTensors([{ name: 'w', shape: [4], data: Float32Array.of(1, 2, 3, 4) }]);
  assert.ok(isShared(weight.data));
  assert.equal(shareTensors([weight])[0], weight, 'sharing is marking: the same tensor');
  const big = new Float32Array(100).fill(5);
  const view = big.subarray(10, 14);
  const sab = new Float32Array(new SharedArrayBuffer(8)).fill(6);
  const feeds = {
    w: new ort.Tensor('float32', weight.data, weight.shape),
    view: new ort.Tensor('float32', view, [4]),
    sab: new ort.Tensor('float32', sab, [2]),
  };
  const seen = new Set<ArrayBufferView>();
  const resident = (data: ArrayBufferView) => (isShared(data) ? { id: 7, send: !seen.has(data) && seen.add(data) !== undefined } : undefined);

  const first = packTensors(feeds, resident, false);
  assert.deepEqual(first.tensors.w, { type: 'float32', dims: [4], resident: 7 });
  assert.equal(first.adopt.length, 1);
  const [id, adopted] = first.adopt[0] as [number, Float32Array];
  assert.equal(id, 7);
  assert.notEqual(adopted, weight.data, 'the thread gets its own copy');
  assert.deepEqual([...adopted], [1, 2, 3, 4]);
  const copied = (first.tensors.view as { data: Float32Array }).data;
  assert.equal(copied.buffer.byteLength, 16, 'only the view is copied, not the buffer under it');
  assert.deepEqual([...copied], [5, 5, 5, 5]);
  const unshared = (first.tensors.sab as { data: Float32Array }).data;
  assert.ok(unshared.buffer instanceof ArrayBuffer, 'onnxruntime-node refuses SharedArrayBuffer-backed feeds');
  assert.deepEqual([...unshared], [6, 6]);
  assert.deepEqual(new Set(first.transfer), new Set([adopted.buffer, copied.buffer, unshared.buffer]));
  assert.equal(view.length, 4, "the caller's arrays are not detached");

  const second = packTensors(feeds, resident, false);
  assert.deepEqual(second.adopt, [], 'a weight the thread holds is not sent again');
  assert.deepEqual(second.tensors.w, { type: 'float32', dims: [4], resident: 7 });
});

test('the thread keeps the shared weights it was sent, and is sent them once', async () => {
  const n = 4;
  const spec = { key: 'one-matmul', model: matMulChain(n, 1), options: ortSessionOptions(1, 'cpu') };
  const thread = new ComputeThread();
  const [w] = shareTensors([{ name: 'w', shape: [n, n], data: new Float32Array(n * n).fill(1) }]);
  const x = new ort.Tensor('float32', new Float32Array(n * n).fill(1), [n, n]);
  const run = async () => (await thread.run(spec, { w: new ort.Tensor('float32', w.data, w.shape), x })).y.data as Float32Array;
  assert.ok((await run()).every((v) => v === n));
  // Breaking the contract (changing shared data) shows the second run used the thread's first copy.
  w.data.fill(2);
  assert.ok((await run()).every((v) => v === n), 'the weights were not sent again');
  await thread.stop();
  assert.ok((await run()).every((v) => v === 2 * n), 'a fresh thread is sent them again');
  await thread.stop();
});

test('a failing run rejects with ONNX Runtime message, and the thread serves the next run', async () => {
  const session = await getSession(decode, { threads: 1 }, TINY_WEIGHTS);
  const { tokens: _, ...missing } = decodeFeeds();
  await assert.rejects(session.run(missing), /tokens/);
  await assert.rejects(session.run({ ...decodeFeeds(), mask: new ort.Tensor('float32', new Float32Array(9), [3, 3]) }), /mask/);
  assert.deepEqual((await session.run(decodeFeeds())).logits.dims, [3, config.vocabSize]);
});

test('a thread that dies rejects the runs in flight, and the next run starts a fresh one', async () => {
  const thread = new ComputeThread(new URL('./crashing-compute-worker.ts', import.meta.url));
  const spec = { key: 'x', model: new Uint8Array(0), options: {} };
  const feeds = { x: new ort.Tensor('float32', Float32Array.of(1), [1]) };
  await assert.rejects(thread.run(spec, feeds), /simulated crash/);
  await assert.rejects(thread.run(spec, feeds), /simulated crash/, 'opened again on a fresh thread, which dies the same way');
});

test('stopping the thread rejects a run in flight; the next run starts a fresh thread', async () => {
  const n = 512;
  const spec = { key: 'chain', model: matMulChain(n, 60), options: ortSessionOptions(1, 'cpu') };
  const thread = new ComputeThread();
  const feeds = { w: new ort.Tensor('float32', new Float32Array(n * n), [n, n]), x: new ort.Tensor('float32', new Float32Array(n * n), [n, n]) };
  await thread.open(spec);
  const inFlight = assert.rejects(thread.run(spec, feeds), /compute thread stopped/);
  await thread.stop();
  await inFlight;
  assert.deepEqual((await thread.run(spec, feeds)).y.dims, [n, n]);
  await thread.stop();
});

test('a generation job streams its results, is sent the tokenizer once per thread, and stops when cancelled', async () => {
  const tokenizer = new CharTokenizer();
  let described = 0;
  const toJSON = tokenizer.toJSON.bind(tokenizer);
  tokenizer.toJSON = () => (described++, toJSON());
  const model = resolveModelConfig({ vocabSize: tokenizer.vocabSize, layers: 1, dim: 16, heads: 2, context: 64 });
  const weights = Object.fromEntries(shareTensors(initParameters(model)).map((p) => [p.name, new ort.Tensor('float32', p.data, p.shape)]));
  const spec = { key: 'decode', model: serializeGraph(buildGraph({ kind: 'decode', config: model })).bytes, options: ortSessionOptions(1, 'cpu'), weights };
  const requests = Array.from({ length: 6 }, (_, i) => ({ id: `r${i}`, prompt: tokenizer.encode(`${i}+1=`) }));
  const job = { config: model, requests, options: { ...DEFAULT_SAMPLING, maxNewTokens: 50, batchSize: 1 } };
  const thread = new ComputeThread();
  const run = async (signal?: AbortSignal, onResult: (done: number) => void = () => {}) => {
    const done: number[] = [];
    await thread.generate(spec, tokenizer, job, (_g, n) => (done.push(n), onResult(n)), signal);
    return done;
  };
  assert.deepEqual(await run(), [1, 2, 3, 4, 5, 6]);
  const first = described;
  assert.deepEqual(await run(), [1, 2, 3, 4, 5, 6]);
  assert.equal(described, first, 'the thread kept the tokenizer: not described again');
  const stop = new AbortController();
  const seen: number[] = [];
  await assert.rejects(run(stop.signal, (n) => (seen.push(n), stop.abort())), /generation cancelled/);
  assert.ok(seen.length < requests.length, `${seen.length} results came after the job was cancelled at the first`);
  await thread.stop();
  assert.deepEqual(await run(), [1, 2, 3, 4, 5, 6]);
  assert.ok(described > first, 'a fresh thread is sent the tokenizer again');
  await thread.stop();
});

/** Runs `code` (an ES module) in a fresh Node process and returns what it printed; fails if it does not exit. */
function runChild(args: string[], code: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [...args, '--input-type=module', '-e', code], { cwd: ROOT, timeout: 60_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${error.message}\n${stderr}`));
      else resolve(stdout.trim());
    });
  });
}

const childRun = `
  const { default: ort } = await import('onnxruntime-node');
  const { resolveModelConfig } = await import(${JSON.stringify(new URL('../../src/engine/config.ts', import.meta.url).href)});
  const { initParameters } = await import(${JSON.stringify(new URL('../../src/engine/parameters.ts', import.meta.url).href)});
  const { getSession } = await import(${JSON.stringify(new URL('../../src/engine/session.ts', import.meta.url).href)});
  const config = resolveModelConfig({ vocabSize: 16, layers: 1, dim: 16, heads: 2, context: 16 });
  const feeds = { tokens: new ort.Tensor('int64', BigInt64Array.of(1n, 2n), [1, 2]) };
  for (const p of initParameters(config)) feeds[p.name] = new ort.Tensor('float32', p.data, p.shape);
  const out = await (await getSession({ kind: 'forward', config }, { threads: 1 })).run(feeds);
  console.log(out.logits.dims.join('x'));
`;

test('the thread loads its TypeScript under --import tsx and under tsx register(), and lets the process exit', async () => {
  assert.equal(await runChild(['--import', 'tsx'], childRun), '1x2x16');
  assert.equal(await runChild([], `import { register } from 'tsx/esm/api'; register(); ${childRun}`), '1x2x16');
});

test('a decode session is let go with the weights bound to it: forty models in turn leave the memory of a few', async (t) => {
  // Each model's weights are ~26 MB; a session bound to them holds its own copy of them laid out for its
  // kernels, so sessions kept after their weights were collected would add ≥ 50 MB a model (≥ 1.7 GB here).
  const code = `
    const { Generator } = await import(${JSON.stringify(new URL('../../src/engine/generate.ts', import.meta.url).href)});
    const { resolveModelConfig } = await import(${JSON.stringify(new URL('../../src/engine/config.ts', import.meta.url).href)});
    const { initParameters } = await import(${JSON.stringify(new URL('../../src/engine/parameters.ts', import.meta.url).href)});
    const { CharTokenizer } = await import(${JSON.stringify(new URL('../../src/engine/tokenizer.ts', import.meta.url).href)});
    const tokenizer = new CharTokenizer();
    const config = resolveModelConfig({ vocabSize: tokenizer.vocabSize, layers: 2, dim: 512, heads: 8, context: 32 });
    const settle = async () => { for (let i = 0; i < 3; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 50)); } };
    const mb = () => Math.round(process.memoryUsage().rss / 2 ** 20);
    let warm = 0;
    for (let i = 0; i < 40; i++) {
      const generator = new Generator(config, initParameters({ ...config, seed: i }), tokenizer, { threads: 1 });
      await generator.generate([{ id: 'r', prompt: tokenizer.encode('1+1=') }], { maxNewTokens: 2 });
      await settle();
      if (i === 4) warm = mb();
    }
    console.log(JSON.stringify({ warm, end: mb() }));
  `;
  const { warm, end } = JSON.parse(await runChild(['--expose-gc', '--import', 'tsx'], code)) as { warm: number; end: number };
  t.diagnostic(`resident memory ${warm} MB after 5 models, ${end} MB after 40`);
  assert.ok(end - warm < 600, `resident memory grew from ${warm} MB after 5 models to ${end} MB after 40`);
});

test('only the decode graph keeps its memory between runs (its peak is bounded; a training step peaks at gigabytes)', () => {
  assert.equal(ortSessionOptions(2, 'cpu', 'decode').enableCpuMemArena, true);
  for (const kind of ['forward', 'loss', 'train_step'] as const) assert.equal(ortSessionOptions(2, 'cpu', kind).enableCpuMemArena, false, kind);
  assert.equal(ortSessionOptions(2, 'cpu').enableCpuMemArena, false);
});
