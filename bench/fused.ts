/**
 * ONNX Runtime's fused kernels against the plain ops, in the decode graph: one-token decode steps over a
 * 64-token cache (the plain graph's prefill of 64 tokens) at batch 1, 32 and 128, and a prefill of rows
 * of 48 tokens (32 rows; 8 for SmolLM2), on the quickstart's model (2 layers, dim 128) and on
 * SmolLM2-135M (30 layers, dim 576, from the model store). The four graphs
 * (plain, fused norm, fused rotary, both) take turns in blocks of a few runs, so the machine's other load
 * hits them alike; each also reports its largest logit difference from the plain graph on the same feeds.
 * Besides wall-clock time per run, the process's CPU time per run: on a machine shared with other busy
 * processes (where the engine's pool does not spin, so CPU time is work, not waiting) it varies far
 * less with the neighbours than wall-clock time does.
 * Sessions are the engine's own (spin-session.ts, intra-op threads as the engine sets them).
 * Writes bench/results/fused.json and prints a table.
 *
 *   npx tsx bench/fused.ts [--rounds N]
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import ort from 'onnxruntime-node';
import { resolveModelConfig, type ModelConfig } from '../src/engine/config.ts';
import { buildGraph } from '../src/engine/graphs.ts';
import { initParameters } from '../src/engine/parameters.ts';
import { externalData } from '../src/engine/onnx.ts';
import { defaultThreads, ortSessionOptions, serializeGraph } from '../src/engine/session.ts';
import type { NamedTensor } from '../src/engine/tensor.ts';
import { openSpinSession, type SpinSession } from '../src/engine/spin-session.ts';
import { MASKED, PLAIN, type Fusion } from '../src/engine/transformer.ts';
import { loadPretrained } from '../src/models/load.ts';
import { findModel, modelsHome } from '../src/models/store.ts';

const rounds = Number(process.argv[process.argv.indexOf('--rounds') + 1]) || 3;
const BLOCKS = 4;
const CACHE = 64;
const threads = defaultThreads();

const fusions: Record<string, Fusion> = {
  plain: PLAIN,
  norm: { ...PLAIN, norm: true },
  rotary: { ...PLAIN, rotary: true },
  'norm+rotary': { norm: true, rotary: true },
};

/** A decode step: S new tokens per row after P cached ones, the cache being `past`'s outputs (none for P = 0). */
function stepFeeds(config: ModelConfig, B: number, P: number, S: number, past: Record<string, ort.Tensor> = {}): Record<string, ort.Tensor> {
  const hd = config.dim / config.heads;
  const feeds: Record<string, ort.Tensor> = {
    tokens: new ort.Tensor('int64', BigInt64Array.from({ length: B * S }, (_, i) => BigInt((i * 31 + P) % config.vocabSize)), [B, S]),
    positions: new ort.Tensor('int64', BigInt64Array.from({ length: B * S }, (_, i) => BigInt(P + (i % S))), [B, S]),
    mask: new ort.Tensor('float32', Float32Array.from({ length: S * (P + S) }, (_, i) => ((i % (P + S)) - P > Math.floor(i / (P + S)) ? MASKED : 0)), [1, 1, S, P + S]),
    // Every token's logits, as the graph gave them when these figures were first taken.
    logit_rows: new ort.Tensor('int64', BigInt64Array.from({ length: B * S }, (_, i) => BigInt(i)), [B * S]),
    tempered_rows: new ort.Tensor('int64', new BigInt64Array(0), [0]),
    inverse_temperature: new ort.Tensor('float32', new Float32Array(0), [0]),
    greedy_rows: new ort.Tensor('int64', new BigInt64Array(0), [0]),
  };
  for (let l = 0; l < config.layers; l++) {
    for (const kv of ['k', 'v']) feeds[`past_${kv}.${l}`] = past[`${kv}.${l}`] ?? new ort.Tensor('float32', new Float32Array(0), [B, config.kvHeads, 0, hd]);
  }
  return feeds;
}

interface Model {
  name: string;
  config: ModelConfig;
  weights: NamedTensor[];
  /** Runs per block, by tokens per run. */
  runs: (tokens: number) => number;
  prefillRows: number;
}

async function models(): Promise<Model[]> {
  const quick = resolveModelConfig({ vocabSize: 32, layers: 2, dim: 128, heads: 4, kvHeads: 4, context: 256 });
  const smol = await loadPretrained(findModel(modelsHome(), 'smollm2-135m-instruct').card.digest);
  return [
    { name: 'quickstart (2 layers, dim 128)', config: quick, weights: initParameters(quick), runs: (n) => (n >= 128 ? 4 : 10), prefillRows: 32 },
    // A SmolLM2 prefill of 32 rows takes seconds a run on 2 shared cores; 8 rows time the same kernels.
    { name: 'SmolLM2-135M', config: smol.config, weights: smol.params, runs: (n) => (n >= 128 ? 1 : 3), prefillRows: 8 },
  ];
}

