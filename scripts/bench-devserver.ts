/**
 * Measures the dev server's start and stop times on this machine and prints JSON:
 *   cold: a fresh database (schema created, search attributes registered, retention set);
 *   warm: the same database again (search attributes already there);
 *   memory: no database file.
 * Each time runs from spawn to healthy with rise's search attributes visible (what `startDevServer` waits for).
 *
 *   node --import tsx scripts/bench-devserver.ts [ROUNDS]
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findTemporalBinary, temporalVersion } from '../src/temporal/binary.ts';
import { freePort, startDevServer, type StartDevServerOptions } from '../src/temporal/devserver.ts';

const rounds = Number(process.argv[2] ?? 3);
const binary = findTemporalBinary().path;

async function once(options: StartDevServerOptions): Promise<{ startMs: number; stopMs: number; added: number }> {
  const server = await startDevServer({ binary, port: await freePort(), uiPort: 'auto', reuse: false, statePath: null, ...options });
  const t = Date.now();
  await server.stop();
  return { startMs: server.startupMs, stopMs: Date.now() - t, added: server.addedSearchAttributes.length };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const runs: Record<'cold' | 'warm' | 'memory', { startMs: number; stopMs: number; added: number }[]> = { cold: [], warm: [], memory: [] };
for (let i = 0; i < rounds; i++) {
  const dir = await mkdtemp(join(tmpdir(), 'rise-bench-devserver-'));
  try {
    const options = { dbPath: join(dir, 'temporal.db'), logPath: join(dir, 'temporal.log'), retentionMs: 30 * 24 * 3600 * 1000 };
    runs.cold.push(await once(options));
    runs.warm.push(await once(options));
    runs.memory.push(await once({ dbPath: null, logPath: join(dir, 'memory.log') }));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const summary = Object.fromEntries(
  Object.entries(runs).map(([k, v]) => [
    k,
    { startMsMedian: median(v.map((r) => r.startMs)), stopMsMedian: median(v.map((r) => r.stopMs)), runs: v },
  ]),
);
console.log(
  JSON.stringify(
    { binary, version: await temporalVersion(binary), cpus: (await import('node:os')).availableParallelism(), rounds, ...summary },
    null,
    2,
  ),
);
