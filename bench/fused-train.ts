/**
 * ONNX Runtime's fused SimplifiedLayerNormalization in the train step (its gradient is autodiff.ts's
 * rule, in plain ops), against the plain train step: the quickstart's model on its train batch (32 × 48)
 * and SmolLM2-135M on 4 × 48. The two graphs take turns in blocks; wall and process-CPU time per step,
 * and the largest difference in loss, gradient norm and updated parameters on the same feeds.
 * Writes bench/results/fused-train.json.
 *
 *   npx tsx bench/fused-train.ts [--rounds N]
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import ort from 'onnxruntime-node';
import { DEFAULT_ADAMW } from '../src/engine/adamw.ts';
import { resolveModelConfig, type ModelConfig } from '../src/engine/config.ts';
import { buildGraph } from '../src/engine/graphs.ts';
import { initParameters } from '../src/engine/parameters.ts';
import { defaultThreads, ortSessionOptions, serializeGraph } from '../src/engine/session.ts';
import { openSpinSession, type SpinSession } from '../src/engine/spin-session.ts';
import { PLAIN, type Fusion } from '../src/engine/transformer.ts';
import { loadPretrained } from '../src/models/load.ts';
import { findModel, modelsHome } from '../src/models/store.ts';
import { trainStepFeeds } from './train-feeds.ts';

const rounds = Number(process.argv[process.argv.indexOf('--rounds') + 1]) || 3;
const BLOCKS = 3;
const SEQ = 48;
const threads = defaultThreads();
const fusions: Record<string, Fusion> = { plain: PLAIN, norm: { ...PLAIN, norm: true } };

function feeds(config: ModelConfig, params: { name: string; data: Float32Array; shape: number[] }[], B: number): Record<string, ort.Tensor> {
  return trainStepFeeds(
    new ort.Tensor('int64', BigInt64Array.from({ length: B * SEQ }, (_, i) => BigInt((i * 31) % config.vocabSize)), [B, SEQ]),
    new ort.Tensor('float32', Float32Array.from({ length: B * SEQ }, (_, i) => (i % SEQ < 8 ? 0 : 1)), [B, SEQ]),
    params,
  );
}

async function main(): Promise<void> {
  const quick = resolveModelConfig({ vocabSize: 32, layers: 2, dim: 128, heads: 4, kvHeads: 4, context: 256 });
  const smol = await loadPretrained(findModel(modelsHome(), 'smollm2-135m-instruct').card.digest);
  const models = [
    { name: 'quickstart (2 layers, dim 128)', config: quick, params: initParameters(quick), B: 32, runs: 3 },
    { name: 'SmolLM2-135M', config: smol.config, params: smol.params, B: 4, runs: 1 },
  ];
  const results = [];
  for (const model of models) {
    const sessions: Record<string, SpinSession> = {};
    for (const [name, fusion] of Object.entries(fusions)) {
      const recipe = { kind: 'train_step' as const, config: model.config, optimizer: DEFAULT_ADAMW, fusion };
      sessions[name] = await openSpinSession(serializeGraph(buildGraph(recipe)).bytes, ortSessionOptions(threads, 'cpu'));
    }
    const input = feeds(model.config, model.params, model.B);
    const reference = await sessions.plain.run(input);
    const fused = await sessions.norm.run(input);
    let maxDiff = 0;
    for (const name of Object.keys(reference)) {
      const a = reference[name].data as Float32Array;
      const b = fused[name].data as Float32Array;
      for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
    }
    const wall: Record<string, number[]> = { plain: [], norm: [] };
    const cpu: Record<string, number[]> = { plain: [], norm: [] };
    for (let r = 0; r < rounds; r++) {
      const spent: Record<string, { wall: number; cpu: number }> = { plain: { wall: 0, cpu: 0 }, norm: { wall: 0, cpu: 0 } };
      for (let block = 0; block < BLOCKS; block++) {
        for (const [name, s] of Object.entries(sessions)) {
          const started = performance.now();
          const before = process.cpuUsage();
          for (let i = 0; i < model.runs; i++) await s.run(input);
          const used = process.cpuUsage(before);
          spent[name].wall += performance.now() - started;
          spent[name].cpu += (used.user + used.system) / 1000;
        }
      }
      for (const name of Object.keys(sessions)) {
        wall[name].push(spent[name].wall / (BLOCKS * model.runs));
        cpu[name].push(spent[name].cpu / (BLOCKS * model.runs));
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    for (const name of Object.keys(sessions)) {
      const row = {
        model: model.name,
        batch: `${model.B} × ${SEQ}`,
        graph: name,
        medianMs: median(wall[name]),
        medianCpuMs: median(cpu[name]),
        cpuVsPlain: median(cpu.plain) / median(cpu[name]),
        maxOutputDiff: name === 'plain' ? 0 : maxDiff,
        roundsMs: wall[name],
        roundsCpuMs: cpu[name],
      };
      results.push(row);
      console.log(`${model.name.padEnd(31)} ${row.batch.padEnd(8)} ${name.padEnd(6)} ${row.medianMs.toFixed(1).padStart(8)} ms  cpu ${row.medianCpuMs.toFixed(1).padStart(8)} ms ×${row.cpuVsPlain.toFixed(2)}  max |Δ| ${row.maxOutputDiff.toExponential(1)}`);
    }
  }
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(
    'bench/results/fused-train.json',
    `${JSON.stringify({ date: new Date().toISOString(), command: 'npx tsx bench/fused-train.ts', cores: os.availableParallelism(), threads, ort: ort.env.versions.common, loadavgAtEnd: readFileSync('/proc/loadavg', 'utf8').trim(), workload: `train step, ${rounds} rounds of ${BLOCKS} blocks per graph, taking turns by block; cpuVsPlain = plain CPU ms / this CPU ms; maxOutputDiff over loss, nll, grad_norm and every updated parameter and moment`, results }, null, 2)}\n`,
  );
}

await main();