const shapes = (model: Model) => [
  { name: 'decode step, batch 1', B: 1, P: CACHE, S: 1 },
  { name: 'decode step, batch 32', B: 32, P: CACHE, S: 1 },
  { name: 'decode step, batch 128', B: 128, P: CACHE, S: 1 },
  { name: `prefill ${model.prefillRows} × 48`, B: model.prefillRows, P: 0, S: 48 },
];

async function main(): Promise<void> {
  const results = [];
  for (const model of await models()) {
    const sessions: Record<string, SpinSession> = {};
    for (const [name, fusion] of Object.entries(fusions)) {
      const options = { ...ortSessionOptions(threads, 'cpu'), externalData: externalData(model.weights) };
      sessions[name] = await openSpinSession(serializeGraph(buildGraph({ kind: 'decode', config: model.config, fusion })).bytes, options);
    }
    for (const shape of shapes(model)) {
      // The cache a decode step reads is the plain graph's prefill of the P tokens before it.
      const past = shape.P === 0 ? {} : await sessions.plain.run(stepFeeds(model.config, shape.B, 0, shape.P));
      const feeds = stepFeeds(model.config, shape.B, shape.P, shape.S, past);
      const reference = (await sessions.plain.run(feeds)).logits.data as Float32Array;
      const maxDiff: Record<string, number> = {};
      for (const [name, s] of Object.entries(sessions)) {
        const logits = (await s.run(feeds)).logits.data as Float32Array;
        maxDiff[name] = logits.reduce((m, x, i) => Math.max(m, Math.abs(x - reference[i])), 0);
      }
      const runs = model.runs(shape.B * shape.S);
      const wall: Record<string, number[]> = Object.fromEntries(Object.keys(sessions).map((n) => [n, []]));
      const cpu: Record<string, number[]> = Object.fromEntries(Object.keys(sessions).map((n) => [n, []]));
      for (let r = 0; r < rounds; r++) {
        const spent: Record<string, { wall: number; cpu: number }> = Object.fromEntries(Object.keys(sessions).map((n) => [n, { wall: 0, cpu: 0 }]));
        for (let block = 0; block < BLOCKS; block++) {
          for (const [name, s] of Object.entries(sessions)) {
            const started = performance.now();
            const cpuBefore = process.cpuUsage();
            for (let i = 0; i < runs; i++) await s.run(feeds);
            const used = process.cpuUsage(cpuBefore);
            spent[name].wall += performance.now() - started;
            spent[name].cpu += (used.user + used.system) / 1000;
          }
        }
        for (const name of Object.keys(sessions)) {
          wall[name].push(spent[name].wall / (BLOCKS * runs));
          cpu[name].push(spent[name].cpu / (BLOCKS * runs));
        }
      }
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
      for (const name of Object.keys(sessions)) {
        const row = {
          model: model.name,
          shape: shape.name,
          graph: name,
          medianMs: median(wall[name]),
          medianCpuMs: median(cpu[name]),
          vsPlain: median(wall.plain) / median(wall[name]),
          cpuVsPlain: median(cpu.plain) / median(cpu[name]),
          maxLogitDiff: maxDiff[name],
          roundsMs: wall[name],
          roundsCpuMs: cpu[name],
        };
        results.push(row);
        console.log(
          `${model.name.padEnd(31)} ${shape.name.padEnd(23)} ${name.padEnd(12)} ${row.medianMs.toFixed(2).padStart(9)} ms ×${row.vsPlain.toFixed(2)}  cpu ${row.medianCpuMs.toFixed(2).padStart(9)} ms ×${row.cpuVsPlain.toFixed(2)}  max |Δlogit| ${row.maxLogitDiff.toExponential(1)}`,
        );
      }
    }
  }
  const result = {
    date: new Date().toISOString(),
    command: 'npx tsx bench/fused.ts',
    cores: os.availableParallelism(),
    threads,
    ort: ort.env.versions.common,
    loadavgAtEnd: readFileSync('/proc/loadavg', 'utf8').trim(),
    workload: `decode graph, ${rounds} rounds of ${BLOCKS} blocks per graph, graphs taking turns by block; vsPlain = plain ms / this ms (above 1: faster than plain), cpuVsPlain the same for CPU time`,
    results,
  };
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/fused.json', `${JSON.stringify(result, null, 2)}\n`);
}

await main();
