/**
 * Engine benchmark: training and generation throughput of rise's ONNX Runtime engine, measured side
 * by side with the same model and step in PyTorch on the same CPU and thread count, plus the ceiling
 * a single large MatMul reaches in ORT here. Writes bench/results/engine.json and prints a table.
 *
 *   npm run bench:engine [-- --quick] [-- --no-torch]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { resolveModelConfig, type ModelConfig } from '../src/engine/config.ts';
import { Generator, sampleToken } from '../src/engine/generate.ts';
import { Graph } from '../src/engine/graph.ts';
import { initParameters, parameterSpecs } from '../src/engine/parameters.ts';
import { Rng } from '../src/engine/random.ts';
import { createSession, defaultThreads, getSession } from '../src/engine/session.ts';
import { CharTokenizer } from '../src/engine/tokenizer.ts';
import { Trainer } from '../src/engine/trainer.ts';

const quick = process.argv.includes('--quick');
const withTorch = !process.argv.includes('--no-torch');
const threads = defaultThreads();
const tokenizer = new CharTokenizer();
const minSeconds = quick ? 1 : 3;

interface TrainCase {
  name: string;
  layers: number;
  dim: number;
  heads: number;
  kvHeads: number;
  context: number;
  batch: number;
}

const TRAIN: TrainCase[] = [
  { name: 'small', layers: 4, dim: 128, heads: 4, kvHeads: 4, context: 128, batch: 16 },
  { name: 'small', layers: 4, dim: 128, heads: 4, kvHeads: 4, context: 128, batch: 32 },
  { name: 'mid', layers: 8, dim: 512, heads: 8, kvHeads: 8, context: 256, batch: 8 },
];
const GEN = { config: 'small', batches: [1, 32], promptLen: 32, newTokens: quick ? 32 : 96 };

function modelConfig(c: TrainCase): ModelConfig {
  return resolveModelConfig({ vocabSize: tokenizer.vocabSize, layers: c.layers, dim: c.dim, heads: c.heads, kvHeads: c.kvHeads, context: c.context, seed: 1 });
}

/** Matmul FLOPs of one training step (forward + backward ≈ 3× forward), the convention both sides use. */
function trainFlops(config: ModelConfig, batch: number, tokens: number): number {
  const matmulParams =
    parameterSpecs(config)
      .filter((s) => s.shape.length === 2 && s.name !== 'tok_emb' && s.name !== 'lm_head')
      .reduce((n, s) => n + s.shape[0] * s.shape[1], 0) + config.dim * config.vocabSize;
  return 6 * matmulParams * batch * tokens + 6 * config.layers * batch * tokens * tokens * config.dim;
}

/** Runs `fn` until at least `minSeconds` have passed (after warmup); returns seconds per call. */
async function timeIt(fn: () => Promise<unknown>, warmup = 2, minCalls = 3): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  let calls = 0;
  const start = performance.now();
  while (calls < minCalls || performance.now() - start < minSeconds * 1000) {
    await fn();
    calls++;
  }
  return (performance.now() - start) / 1000 / calls;
}

async function matmulCeiling() {
  const [m, k, n] = [4096, 512, 2048];
  const g = new Graph('matmul');
  g.output('c', g.matMul(g.input('a', 'float32', [m, k]), g.input('b', 'float32', [k, n])));
  const session = await createSession(g, threads);
  const rng = new Rng('matmul');
  const feeds = {
    a: new ort.Tensor('float32', Float32Array.from({ length: m * k }, () => rng.normal()), [m, k]),
    b: new ort.Tensor('float32', Float32Array.from({ length: k * n }, () => rng.normal()), [k, n]),
  };
  const seconds = await timeIt(() => session.run(feeds));
  return { shape: [m, k, n], ms: seconds * 1000, gflops: (2 * m * k * n) / seconds / 1e9 };
}

async function trainThroughput(c: TrainCase) {
  const config = modelConfig(c);
  const trainer = new Trainer(config, initParameters(config), tokenizer.special.pad, undefined, { threads });
  const rng = new Rng('bench-train', c.name);
  const examples = Array.from({ length: c.batch }, () => ({
    tokens: Array.from({ length: c.context }, () => rng.int(config.vocabSize)),
    weights: Array.from({ length: c.context }, () => 1),
  }));
  const seconds = await timeIt(() => trainer.trainStep(examples, 1e-3));
  // A sequence of `context` tokens trains on context − 1 predictions (PyTorch's side feeds context + 1
  // tokens for `context` predictions), so count what was trained.
  const positions = c.context - 1;
  const tokens = c.batch * positions;
  return {
    name: c.name,
    batch: c.batch,
    context: c.context,
    step_ms: seconds * 1000,
    steps_per_s: 1 / seconds,
    tokens_per_s: tokens / seconds,
    gflops: trainFlops(config, c.batch, positions) / seconds / 1e9,
  };
}

