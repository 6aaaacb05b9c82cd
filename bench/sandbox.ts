/**
 * MBPP scoring throughput, programs per second, of the sandbox before and after bubblewrap isolation,
 * in one run on the same jobs: the audit-hook sandbox as of OLD_COMMIT (taken out of git into a
 * temporary folder), with the interpreter it used by default (`python3` on PATH) and with the one the
 * new sandbox uses; and the current sandbox. Each is timed ROUNDS times, interleaved, so that a change
 * in the machine's load touches all of them; the load average is recorded around every timing.
 *
 * Two workloads: every reference program of a JSONL file once (distinct problems: a scoring pass over a
 * data set), and one problem's reference many times (the same tests again and again: relabeling).
 *
 *   npx tsx bench/sandbox.ts [--data FILE.jsonl] [--repeat 10] [--out bench/results/sandbox.json]
 *
 * Default data: the repository's MBPP fixtures (train and test, 20 problems); each workload scores
 * `--repeat` times as many jobs as there are problems.
 */

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadMbpp } from '../src/tasks/mbpp.ts';
import { createSandbox, DEFAULT_PYTHON, type SandboxJob } from '../src/tasks/sandbox/index.ts';
import type { Problem } from '../src/tasks/types.ts';

/** The last commit with the audit-hook sandbox (src/tasks/sandbox.ts + src/tasks/sandbox_harness.py). */
const OLD_COMMIT = '6b5f9da03d69c801b52c4039af7aec2f82962913';
const ROUNDS = 3;

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
}
const root = fileURLToPath(new URL('..', import.meta.url));
const fixtures = ['mbpp-train.jsonl', 'mbpp-test.jsonl'].map((f) => join(root, 'src/tasks/fixtures', f));
const data = flag('data');
const repeat = Number(flag('repeat') ?? 10);
const out = flag('out') ?? join(root, 'bench/results/sandbox.json');
const concurrency = os.availableParallelism();

interface Runner {
  name: string;
  run(job: SandboxJob): Promise<{ status: string }>;
}

const git = (...args: string[]) => execFileSync('git', args, { cwd: root, encoding: 'utf8' });
const dir = mkdtempSync(join(os.tmpdir(), 'rise-bench-sandbox-'));

async function oldSandbox(python: string): Promise<Runner> {
  writeFileSync(join(dir, 'sandbox.ts'), git('show', `${OLD_COMMIT}:src/tasks/sandbox.ts`));
  writeFileSync(join(dir, 'sandbox_harness.py'), git('show', `${OLD_COMMIT}:src/tasks/sandbox_harness.py`));
  const old = (await import(join(dir, 'sandbox.ts'))) as { createSandbox(options: object): Pick<Runner, 'run'> };
  const sandbox = old.createSandbox({ concurrency, python });
  return { name: `old: audit hook + rlimits + unshare -n (${OLD_COMMIT.slice(0, 7)}), ${python}`, run: (job) => sandbox.run(job) };
}

function python(executable: string): string {
  return execFileSync(executable, ['-c', 'import sys; print(sys.executable, sys.version.split()[0])'], { encoding: 'utf8' }).trim();
}

const loadavg = () => readFileSync('/proc/loadavg', 'utf8').trim();

async function time(runner: Runner, jobs: SandboxJob[]) {
  const load = loadavg();
  const started = performance.now();
  const statuses = await Promise.all(jobs.map((job) => runner.run(job).then((r) => r.status)));
  const seconds = (performance.now() - started) / 1000;
  return { seconds, programsPerSecond: jobs.length / seconds, passed: statuses.filter((s) => s === 'passed').length, loadBefore: load, loadAfter: loadavg() };
}

try {
  const problems: Problem[] = (await Promise.all((data ? [data] : fixtures).map((f) => loadMbpp(f)))).flat();
  const asJob = (p: Problem): SandboxJob => ({ program: p.solution!, tests: p.tests! });
  const workloads = [
    { name: `each problem's reference program ×${repeat}`, jobs: Array.from({ length: repeat }, () => problems.map(asJob)).flat() },
    { name: `one problem's reference program ×${problems.length * repeat}`, jobs: problems.map(() => Array.from({ length: repeat }, () => asJob(problems[0]))).flat() },
  ];
  const current = createSandbox({ concurrency });
  const runners: Runner[] = [
    await oldSandbox('python3'),
    await oldSandbox(DEFAULT_PYTHON),
    { name: `new: bubblewrap + seccomp, verdicts outside, ${DEFAULT_PYTHON}`, run: (job) => current.run(job) },
  ];
  // One job each first: the new sandbox checks the machine once, and the first compile of tests is not scoring.
  for (const runner of runners) await runner.run(workloads[0].jobs[0]);

  const results = [];
  for (const workload of workloads) {
    const timings: Record<string, Awaited<ReturnType<typeof time>>[]> = {};
    for (let round = 0; round < ROUNDS; round++) {
      for (const runner of runners) (timings[runner.name] ??= []).push(await time(runner, workload.jobs));
    }
    results.push({
      workload: workload.name,
      jobs: workload.jobs.length,
      runs: runners.map((r) => ({
        sandbox: r.name,
        programsPerSecond: Math.max(...timings[r.name].map((t) => t.programsPerSecond)),
        rounds: timings[r.name],
      })),
    });
  }
  const report = {
    date: new Date().toISOString(),
    command: `npx tsx bench/sandbox.ts${process.argv.slice(2).map((a) => ` ${a}`).join('')}`,
    data: data ?? fixtures.map((f) => f.slice(root.length)).join(' + '),
    concurrency,
    cpu: os.cpus()[0]?.model,
    cores: os.availableParallelism(),
    kernel: os.release(),
    bwrap: execFileSync('bwrap', ['--version'], { encoding: 'utf8' }).trim(),
    interpreters: { python3: python('python3'), [DEFAULT_PYTHON]: python(DEFAULT_PYTHON) },
    note: 'programsPerSecond: the best of the rounds; each round lists /proc/loadavg before and after it. Other work on the machine shares its cores.',
    results,
  };
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  for (const r of results) {
    console.log(`${r.workload} (${r.jobs} jobs):`);
    for (const run of r.runs) console.log(`  ${run.programsPerSecond.toFixed(1).padStart(6)} programs/s  ${run.sandbox}`);
  }
  console.log(`load ${loadavg()}; ${out}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
