/**
 * RISE end to end through the product's own path — `rise run` (embedded Temporal dev server, a worker,
 * every step as an activity over the store) — in a fresh RISE_HOME, then the run's report data for the
 * metrics and per-step timings. Writes one JSON file: wall time, the step timings, the headline metrics.
 *
 *   npx tsx bench/rise-quick.ts [--spec experiments/quickstart.json] [--out bench/results/rise-quick.json]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadRunReport } from '../src/report/data.ts';
import { listRuns, openStore } from '../src/store/index.ts';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : process.argv[i + 1];
}
const root = fileURLToPath(new URL('..', import.meta.url));
const spec = flag('spec', join(root, 'experiments/quickstart.json'));
const out = flag('out', join(root, 'bench/results/rise-quick.json'));
const home = mkdtempSync(join(os.tmpdir(), 'rise-bench-'));
const env = { ...process.env, RISE_HOME: home, RISE_TEMPORAL_DB: 'memory', RISE_TEMPORAL_UI_PORT: 'off' };
const rise = (args: string[]) => execFileSync(process.execPath, [join(root, 'bin/rise.js'), ...args], { env, encoding: 'utf8', maxBuffer: 256 * 2 ** 20 });

try {
  const started = performance.now();
  process.stderr.write(rise(['run', spec]));
  const seconds = (performance.now() - started) / 1000;
  const store = await openStore({ home });
  const [run] = await listRuns(store);
  const report = await loadRunReport(store, run);
  await store.close();
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), cores: os.availableParallelism(), load: os.loadavg(), spec, seconds, steps: report.steps, metrics: report.metrics }, null, 2)}\n`);
  console.log(`${seconds.toFixed(0)} s on ${os.availableParallelism()} cores; ${out}`);
} finally {
  rise(['server', '--stop']);
  rmSync(home, { recursive: true, force: true });
}
