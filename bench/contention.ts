/**
 * ONNX Runtime under CPU contention, before and after the engine's fix, in one run. Two graphs of the
 * quickstart's model (2 layers, dim 128): the decode graph's forward over a batch of 32 sequences of 48
 * tokens (as relabeling and evaluation prefill them), and a train step over a batch of 32 sequences of
 * 48 tokens (the quickstart's train batch). Each runs three ways:
 *   spinning  the intra-op pool spinning, ORT's default and the engine's pool before the fix;
 *   still     the pool not spinning;
 *   adaptive  the engine's session now (spin-session.ts): spinning or still per run, from the CPU the
 *             other processes leave (cpu-contention.ts);
 * on a quiet machine and beside one busy process that the benchmark starts (a node loop that keeps a
 * core to itself). Each load is held for a settling time longer than the monitor's window before it is
 * timed; within a load the three pools take turns in blocks of a few runs, so the machine's other load
 * (other users, their tests) hits them alike. "quiet" is as quiet as the machine
 * is: the load average during the run is recorded with it.
 * Writes bench/results/contention.json and prints a table.
 *
 *   npx tsx bench/contention.ts [--rounds N]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import ort from 'onnxruntime-node';
import { DEFAULT_ADAMW } from '../src/engine/adamw.ts';
import { resolveModelConfig } from '../src/engine/config.ts';
import { buildGraph, type GraphRecipe } from '../src/engine/graphs.ts';
import { initParameters } from '../src/engine/parameters.ts';
import { externalData } from '../src/engine/onnx.ts';
import { defaultThreads, ortSessionOptions, serializeGraph } from '../src/engine/session.ts';
import { openSpinSession, type SpinSession } from '../src/engine/spin-session.ts';
import { trainStepFeeds } from './train-feeds.ts';

const rounds = Number(process.argv[process.argv.indexOf('--rounds') + 1]) || 5;
const BATCH = 32;
const SEQ = 48;
/** Longer than cpu-contention.ts's 1 s window, so the adaptive pool has seen the load it is timed under. */
const SETTLE_MS = 1500;
const threads = defaultThreads();
const config = resolveModelConfig({ vocabSize: 32, layers: 2, dim: 128, heads: 4, kvHeads: 4, context: 256 });
const params = initParameters(config);

const tokens = () => new ort.Tensor('int64', new BigInt64Array(BATCH * SEQ).map((_, i) => BigInt((i * 7) % config.vocabSize)), [BATCH, SEQ]);

function decodeFeeds(): Record<string, ort.Tensor> {
  const positions = new BigInt64Array(BATCH * SEQ).map((_, i) => BigInt(i % SEQ));
  const mask = new Float32Array(SEQ * SEQ);
  for (let q = 0; q < SEQ; q++) for (let k = q + 1; k < SEQ; k++) mask[q * SEQ + k] = -1e9;
  const f: Record<string, ort.Tensor> = {
    tokens: tokens(),
    positions: new ort.Tensor('int64', positions, [BATCH, SEQ]),
    mask: new ort.Tensor('float32', mask, [1, 1, SEQ, SEQ]),
    // Every token's logits, as the graph gave them when these figures were first taken.
    logit_rows: new ort.Tensor('int64', BigInt64Array.from({ length: BATCH * SEQ }, (_, i) => BigInt(i)), [BATCH * SEQ]),
    tempered_rows: new ort.Tensor('int64', new BigInt64Array(0), [0]),
    inverse_temperature: new ort.Tensor('float32', new Float32Array(0), [0]),
    greedy_rows: new ort.Tensor('int64', new BigInt64Array(0), [0]),
  };
  for (let l = 0; l < config.layers; l++) {
    for (const kv of ['k', 'v']) f[`past_${kv}.${l}`] = new ort.Tensor('float32', new Float32Array(0), [BATCH, config.kvHeads, 0, config.dim / config.heads]);
  }
  return f;
}

function trainFeeds(): Record<string, ort.Tensor> {
  return trainStepFeeds(tokens(), new ort.Tensor('float32', new Float32Array(BATCH * SEQ).fill(1), [BATCH, SEQ]), params);
}

/** `bound`: the graph binds the parameters at session creation (the decode graph) instead of taking them as feeds. */
const graphs: { name: string; recipe: GraphRecipe; feeds: Record<string, ort.Tensor>; runs: number; bound?: boolean }[] = [
  { name: `decode forward ${BATCH}×${SEQ}`, recipe: { kind: 'decode', config }, feeds: decodeFeeds(), runs: 5, bound: true },
  { name: `train step ${BATCH}×${SEQ}`, recipe: { kind: 'train_step', config, optimizer: DEFAULT_ADAMW }, feeds: trainFeeds(), runs: 2 },
];
/** Turns each pool takes per graph, load and round. */
const BLOCKS = 6;
const pools = ['spinning', 'still', 'adaptive'] as const;
const loads = ['quiet', 'one busy process'] as const;

