/**
 * RISE end to end in one process on the built-in arithmetic task and a small transformer trained from
 * scratch: boost, then iterations of rollout → self-relabel → filter → reward-weighted training, with
 * evaluation (m1@t1, m5@t1, m1@t5, p1@t5) after the boost and after every iteration. Prints the table and
 * the wall time; with --out, writes the results as JSON.
 *
 *   npx tsx bench/rise-quick.ts [--iterations N] [--train N] [--eval N] [--samples N] [--boost-epochs N]
 *                               [--pack N] [--epochs N] [--layers N] [--dim N] [--seed N] [--out FILE]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname } from 'node:path';
import { formatMetricsTable, runRiseInProcess, type InProcessSpec } from '../src/rise/index.ts';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v)) throw new Error(`--${name} needs a number, got ${process.argv[i + 1]}`);
  return v;
}
const outIndex = process.argv.indexOf('--out');
const out = outIndex >= 0 ? process.argv[outIndex + 1] : null;

// Two +/- steps on operands 1..9: a 2-layer model boosted from scratch in about a minute lands near 30%
// m1@t1 at temperature 1 — room to improve, and not hopeless. The space holds 2,916 distinct problems, so
// the evaluation set keeps only prompts not seen in training (about 400 of 600 drawn). (The spec's default task, 2-3 steps of + - × on
// 1..20, needs a much longer boost than a quick run affords.)
const knobs = { ops: [2], operators: ['+', '-'] as ('+' | '-')[], max: 9 };
const spec: InProcessSpec = {
  seed: flag('seed', 1),
  iterations: flag('iterations', 2),
  task: { train: { count: flag('train', 2000), ...knobs }, eval: [{ name: 'in-dist', count: flag('eval', 600), ...knobs }] },
  model: { layers: flag('layers', 2), dim: flag('dim', 128), heads: 4, kvHeads: 4, context: 256 },
  // Three solved problems per boost conversation (same problems per step as batch 33 single-turn), so
  // the model can read the longer turn-2+ contexts at all.
  boost: { epochs: flag('boost-epochs', 8), lr: 5e-3, batchSize: 11, pack: flag('pack', 3) },
  rollout: { turns: 2, temperature: 1, maxTokens: 48 },
  relabel: { strategy: 'self', samples: flag('samples', 16) },
  filter: { criteria: 'all' },
  train: { weighting: 'rwr', tau: 0.4, format: 'multiTurn', initFrom: 'base', aggregate: true, epochs: flag('epochs', 2), lr: 1e-3, batchSize: 32 },
  evaluate: { turns: 5, parallelK: 5, contextWindow: 1, tieBreak: 'latest', temperature: 1, maxTokens: 48 },
};

// A progress line when a step starts, every tenth of it, and when it ends.
let lastStep = '';
const started = performance.now();
const result = await runRiseInProcess(spec, {
  onProgress: (p) => {
    const tenth = Math.max(1, Math.ceil(p.total / 10));
    if (p.step !== lastStep || p.done === p.total || (p.done % tenth === 0 && !p.stage?.includes('samples'))) {
      process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(0)}s] ${p.step}: ${p.done}/${p.total} ${p.unit}${p.stage ? ` (${p.stage})` : ''}\n`);
    }
    lastStep = p.step;
  },
});

for (const it of result.iterations) {
  console.log(`\n## ${it.label} (${it.seconds.toFixed(0)} s; train ${it.train.steps} steps, loss ${it.train.firstLoss.toFixed(3)} → ${it.train.lastLoss.toFixed(3)})`);
  if (it.collect) {
    const c = it.collect;
    console.log(`rollout: ${c.episodes} episodes, ${c.samples} samples (${c.resamples} resampled), turn-1 acc ${(100 * c.turn1Accuracy).toFixed(1)}%, after relabel ${(100 * c.finalAccuracy).toFixed(1)}%; examples kept ${it.examples?.kept}, dropped ${JSON.stringify(it.dropped)}`);
  }
  for (const [set, table] of Object.entries(it.evals)) console.log(`\n${set}:\n${formatMetricsTable(table)}`);
}
console.log(`\n# summary (accuracy %, ${result.problems.train} train problems, eval ${JSON.stringify(result.problems.eval)})\n\n${result.table}`);
console.log(`\nwall time ${result.seconds.toFixed(0)} s on ${os.availableParallelism()} cores`);

if (out) {
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), cores: os.availableParallelism(), spec, seconds: result.seconds, model: result.model, problems: result.problems, iterations: result.iterations }, null, 2) + '\n');
}
