/**
 * Whether ONNX Runtime's fused com.microsoft.MultiHeadAttention or GroupQueryAttention would beat the engine's attention ops
 * (transformer.ts `attention`: one score MatMul per KV block, the cache read in place) in a decode step.
 * Both graphs take this step's queries, keys and values, the cached keys/values [B, h, P, hd] and the
 * additive mask [B, 1, S, P+S] (GQA's attention_bias), and give the attention output; the fused ops take
 * q/k/v as [B, S, h·hd] (their layout), the plain ops as [B, h, S, hd] (the engine's). Shapes of the
 * quickstart's model (4 heads of 32, KV heads = heads: MHA has no grouped KV heads) at decode batch
 * 1/32/128 over a 64-token cache, and a 32 × 48 prefill. The graphs take turns in blocks; wall and process-CPU time per run. The fused ops'
 * present_key/present_value (past + new, a copy of the cache) are requested because ONNX Runtime 1.30's MHA
 * CPU kernel ignores past_key/past_value without them (its outputs then differed by 0.89 here); the
 * decode-step outputs of the three graphs are checked to agree within 1e-4 before timing.
 * Writes bench/results/attention.json.
 *
 *   npx tsx bench/attention.ts [--rounds N]
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import ort from 'onnxruntime-node';
import { Graph, type Value } from '../src/engine/graph.ts';
import { toModelProto } from '../src/engine/onnx.ts';
import { defaultThreads, ortSessionOptions } from '../src/engine/session.ts';
import { openSpinSession, type SpinSession } from '../src/engine/spin-session.ts';
import { attention, MASKED } from '../src/engine/transformer.ts';

const rounds = Number(process.argv[process.argv.indexOf('--rounds') + 1]) || 3;
const BLOCKS = 4;
const HEADS = 4;
const HD = 32;
const threads = defaultThreads();

function plainGraph(): Uint8Array {
  const g = new Graph('plain');
  const q = g.input('q', 'float32', ['B', HEADS, 'S', HD]);
  const k = g.input('k', 'float32', ['B', HEADS, 'S', HD]);
  const v = g.input('v', 'float32', ['B', HEADS, 'S', HD]);
  const pastK = g.input('past_k', 'float32', ['B', HEADS, 'P', HD]);
  const pastV = g.input('past_v', 'float32', ['B', HEADS, 'P', HD]);
  const mask = g.input('mask', 'float32', ['B', 1, 'S', '(P+S)']);
  const blocks = [{ k: pastK, v: pastV }, { k, v }];
  // The engine scales q before attention; MHA scales inside, so the plain graph pays for its Mul here.
  const scaled = g.mul(q, g.scalar(1 / Math.sqrt(HD), q));
  g.output('out', attention(g, scaled, blocks, mask));
  return toModelProto(g);
}

function mhaGraph(): Uint8Array {
  const g = new Graph('mha');
  const q = g.input('q', 'float32', ['B', 'S', HEADS * HD]);
  const k = g.input('k', 'float32', ['B', 'S', HEADS * HD]);
  const v = g.input('v', 'float32', ['B', 'S', HEADS * HD]);
  const pastK = g.input('past_k', 'float32', ['B', HEADS, 'P', HD]);
  const pastV = g.input('past_v', 'float32', ['B', HEADS, 'P', HD]);
  const mask = g.input('mask', 'float32', ['B', 1, 'S', '(P+S)']);
  const out: Value = { id: -1, name: 'out', dtype: 'float32', shape: ['B', 'S', HEADS * HD] };
  const presentK: Value = { id: -2, name: 'present_k', dtype: 'float32', shape: ['B', HEADS, 'T', HD] };
  const presentV: Value = { id: -3, name: 'present_v', dtype: 'float32', shape: ['B', HEADS, 'T', HD] };
  g.node('MultiHeadAttention', [q, k, v, null, null, mask, pastK, pastV], [out, presentK, presentV], { num_heads: { kind: 'int', value: HEADS } }, 'com.microsoft');
  g.outputs.push(out, presentK, presentV);
  return toModelProto(g);
}

function gqaGraph(): Uint8Array {
  const g = new Graph('gqa');
  const q = g.input('q', 'float32', ['B', 'S', HEADS * HD]);
  const k = g.input('k', 'float32', ['B', 'S', HEADS * HD]);
  const v = g.input('v', 'float32', ['B', 'S', HEADS * HD]);
  const pastK = g.input('past_k', 'float32', ['B', HEADS, 'P', HD]);
  const pastV = g.input('past_v', 'float32', ['B', HEADS, 'P', HD]);
  const mask = g.input('mask', 'float32', ['B', 1, 'S', '(P+S)']);
  // GQA takes int32 lengths, which the graph IR has no dtype for: int64 inputs cast in the graph (the
  // cast's outputs are not serialized with a type, so their IR label does not matter).
  const int32 = (x: Value): Value => {
    const y: Value = { id: -10 - x.id, name: `${x.name}_i32`, dtype: 'int64', shape: x.shape };
    g.node('Cast', [x], [y], { to: { kind: 'int', value: 6 } });
    return y;
  };
  const seqlens = int32(g.input('seqlens_k', 'int64', ['B']));
  const total = int32(g.input('total_sequence_length', 'int64', []));
  const out: Value = { id: -1, name: 'out', dtype: 'float32', shape: ['B', 'S', HEADS * HD] };
  const presentK: Value = { id: -2, name: 'present_k', dtype: 'float32', shape: ['B', HEADS, 'T', HD] };
  const presentV: Value = { id: -3, name: 'present_v', dtype: 'float32', shape: ['B', HEADS, 'T', HD] };
  g.node(
    'GroupQueryAttention',
    [q, k, v, pastK, pastV, seqlens, total, null, null, null, mask],
    [out, presentK, presentV],
    { num_heads: { kind: 'int', value: HEADS }, kv_num_heads: { kind: 'int', value: HEADS } },
    'com.microsoft',
  );
  g.outputs.push(out, presentK, presentV);
  return toModelProto(g);
}

function feeds(B: number, P: number, S: number, layout: 'bnsh' | 'bsd'): Record<string, ort.Tensor> {
  const data = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed));
  const qkvDims = layout === 'bnsh' ? [B, HEADS, S, HD] : [B, S, HEADS * HD];
  return {
    q: new ort.Tensor('float32', data(B * S * HEADS * HD, 1), qkvDims),
    k: new ort.Tensor('float32', data(B * S * HEADS * HD, 2), qkvDims),
    v: new ort.Tensor('float32', data(B * S * HEADS * HD, 3), qkvDims),
    past_k: new ort.Tensor('float32', data(B * HEADS * P * HD, 4), [B, HEADS, P, HD]),
    past_v: new ort.Tensor('float32', data(B * HEADS * P * HD, 5), [B, HEADS, P, HD]),
    mask: new ort.Tensor('float32', Float32Array.from({ length: B * S * (P + S) }, (_, i) => ((i % (P + S)) - P > Math.floor(i / (P + S)) % S ? MASKED : 0)), [B, 1, S, P + S]),
  };
}

const shapes = [
  { name: 'decode step, batch 1', B: 1, P: 64, S: 1, runs: 200 },
  { name: 'decode step, batch 32', B: 32, P: 64, S: 1, runs: 50 },
  { name: 'decode step, batch 128', B: 128, P: 64, S: 1, runs: 20 },
  { name: 'prefill 32 × 48', B: 32, P: 0, S: 48, runs: 10 },
];

async function main(): Promise<void> {
  const options = ortSessionOptions(threads, 'cpu');
  const sessions: Record<string, { session: SpinSession; layout: 'bnsh' | 'bsd' }> = {
    plain: { session: await openSpinSession(plainGraph(), options), layout: 'bnsh' },
    MultiHeadAttention: { session: await openSpinSession(mhaGraph(), options), layout: 'bsd' },
    GroupQueryAttention: { session: await openSpinSession(gqaGraph(), options), layout: 'bsd' },
  };
  const results = [];
  for (const shape of shapes) {
    const inputs = Object.fromEntries(Object.entries(sessions).map(([name, s]) => [name, feeds(shape.B, shape.P, shape.S, s.layout)]));
    // Every row has all P + S positions (the mask does the rest).
    inputs.GroupQueryAttention.seqlens_k = new ort.Tensor('int64', new BigInt64Array(shape.B).fill(BigInt(shape.P + shape.S - 1)), [shape.B]);
    inputs.GroupQueryAttention.total_sequence_length = new ort.Tensor('int64', BigInt64Array.of(BigInt(shape.P + shape.S)), []);
    // The same numbers in both layouts: [B, h, S, hd] against [B, S, h·hd] agree where S = 1; compare there.
    if (shape.S === 1) {
      const a = (await sessions.plain.session.run(inputs.plain)).out.data as Float32Array;
      for (const name of ['MultiHeadAttention', 'GroupQueryAttention']) {
        const b = (await sessions[name].session.run(inputs[name])).out.data as Float32Array;
        const diff = a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
        if (diff > 1e-4) throw new Error(`${shape.name}: ${name} differs from the plain ops by ${diff}`);
      }
    }
    const wall: Record<string, number[]> = Object.fromEntries(Object.keys(sessions).map((n) => [n, []]));
    const cpu: Record<string, number[]> = Object.fromEntries(Object.keys(sessions).map((n) => [n, []]));
    for (let r = 0; r < rounds; r++) {
      const spent: Record<string, { wall: number; cpu: number }> = Object.fromEntries(Object.keys(sessions).map((n) => [n, { wall: 0, cpu: 0 }]));
      for (let block = 0; block < BLOCKS; block++) {
        for (const [name, s] of Object.entries(sessions)) {
          const started = performance.now();
          const before = process.cpuUsage();
          for (let i = 0; i < shape.runs; i++) await s.session.run(inputs[name]);
          const used = process.cpuUsage(before);
          spent[name].wall += performance.now() - started;
          spent[name].cpu += (used.user + used.system) / 1000;
        }
      }
      for (const name of Object.keys(sessions)) {
        wall[name].push(spent[name].wall / (BLOCKS * shape.runs));
        cpu[name].push(spent[name].cpu / (BLOCKS * shape.runs));
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    for (const name of Object.keys(sessions)) {
      const row = { shape: shape.name, graph: name, medianMs: median(wall[name]), medianCpuMs: median(cpu[name]), cpuVsPlain: median(cpu.plain) / median(cpu[name]), roundsMs: wall[name], roundsCpuMs: cpu[name] };
      results.push(row);
      console.log(`${shape.name.padEnd(23)} ${name.padEnd(19)} ${row.medianMs.toFixed(3).padStart(8)} ms  cpu ${row.medianCpuMs.toFixed(3).padStart(8)} ms ×${row.cpuVsPlain.toFixed(2)} vs plain`);
    }
  }
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(
    'bench/results/attention.json',
    `${JSON.stringify({ date: new Date().toISOString(), command: 'npx tsx bench/attention.ts', cores: os.availableParallelism(), threads, ort: ort.env.versions.common, loadavgAtEnd: readFileSync('/proc/loadavg', 'utf8').trim(), workload: `${HEADS} heads of ${HD}; ${rounds} rounds of ${BLOCKS} blocks per graph, taking turns by block; cpuVsPlain = plain CPU ms / this CPU ms`, results }, null, 2)}\n`,
  );
}

await main();