/** A process that keeps one core busy until killed. */
function busyProcess(): ChildProcess {
  return spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').trim();

async function main(): Promise<void> {
  type Options = ReturnType<typeof ortSessionOptions>;
  const fixed = (spinning: boolean) => async (model: Uint8Array, options: Options) => openSpinSession(model, options, () => Promise.resolve(spinning ? 'spinning' : 'still'));
  const open: Record<(typeof pools)[number], (model: Uint8Array, options: Options) => Promise<SpinSession>> = {
    spinning: fixed(true),
    still: fixed(false),
    adaptive: (model, options) => openSpinSession(model, options),
  };
  const sessions = new Map<string, SpinSession>();
  for (const g of graphs) {
    const model = serializeGraph(buildGraph(g.recipe)).bytes;
    const base = ortSessionOptions(threads, 'cpu');
    const options = g.bound ? { ...base, externalData: externalData(params) } : base;
    for (const pool of pools) {
      const s = await open[pool](model, options);
      for (let i = 0; i < 3; i++) await s.run(g.feeds);
      sessions.set(`${g.name}/${pool}`, s);
    }
  }

  const times = new Map<string, number[]>();
  const adaptiveRuns = new Map<string, { spinning: number; still: number }>();
  const loadDuring: Record<string, string[]> = { quiet: [], 'one busy process': [] };
  for (let r = 0; r < rounds; r++) {
    for (const load of loads) {
      const busy = load === 'quiet' ? null : busyProcess();
      await sleep(SETTLE_MS);
      for (const g of graphs) {
        const spent = new Map<string, number>(pools.map((pool) => [pool, 0]));
        for (let block = 0; block < BLOCKS; block++) {
          for (const pool of pools) {
            const s = sessions.get(`${g.name}/${pool}`)!;
            const before = { ...s.runs };
            const started = performance.now();
            for (let i = 0; i < g.runs; i++) await s.run(g.feeds);
            spent.set(pool, spent.get(pool)! + performance.now() - started);
            if (pool === 'adaptive') {
              const key = `${load}/${g.name}`;
              const seen = adaptiveRuns.get(key) ?? { spinning: 0, still: 0 };
              adaptiveRuns.set(key, { spinning: seen.spinning + s.runs.spinning - before.spinning, still: seen.still + s.runs.still - before.still });
            }
          }
        }
        for (const pool of pools) {
          const key = `${load}/${g.name}/${pool}`;
          times.set(key, [...(times.get(key) ?? []), spent.get(pool)! / (BLOCKS * g.runs)]);
        }
      }
      loadDuring[load].push(loadavg());
      busy?.kill('SIGKILL');
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const results = loads.flatMap((load) =>
    graphs.flatMap((g) =>
      pools.map((pool) => {
        const key = `${load}/${g.name}/${pool}`;
        const ms = times.get(key)!;
        return { load, graph: g.name, pool, medianMs: median(ms), roundsMs: ms, ...(pool === 'adaptive' ? { adaptiveRuns: adaptiveRuns.get(`${load}/${g.name}`) } : {}) };
      }),
    ),
  );
  const result = {
    date: new Date().toISOString(),
    command: 'npx tsx bench/contention.ts',
    cores: os.availableParallelism(),
    threads,
    ort: ort.env.versions.common,
    workload: `quickstart model (${config.layers} layers, dim ${config.dim}); ${graphs.map((g) => `${g.name}: ${BLOCKS} blocks of ${g.runs} runs`).join(', ')} per pool, load and round, the pools taking turns by block; ${rounds} rounds, loads interleaved, each held ${SETTLE_MS} ms before timing`,
    loadavgAfterEachLoad: loadDuring,
    results,
  };
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/contention.json', `${JSON.stringify(result, null, 2)}\n`);
  for (const r of results) {
    const chosen = r.adaptiveRuns ? `  (spinning ${r.adaptiveRuns.spinning}, still ${r.adaptiveRuns.still} runs)` : '';
    console.log(`${r.load.padEnd(17)} ${r.graph.padEnd(22)} ${r.pool.padEnd(9)} ${r.medianMs.toFixed(1).padStart(7)} ms per run${chosen}`);
  }
}

await main();