/** A row's softmax, as the decode graph gives the sampler (the forward graph here gives logits only). */
function softmax(row: Float32Array): Float32Array {
  const max = Math.max(...row);
  const e = Float64Array.from(row, (l) => Math.exp(l - max));
  const z = e.reduce((a, b) => a + b, 0);
  return Float32Array.from(e, (x) => x / z);
}

/** Generation without a cache: the whole sequence re-run every step (the reference point for the cache). */
async function generateWithoutCache(config: ModelConfig, prompts: number[][], newTokens: number) {
  const params = initParameters(config);
  const session = await getSession({ kind: 'forward', config }, { threads });
  const feeds = Object.fromEntries(params.map((p) => [p.name, new ort.Tensor('float32', p.data, p.shape)]));
  const rngs = prompts.map((_, i) => new Rng('nocache', i));
  const seqs = prompts.map((p) => p.slice());
  const V = config.vocabSize;
  for (let step = 0; step < newTokens; step++) {
    const L = seqs[0].length;
    const tokens = BigInt64Array.from(seqs.flat().map(BigInt));
    const out = await session.run({ ...feeds, tokens: new ort.Tensor('int64', tokens, [seqs.length, L]) });
    const logits = out.logits.data as Float32Array;
    seqs.forEach((s, b) => {
      const row = logits.subarray((b * L + L - 1) * V, (b * L + L) * V);
      s.push(sampleToken(row, softmax(row), null, { temperature: 1, topK: 0, topP: 1 }, rngs[b]).token);
    });
  }
}

async function generationThroughput() {
  const c = TRAIN.find((t) => t.name === GEN.config)!;
  const config = modelConfig(c);
  const generator = new Generator(config, initParameters(config), tokenizer, { threads });
  const rows = [];
  for (const batch of GEN.batches) {
    const rng = new Rng('bench-gen', batch);
    const prompts = Array.from({ length: batch }, () => Array.from({ length: GEN.promptLen }, () => 7 + rng.int(config.vocabSize - 7)));
    const requests = prompts.map((prompt, i) => ({ id: String(i), prompt }));
    const newTokens = batch * GEN.newTokens;
    const cached = await timeIt(() => generator.generate(requests, { temperature: 1, maxNewTokens: GEN.newTokens, batchSize: batch }), 1, 1);
    rows.push({ config: GEN.config, batch, kv_cache: true, wall_s: cached, new_tokens_per_s: newTokens / cached });
    const plain = await timeIt(() => generateWithoutCache(config, prompts, GEN.newTokens), 1, 1);
    rows.push({ config: GEN.config, batch, kv_cache: false, wall_s: plain, new_tokens_per_s: newTokens / plain });
  }
  return rows;
}

function runTorch(): { result: TorchResult | null; note: string } {
  if (!withTorch) return { result: null, note: 'skipped (--no-torch)' };
  const setup = spawnSync('bash', ['bench/torch/setup.sh'], { stdio: 'inherit' });
  if (setup.status !== 0) return { result: null, note: 'PyTorch setup failed (bench/torch/setup.sh)' };
  const out = join(os.tmpdir(), `rise-torch-${process.pid}.json`);
  const configs = JSON.stringify({
    train: TRAIN.map((c) => ({ ...c, vocabSize: tokenizer.vocabSize, hidden: modelConfig(c).hidden, tiedEmbeddings: true })),
    gen: GEN,
  });
  execFileSync('bench/.venv/bin/python', ['bench/torch/engine_bench.py', '--threads', String(threads), '--out', out, '--configs', configs, ...(quick ? ['--quick'] : [])], { stdio: 'inherit' });
  const result = JSON.parse(readFileSync(out, 'utf8')) as TorchResult;
  rmSync(out);
  return { result, note: 'measured in this run' };
}

interface TorchResult {
  torch_version: string;
  train: { name: string; batch: number; tokens_per_s: number; gflops: number; attention: string }[];
  generate: { batch: number; kv_cache: boolean; new_tokens_per_s: number }[];
}

