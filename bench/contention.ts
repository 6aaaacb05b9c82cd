/**
 * ONNX Runtime under CPU contention: the same forward pass of the quickstart's model (2 layers, dim 128,
 * a batch of 32 sequences of 48 tokens, as relabeling and evaluation prefill them), timed with the
 * intra-op pool spinning (ORT's default) and not spinning, with the machine's cores and with one
 * thread, on a quiet machine and beside one busy process that keeps a core to itself. Rounds interleave the four cases so drift hits them alike.
 * Writes bench/results/contention.json and prints a table. Measures only: the product's session options
 * are not changed by it.
 *
 *   npx tsx bench/contention.ts [--rounds N]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import ort from 'onnxruntime-node';
import { resolveModelConfig } from '../src/engine/config.ts';
import { buildGraph } from '../src/engine/graphs.ts';
import { initParameters } from '../src/engine/parameters.ts';
import { defaultThreads, ortSessionOptions, serializeGraph } from '../src/engine/session.ts';

const rounds = Number(process.argv[process.argv.indexOf('--rounds') + 1]) || 5;
const RUNS_PER_CASE = 40;
const BATCH = 32;
const SEQ = 48;
const threads = defaultThreads();
const config = resolveModelConfig({ vocabSize: 32, layers: 2, dim: 128, heads: 4, kvHeads: 4, context: 256 });

function feeds(): Record<string, ort.Tensor> {
  const tokens = new BigInt64Array(BATCH * SEQ).map((_, i) => BigInt(i % config.vocabSize));
  const positions = new BigInt64Array(BATCH * SEQ).map((_, i) => BigInt(i % SEQ));
  const mask = new Float32Array(SEQ * SEQ);
  for (let q = 0; q < SEQ; q++) for (let k = q + 1; k < SEQ; k++) mask[q * SEQ + k] = -1e9;
  const f: Record<string, ort.Tensor> = {
    tokens: new ort.Tensor('int64', tokens, [BATCH, SEQ]),
    positions: new ort.Tensor('int64', positions, [BATCH, SEQ]),
    mask: new ort.Tensor('float32', mask, [1, 1, SEQ, SEQ]),
  };
  for (let l = 0; l < config.layers; l++) {
    for (const kv of ['k', 'v']) f[`past_${kv}.${l}`] = new ort.Tensor('float32', new Float32Array(0), [BATCH, config.kvHeads, 0, config.dim / config.heads]);
  }
  for (const p of initParameters(config)) f[p.name] = new ort.Tensor('float32', p.data, p.shape);
  return f;
}

/** A process that keeps one core busy until killed. */
function busyProcess(): ChildProcess {
  return spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
}

async function main(): Promise<void> {
  const model = serializeGraph(buildGraph({ kind: 'decode', config })).bytes;
  const options = (n: number, spinning: boolean) => ({ ...ortSessionOptions(n, 'cpu'), extra: { session: { intra_op: { allow_spinning: spinning ? '1' : '0' } } } });
  const sessions = {
    [`${threads} threads, spinning`]: await ort.InferenceSession.create(model, options(threads, true)),
    [`${threads} threads, still`]: await ort.InferenceSession.create(model, options(threads, false)),
    '1 thread': await ort.InferenceSession.create(model, options(1, false)),
  };
  const input = feeds();
  for (const s of Object.values(sessions)) for (let i = 0; i < 5; i++) await s.run(input);

  const cases = ['quiet', 'one busy process'].flatMap((load) => Object.keys(sessions).map((pool) => ({ load, pool })));
  const times = new Map<string, number[]>(cases.map((c) => [`${c.load}/${c.pool}`, []]));
  const loads: string[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const c of cases) {
      const busy = c.load === 'quiet' ? null : busyProcess();
      if (busy !== null) await new Promise((done) => setTimeout(done, 300));
      const started = performance.now();
      for (let i = 0; i < RUNS_PER_CASE; i++) await sessions[c.pool].run(input);
      times.get(`${c.load}/${c.pool}`)!.push((performance.now() - started) / RUNS_PER_CASE);
      busy?.kill('SIGKILL');
      loads.push(os.loadavg().map((x) => x.toFixed(2)).join(' '));
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const results = cases.map((c) => {
    const ms = times.get(`${c.load}/${c.pool}`)!;
    return { load: c.load, pool: c.pool, medianMs: median(ms), roundsMs: ms };
  });
  const result = {
    date: new Date().toISOString(),
    command: 'npx tsx bench/contention.ts',
    cores: os.availableParallelism(),
    threads,
    ort: ort.env.versions.common,
    workload: `decode graph forward, ${config.layers} layers, dim ${config.dim}, batch ${BATCH} × ${SEQ} tokens; ${RUNS_PER_CASE} runs per case per round, ${rounds} rounds interleaved`,
    loadAfterEachCase: loads,
    results,
  };
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/contention.json', `${JSON.stringify(result, null, 2)}\n`);
  for (const r of results) console.log(`${r.load.padEnd(17)} ${r.pool.padEnd(21)} ${r.medianMs.toFixed(1).padStart(7)} ms per run`);
  for (const s of Object.values(sessions)) await s.release();
}

await main();
