/**
 * Ledger write rates, SQLite against PostgreSQL in one run: the store's own `recordEpisodes` (one
 * transaction per ledger batch, as a sampling step writes) for `--batches` batches of 64 problems with
 * `--turns` turns of `--samples` samples each, first from one writer, then from `--writers` writers at
 * once (each its own Store and step, as workers on several machines; on SQLite several connections of one
 * process, which queue on the file's write lock). PostgreSQL is a throwaway local server (fsync off, as
 * the test server; a production server syncs its WAL, which costs more per commit), reached over TCP on
 * loopback. Reports samples per second and the median batch's milliseconds.
 *
 *   npx tsx bench/store.ts [--batches 16] [--turns 2] [--samples 8] [--writers 4] [--out bench/results/store.json]
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { openStore, recordEpisodes, startStep, type LedgerEpisode, type Store } from '../src/store/index.ts';
import { createDatabase, startPostgres } from '../test/store/postgres.ts';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : process.argv[i + 1];
}
const batches = Number(flag('batches', '16'));
const turns = Number(flag('turns', '2'));
const samplesPerTurn = Number(flag('samples', '8'));
const writers = Number(flag('writers', '4'));
const out = flag('out', 'bench/results/store.json');
const PROBLEMS_PER_BATCH = 64;

/** A ledger batch shaped like a relabel step's: each sample a short answer with its numbers. */
function batch(step: number, index: number): LedgerEpisode[] {
  return Array.from({ length: PROBLEMS_PER_BATCH }, (_, p) => ({
    problemId: `s${step}-p${index * PROBLEMS_PER_BATCH + p}`,
    prompt: 'What is 17 + 25? Answer with the number only.',
    turns: Array.from({ length: turns }, (_, t) => ({
      turn: t + 1,
      kind: t === 0 ? 'onPolicy' : 'relabel',
      chosen: 0,
      samples: Array.from({ length: samplesPerTurn }, (_, s) => ({ requestId: `r${p}-${t}-${s}`, source: 'learner', candidate: s, resample: 0, text: `The answer is ${40 + s}.`, answer: String(40 + s), reward: s === 2 ? 1 : 0, tokens: 7, logprob: -3.25 - s, finishReason: 'stop' })),
    })),
  }));
}

/** Writes `batches` batches into step `step` of `store`; the milliseconds of each. */
async function write(store: Store, step: number): Promise<number[]> {
  const key = `bench-step-${step}`;
  await startStep(store, { key, kind: 'rollout', params: { step }, inputs: [] });
  const times: number[] = [];
  for (let i = 0; i < batches; i++) {
    const episodes = batch(step, i);
    const started = performance.now();
    await recordEpisodes(store, key, episodes);
    times.push(performance.now() - started);
  }
  return times;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const samplesPerBatch = PROBLEMS_PER_BATCH * turns * samplesPerTurn;

async function measure(open: () => Promise<Store>): Promise<Record<string, number>> {
  const stores = await Promise.all(Array.from({ length: writers }, open));
  try {
    let started = performance.now();
    const alone = await write(stores[0], 0);
    const aloneSeconds = (performance.now() - started) / 1000;
    started = performance.now();
    const together = await Promise.all(stores.map((store, i) => write(store, i + 1)));
    const togetherSeconds = (performance.now() - started) / 1000;
    return {
      oneWriterSamplesPerSecond: Math.round((batches * samplesPerBatch) / aloneSeconds),
      oneWriterMedianBatchMs: Number(median(alone).toFixed(1)),
      [`${writers}WritersSamplesPerSecond`]: Math.round((writers * batches * samplesPerBatch) / togetherSeconds),
      [`${writers}WritersMedianBatchMs`]: Number(median(together.flat()).toFixed(1)),
    };
  } finally {
    for (const store of stores) await store.close();
  }
}

const load = [os.loadavg()[0]];
const home = mkdtempSync(join(os.tmpdir(), 'rise-bench-store-'));
const server = await startPostgres();
try {
  const sqlite = await measure(() => openStore({ home, database: 'sqlite' }));
  load.push(os.loadavg()[0]);
  const database = await createDatabase(server.url);
  const postgres = await measure(() => openStore({ home: mkdtempSync(join(home, 'pg-')), database: database.url }));
  load.push(os.loadavg()[0]);
  const report = {
    date: new Date().toISOString(),
    cores: os.availableParallelism(),
    load,
    batch: { problems: PROBLEMS_PER_BATCH, turns, samplesPerTurn, samples: samplesPerBatch },
    batches,
    writers,
    sqlite,
    postgres,
  };
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  console.log(JSON.stringify(report, null, 2));
} finally {
  await server.stop();
  rmSync(home, { recursive: true, force: true });
}
