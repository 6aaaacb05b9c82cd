/**
 * `rise serve` under load, against the same engine in process: completions/s, completion tokens/s and
 * latency percentiles with 1, 8 and 32 clients, each sending its share of the same chat requests one
 * after another. Two models: the quickstart's architecture (experiments/quickstart.json's built-in model,
 * at its initialisation, 256 requests of at most 48 tokens; its end-of-turn token is one character among
 * a hundred, so most completions run long) and SmolLM2-135M-Instruct from the model store (32 requests of
 * at most 64 tokens). Both sides sample the same streams, so they generate the same tokens.
 *
 * The in-process side is what `rise generate` does, without its process start and model load: the engine
 * on this process's compute thread, one request at a time (batch 1), and the same requests as one batch
 * of 32 (the engine's own continuous batching, the most a server could reach). The server is `rise serve`
 * in its own process (batch size 32), called over HTTP on 127.0.0.1 with fetch; the client shares the
 * machine's cores with it. One side runs at a time; the load average is recorded with each measurement.
 *
 *   npm run bench:serve [-- --threads 2] [--out bench/results/serve.json]
 */

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { saveCheckpoint } from '../src/engine/checkpoint.ts';
import { Generator, requestRngKey, type GenerationRequest } from '../src/engine/generate.ts';
import { initParameters } from '../src/engine/parameters.ts';
import { loadModelForInference } from '../src/models/load.ts';
import { chatTemplateFor } from '../src/rise/chat-template.ts';
import { loadSpec } from '../src/spec/load.ts';
import { builtinModelConfig, builtinTokenizer } from '../src/steps/models.ts';
import { generateArithmetic } from '../src/tasks/arithmetic.ts';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : process.argv[i + 1];
}
const root = fileURLToPath(new URL('..', import.meta.url));
const threads = flag('threads', '2');
const out = flag('out', join(root, 'bench/results/serve.json'));
process.env.RISE_THREADS = threads;

const CLIENTS = [1, 8, 32];
const BATCH = 32;
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').trim();

interface Workload {
  name: string;
  /** What `rise serve` is given: a model store name or a checkpoint directory. */
  ref: string;
  /** One user message per request. */
  questions: string[];
  maxTokens: number;
}