const ratio = (a: number, b: number | undefined) => (b ? Number((a / b).toFixed(3)) : null);

async function main() {
  console.log(`rise engine benchmark: ${threads} threads, ORT ${ort.env.versions.common}${quick ? ' (quick)' : ''}`);
  const matmul = await matmulCeiling();
  console.log(`single MatMul ${matmul.shape.join('×')}: ${matmul.gflops.toFixed(1)} GFLOP/s`);
  const train = [];
  for (const c of TRAIN) {
    const r = await trainThroughput(c);
    console.log(`train ${r.name} batch ${r.batch}: ${r.tokens_per_s.toFixed(0)} tokens/s, ${r.gflops.toFixed(1)} GFLOP/s`);
    train.push(r);
  }
  const generate = await generationThroughput();
  for (const r of generate) console.log(`generate batch ${r.batch} ${r.kv_cache ? 'with' : 'without'} cache: ${r.new_tokens_per_s.toFixed(0)} tokens/s`);

  const torch = runTorch();
  // PyTorch runs each training config twice: explicit matmul attention (the same computation as ours)
  // and its fused scaled_dot_product_attention; we compare against the faster of the two.
  const torchTrain = (name: string, batch: number) =>
    torch.result?.train.filter((t) => t.name === name && t.batch === batch).sort((a, b) => b.tokens_per_s - a.tokens_per_s)[0];
  const torchGen = (batch: number, cache: boolean) => torch.result?.generate.find((t) => t.batch === batch && t.kv_cache === cache);

  const report = {
    date: new Date().toISOString(),
    machine: { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.availableParallelism(), memory_gb: Math.round(os.totalmem() / 2 ** 30), platform: `${os.platform()} ${os.arch()}` },
    ort_version: ort.env.versions.common,
    node_version: process.version,
    threads,
    quick,
    flops_formula: '6 * P_matmul * B * T + 6 * layers * B * T^2 * dim (P_matmul: wqkv, wo, w_gate_up, w_down, and the dim×vocab head)',
    matmul_ceiling: matmul,
    train: train.map((r) => ({
      ...r,
      torch_tokens_per_s: torchTrain(r.name, r.batch)?.tokens_per_s ?? null,
      torch_attention: torchTrain(r.name, r.batch)?.attention ?? null,
      ratio_vs_torch: ratio(r.tokens_per_s, torchTrain(r.name, r.batch)?.tokens_per_s),
      fraction_of_matmul_ceiling: Number((r.gflops / matmul.gflops).toFixed(3)),
    })),
    generate: generate.map((r) => ({
      ...r,
      torch_tokens_per_s: torchGen(r.batch, r.kv_cache)?.new_tokens_per_s ?? null,
      ratio_vs_torch: ratio(r.new_tokens_per_s, torchGen(r.batch, r.kv_cache)?.new_tokens_per_s),
    })),
    torch: torch.result ? { version: torch.result.torch_version, note: torch.note, raw: torch.result } : { note: torch.note },
  };
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/engine.json', JSON.stringify(report, null, 2) + '\n');

  console.log('\n| measure | rise | PyTorch | rise/PyTorch |\n|---|---|---|---|');
  for (const r of report.train) {
    console.log(`| train ${r.name} B=${r.batch} tokens/s | ${r.tokens_per_s.toFixed(0)} | ${r.torch_tokens_per_s?.toFixed(0) ?? '–'} | ${r.ratio_vs_torch ?? '–'} |`);
  }
  for (const r of report.generate) {
    console.log(`| generate B=${r.batch} ${r.kv_cache ? 'cache' : 'no cache'} tokens/s | ${r.new_tokens_per_s.toFixed(0)} | ${r.torch_tokens_per_s?.toFixed(0) ?? '–'} | ${r.ratio_vs_torch ?? '–'} |`);
  }
  const mid = report.train.find((r) => r.name === 'mid');
  if (mid) console.log(`\nmid training: ${mid.gflops.toFixed(1)} GFLOP/s = ${(mid.fraction_of_matmul_ceiling * 100).toFixed(0)}% of a single MatMul's ${matmul.gflops.toFixed(1)} GFLOP/s`);
  console.log('wrote bench/results/engine.json');
  if (!existsSync('bench/results/engine.json')) process.exit(1);
}

await main();