interface Measure {
  seconds: number;
  completions: number;
  completion_tokens: number;
  completions_per_s: number;
  tokens_per_s: number;
  latency_ms: { p50: number; p90: number; p99: number; max: number };
  loadavg_start: string;
  loadavg_end: string;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function measure(seconds: number, latencies: number[], tokens: number, loadStart: string): Measure {
  const sorted = latencies.slice().sort((a, b) => a - b);
  const round = (x: number) => Math.round(x * 10) / 10;
  return {
    seconds: Math.round(seconds * 100) / 100,
    completions: latencies.length,
    completion_tokens: tokens,
    completions_per_s: Math.round((latencies.length / seconds) * 100) / 100,
    tokens_per_s: round(tokens / seconds),
    latency_ms: { p50: round(percentile(sorted, 50)), p90: round(percentile(sorted, 90)), p99: round(percentile(sorted, 99)), max: round(sorted.at(-1)!) },
    loadavg_start: loadStart,
    loadavg_end: loadavg(),
  };
}

async function inProcess(w: Workload) {
  const model = await loadModelForInference(w.ref);
  const template = chatTemplateFor(model.tokenizer, model.stop);
  const generator = new Generator(model.config, model.params, model.tokenizer);
  const requests: GenerationRequest[] = w.questions.map((q, i) => ({ id: `q${i}`, prompt: template.renderPrompt({ messages: [{ role: 'user', content: q }] }) }));
  const options = { temperature: 1, topP: 1, maxNewTokens: w.maxTokens, stopTokens: [...template.stopTokens], seed: 1 };
  await generator.generate(requests.slice(0, 1), { ...options, batchSize: 1 }); // the session's start, not measured

  let load = loadavg();
  let t0 = performance.now();
  const latencies: number[] = [];
  let tokens = 0;
  for (const r of requests) {
    const start = performance.now();
    const [g] = await generator.generate([r], { ...options, batchSize: 1 });
    latencies.push(performance.now() - start);
    tokens += g.tokens.length;
  }
  const sequential = measure((performance.now() - t0) / 1000, latencies, tokens, load);

  load = loadavg();
  t0 = performance.now();
  const finished: number[] = [];
  const all = await generator.generate(requests, { ...options, batchSize: BATCH }, { onResult: () => void finished.push(performance.now() - t0) });
  const batched = measure((performance.now() - t0) / 1000, finished, all.reduce((n, g) => n + g.tokens.length, 0), load);
  return { batch_1: sequential, [`batch_${BATCH}`]: batched };
}

async function served(w: Workload) {
  const child = spawn(process.execPath, [join(root, 'bin/rise.js'), 'serve', w.ref, '--name', w.name, '--port', '0', '--batch-size', String(BATCH), '--quiet'], {
    cwd: root,
    env: process.env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (d) => {
      err += d;
      const m = /at (http:\/\/\S+\/v1)/.exec(err);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`rise serve exited with ${code}: ${err}`)));
  });
  const ask = async (question: string, seed: number) => {
    const response = await fetch(`${url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: w.name, messages: [{ role: 'user', content: question }], max_tokens: w.maxTokens, temperature: 1, seed }),
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}: ${await response.text()}`);
    return ((await response.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens;
  };
  try {
    await ask(w.questions[0], 0); // the session's start, not measured
    const results: Record<string, Measure> = {};
    for (const clients of CLIENTS) {
      const load = loadavg();
      const t0 = performance.now();
      const latencies: number[] = [];
      let tokens = 0;
      let next = 0;
      await Promise.all(
        Array.from({ length: clients }, async () => {
          while (next < w.questions.length) {
            const i = next++;
            const start = performance.now();
            const generated = await ask(w.questions[i], requestRngKey(1, `q${i}`));
            latencies.push(performance.now() - start);
            tokens += generated;
          }
        }),
      );
      results[`clients_${clients}`] = measure((performance.now() - t0) / 1000, latencies, tokens, load);
      process.stderr.write(`  ${w.name}: ${clients} clients: ${JSON.stringify(results[`clients_${clients}`])}\n`);
    }
    return results;
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
}

const spec = await loadSpec(join(root, 'experiments/quickstart.json'));
const quickstartDir = mkdtempSync(join(os.tmpdir(), 'rise-bench-serve-'));
const quickstartConfig = builtinModelConfig(spec.model.config, spec.seed);
await saveCheckpoint(join(quickstartDir, 'model'), { config: quickstartConfig, tokenizer: builtinTokenizer(), params: initParameters(quickstartConfig) });
const arithmetic = generateArithmetic({ count: 256, ops: [2], operators: ['+', '-'], min: 1, max: 9, seed: 1 }).map((p) => p.prompt);
const NAMES = ['Natalia', 'Weng', 'Betty', 'Julie', 'James', 'Mark', 'Albert', 'Ken'];
const words = Array.from({ length: 32 }, (_, i) => `${NAMES[i % 8]} sold ${12 + i} clips in April and half as many in May. How many clips did ${NAMES[i % 8]} sell in all?`);
const workloads: Workload[] = [
  { name: 'quickstart', ref: join(quickstartDir, 'model'), questions: arithmetic, maxTokens: 48 },
  { name: 'smollm2-135m-instruct', ref: 'smollm2-135m-instruct', questions: words, maxTokens: 64 },
];

const results: Record<string, unknown> = {};
try {
  for (const w of workloads) {
    process.stderr.write(`${w.name}: in process\n`);
    const local = await inProcess(w);
    process.stderr.write(`${w.name}: rise serve\n`);
    results[w.name] = { requests: w.questions.length, max_tokens: w.maxTokens, in_process: local, rise_serve: await served(w) };
  }
} finally {
  rmSync(quickstartDir, { recursive: true, force: true });
}

const result = {
  date: new Date().toISOString(),
  what: 'chat completions at temperature 1; in_process: the engine in this process (batch_1: one request at a time, as `rise generate`; batch_32: all at once); rise_serve: the server in its own process (batch size 32), N clients each sending requests one after another over HTTP',
  machine: { cpu: os.cpus()[0]?.model, cores: os.availableParallelism(), memory_gb: Math.round(os.totalmem() / 2 ** 30) },
  threads: Number(threads),
  node: process.version,
  onnxruntime: ort.env.versions.common,
  results,
};
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
process.stderr.write(`wrote ${out}\n`);
