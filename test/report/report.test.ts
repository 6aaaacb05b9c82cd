import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { UsageError } from '../../src/cli/errors.ts';
import { registerReportCommands } from '../../src/cli/report.ts';
import { compareRuns, comparisonTable } from '../../src/report/compare.ts';
import { loadRunReport, type RunReport } from '../../src/report/data.ts';
import { armDiffs, diffJson } from '../../src/report/diff.ts';
import { renderMarkdown } from '../../src/report/markdown.ts';
import { createRun, getRun, openStore, readMetrics, upsertMetrics, type Store } from '../../src/store/index.ts';
import { ablations, evaluationsOf, recordRun, tempHome, tempStore } from './fixture.ts';

const RUN = 'run-a';

async function reportOf(store: Store, runId = RUN): Promise<RunReport> {
  return loadRunReport(store, (await getRun(store, runId))!);
}

async function recordedStore(t: TestContext): Promise<Store> {
  const store = await tempStore(t);
  const { spec, plan } = await ablations();
  await recordRun(store, spec, plan, { runId: RUN, unfinishedArm: 'weak-to-strong' });
  return store;
}

test('diffJson: changed leaves by JSON pointer, arrays whole, keys on one side only', () => {
  assert.deepEqual(diffJson({ a: { b: 1, c: [1, 2] }, d: null, e: 1 }, { a: { b: 2, c: [1, 2] }, d: { x: 1 }, f: 'y' }), [
    { path: '/a/b', base: 1, arm: 2 },
    { path: '/d', base: null, arm: { x: 1 } },
    { path: '/e', base: 1 },
    { path: '/f', arm: 'y' },
  ]);
  assert.deepEqual(diffJson({ ops: [2, 3] }, { ops: [4] }), [{ path: '/ops', base: [2, 3], arm: [4] }]);
  assert.deepEqual(diffJson({ 'a/b': 1 }, { 'a/b': 2 }), [{ path: '/a~1b', base: 1, arm: 2 }]);
});

test('armDiffs: each ablation arm differs from the base in exactly what it declares', async () => {
  const { spec } = await ablations();
  const diffs = new Map(armDiffs(spec).map((d) => [d.arm, d.changes.map((c) => c.path)]));
  assert.deepEqual(diffs.get('rise'), []);
  assert.deepEqual(diffs.get('expert'), ['/relabel/strategy']);
  assert.deepEqual(diffs.get('success-only')!.sort(), ['/filter/criteria', '/filter/onlySuccessTrajectories', '/train/weighting']);
  assert.deepEqual(diffs.get('single-turn'), ['/train/format']);
  assert.ok(diffs.get('weak-to-strong')!.includes('/rollout/policy'));
});

test('loadRunReport: metrics, a loss curve per done boost and train step, a timing per distinct step', async (t) => {
  const store = await recordedStore(t);
  const { plan } = await ablations();
  const report = await reportOf(store);

  assert.deepEqual(report.arms, ['rise', 'expert', 'success-only', 'uniform', 'single-turn', 'weak-to-strong']);
  assert.deepEqual(report.evalSets, ['in-dist', 'ood']);
  assert.equal(report.metrics.length, (await readMetrics(store, { runId: RUN })).length);
  assert.equal(report.steps.length, Object.keys(plan.steps).length);
  assert.ok(report.planned);

  const undone = report.steps.filter((s) => s.status !== 'done');
  assert.ok(undone.length > 0 && undone.every((s) => s.arms.includes('weak-to-strong') && s.iteration === 2 && s.seconds === null));
  const shared = report.steps.find((s) => s.kind === 'boost' && s.arms.length > 1)!;
  assert.equal(shared.label, 'learner');
  assert.equal(shared.seconds, 30);

  // Paired differences: the mean of per-problem differences is the difference of the means, with a standard error.
  const point = (arm: string, iteration: number, name: string) => report.metrics.find((m) => m.arm === arm && m.iteration === iteration && m.evalSet === 'in-dist' && m.name === name)!.value;
  const diff = (arm: string, iteration: number, comparison: string) => report.differences.find((d) => d.arm === arm && d.iteration === iteration && d.evalSet === 'in-dist' && d.comparison === comparison)!;
  for (const [comparison, later, earlier] of [['m1@t5 − m1@t1', 'm1@t5', 'm1@t1'], ['m1@t5 − m5@t1', 'm1@t5', 'm5@t1']]) {
    const d = diff('rise', 2, comparison);
    assert.ok(Math.abs(d.difference - (point('rise', 2, later) - point('rise', 2, earlier))) < 1e-12, comparison);
    assert.ok(d.se > 0 && d.problems === 40);
  }
  const gain = diff('uniform', 1, 'p1@t5 − boosted');
  assert.ok(Math.abs(gain.difference - (point('uniform', 1, 'p1@t5') - point('uniform', 0, 'p1@t5'))) < 1e-12);
  assert.equal(report.differences.filter((d) => d.iteration === 0 && d.comparison.endsWith('boosted')).length, 0, 'the boosted model is not compared with itself');
  const arms = diff('uniform', 2, 'm1@t5 − rise');
  assert.ok(Math.abs(arms.difference - (point('uniform', 2, 'm1@t5') - point('rise', 2, 'm1@t5'))) < 1e-12, 'an arm against the first arm, same iteration');
  assert.equal(report.differences.filter((d) => d.arm === 'rise' && d.comparison.endsWith('− rise')).length, 0);

  const trainSteps = report.steps.filter((s) => (s.kind === 'boost' || s.kind === 'train') && s.status === 'done');
  assert.deepEqual(report.training.map((c) => c.key).sort(), trainSteps.map((s) => s.key).sort());
  const boost = report.training.find((c) => c.key === shared.key)!;
  assert.equal(boost.losses.length, 125);
  assert.equal(boost.steps, 125);
  assert.equal(boost.firstLoss, boost.losses[0]);
});

test('renderMarkdown: headline and per-k tables with stored values, dashes where not measured, arm diffs, spec', async (t) => {
  const store = await recordedStore(t);
  const md = renderMarkdown(await reportOf(store));
  // The rows the run wrote, under its spec's rule (the default): the report recomputes the same from the ledger.
  const rows = await readMetrics(store, { runId: RUN });
  const stored = (arm: string, iteration: number, evalSet: string, name: string) => rows.find((m) => m.arm === arm && m.iteration === iteration && m.evalSet === evalSet && m.name === name)!;
  const value = (arm: string, iteration: number, evalSet: string, name: string) => (100 * stored(arm, iteration, evalSet, name).value).toFixed(1);
  const ties = (arm: string, iteration: number, evalSet: string, name: string) => String((stored(arm, iteration, evalSet, name).details as { ties: number }).ties);

  assert.match(md, /^# Run run-a\n/);
  assert.ok(md.includes('Majority-vote ties: expected credit'));
  assert.match(md, /\| arm \| model \| m1@t1 \(%\) \| m5@t1 \(%\) \| m5@t1 ties \| m1@t5 \(%\) \| m1@t5 ties \| p1@t5 \(%\) \|/);
  const at = ['expert', 1, 'ood'] as const;
  const row = ['expert', 'iteration 1', value(...at, 'm1@t1'), value(...at, 'm5@t1'), ties(...at, 'm5@t1'), value(...at, 'm1@t5'), ties(...at, 'm1@t5'), value(...at, 'p1@t5')].join(' | ');
  assert.ok(md.includes(`| ${row} |`), row);
  assert.ok(Number(ties(...at, 'm5@t1')) > 0, 'the synthetic answers tie');
  // The unfinished arm has its boosted model and first iteration, nothing for the second.
  assert.ok(md.includes('| weak-to-strong | iteration 1 |'));
  assert.ok(!md.includes('| weak-to-strong | iteration 2 |'));

  const seq = Array.from({ length: 10 }, (_, k) => value('rise', 2, 'in-dist', `m1@t${k + 1}`));
  assert.ok(md.includes(`| rise | iteration 2 | m1@tk | ${seq.join(' | ')} |`));
  const par = Array.from({ length: 10 }, (_, k) => value('rise', 0, 'in-dist', `m${k + 1}@t1`));
  assert.ok(md.includes(`| rise | boosted | mk@t1 | ${par.join(' | ')} |`));
  const seqTies = Array.from({ length: 10 }, (_, k) => ties('rise', 2, 'in-dist', `m1@t${k + 1}`));
  assert.ok(md.includes(`| rise | iteration 2 | m1@tk ties | ${seqTies.join(' | ')} |`));

  // Transitions: the four counts of every pair of turns add up to the problems.
  const transitions = /\| rise \| iteration 2 \| 1 → 2 \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| ([+-]?\d+) \|/.exec(md);
  assert.ok(transitions, 'a transitions row');
  const [rr, rw, wr, ww, net] = transitions.slice(1).map(Number);
  assert.equal(rr + rw + wr + ww, (stored('rise', 2, 'in-dist', 'm1@t1')).details !== null ? ((stored('rise', 2, 'in-dist', 'm1@t1')).details as { problems: number }).problems : NaN);
  assert.equal(net, wr - rw);
  assert.match(md, /## Paired differences\n\n.*\n\n### in-dist\n\n\| arm \| model \| m1@t5 − m1@t1 \| m1@t5 − m5@t1 \| m1@t1 − boosted \|/);
  assert.match(md, /\| rise \| iteration 2 \| [+-]?\d+\.\d ± \d+\.\d \|/);
  assert.match(md, /### in-dist, against rise\n\n\| arm \| model \| m1@t1 − rise \| m5@t1 − rise \| m1@t5 − rise \| p1@t5 − rise \|\n\|---\|---\|---:\|---:\|---:\|---:\|\n\| expert \| iteration 1 \|/);

  assert.match(md, /## Training\n\n### Training\n\n\| step \| kind \| model \| arms \|/);
  // Every arm's learner starts from the one shared boost.
  assert.match(md, /\| boost \| boost learner \| rise, expert, success-only, uniform, single-turn, weak-to-strong \| 125 \|/);
  assert.match(md, /\| boost \| 0 \| learner \| rise, expert/);
  assert.match(md, /\| relabel \| 2 \|  \| weak-to-strong \| pending \| 0 \| – \|/);
  assert.match(md, /\| evaluate \| \d+ \| \d+ \| [\d.]+ \|/);
  assert.match(md, /### uniform\n\n- `` \/train\/weighting: "rwr" → "uniform" ``/);
  assert.match(md, /### rise\n\nSame as the base\./);
  assert.ok(md.includes('"name": "arithmetic-ablations"'));
});

test('a run recorded without its plan reports its metrics and says why nothing else', async (t) => {
  const store = await tempStore(t);
  const { spec } = await ablations();
  await createRun(store, { id: 'old', experiment: spec.name, spec });
  await upsertMetrics(store, [{ runId: 'old', arm: 'rise', iteration: 0, evalSet: 'ood', name: 'm1@t1', value: 0.25 }]);
  const report = await reportOf(store, 'old');
  assert.deepEqual([report.planned, report.steps, report.training], [false, [], []]);
  const md = renderMarkdown(report);
  assert.match(md, /recorded without its plan/);
  assert.match(md, /\| rise \| boosted \| 25\.0 \| – \| – \| – \|/);
  assert.match(md, /## Training\n\nNo training step done yet\./);
});

test('compareRuns: matching points side by side with differences; points of one run only are counted', async (t) => {
  const store = await tempStore(t);
  const { spec, plan } = await ablations();
  await recordRun(store, spec, plan, { runId: 'run-a' });
  await recordRun(store, spec, plan, { runId: 'run-b', skill: 0.2, unfinishedArm: 'weak-to-strong' });
  const runs = await evaluationsOf(store, ['run-a', 'run-b']);

  const headline = compareRuns(runs, ['m1@t1', 'p1@t5']);
  // 6 arms × 3 iterations × 2 sets × 2 metrics, less run-b's missing weak-to-strong iteration 2.
  assert.equal(headline.points.length, 6 * 3 * 2 * 2 - 4);
  assert.equal(headline.unmatched, 4);
  assert.deepEqual(headline.points.slice(0, 2).map((p) => [p.arm, p.iteration, p.evalSet, p.metric]), [
    ['rise', 0, 'in-dist', 'm1@t1'],
    ['rise', 0, 'in-dist', 'p1@t5'],
  ]);
  const [a, b] = headline.points[0].values;
  const table = comparisonTable(headline);
  assert.match(table.title, /majority-vote ties: expected/);
  assert.deepEqual(table.columns.map((c) => c.name).slice(4), ['run-a', 'run-b', 'Δ run-b − run-a', '95% interval run-b − run-a', 'ties run-a', 'ties run-b']);
  const sign = b! > a! ? '+' : '';
  assert.deepEqual(table.rows[0].slice(0, 7), ['rise', 'boosted', 'in-dist', 'm1@t1', (100 * a!).toFixed(1), (100 * b!).toFixed(1), `${sign}${(100 * (b! - a!)).toFixed(1)}`]);
  assert.deepEqual(table.rows[0].slice(8), ['0', '0']);
  // Both runs evaluated the same problems: every difference is paired, and it is the difference of the values.
  for (const p of headline.points) {
    const d = p.differences[0]!;
    assert.equal(d.pairing, 'paired');
    assert.ok(Math.abs(d.difference - (p.values[1]! - p.values[0]!)) < 1e-12, `${p.arm} ${p.iteration} ${p.evalSet} ${p.metric}`);
    assert.ok(d.low <= d.difference && d.difference <= d.high);
  }
  assert.match(table.rows[0][7], /^\[[-+]?\d+\.\d, [-+]?\d+\.\d\] paired$/);
  const m5 = compareRuns(runs, ['m5@t1']).points[0];
  assert.ok(m5.ties.every((n) => n !== null && n > 0), 'ties of a voted metric, per run');
  const latest = await evaluationsOf(store, ['run-a', 'run-b'], 'latest');
  assert.throws(() => compareRuns([runs[0], latest[1]]), /different tie rules \(expected, latest\)/);
  // Every metric: m1@t1…m10@t1, m1@t2…m1@t10, p1@t1…p1@t10.
  assert.equal(compareRuns(runs).points.length, (6 * 3 * 2 - 2) * 29);
});

/** Runs `rise <args>` through the report commands, with the store at `home`; returns stdout. */
async function rise(home: string, ...args: string[]): Promise<string> {
  const program = new Command('rise').exitOverride();
  registerReportCommands(program);
  const saved = { home: process.env.RISE_HOME, write: process.stdout.write };
  let out = '';
  process.env.RISE_HOME = home;
  process.stdout.write = ((chunk: string) => ((out += chunk), true)) as typeof process.stdout.write;
  try {
    await program.parseAsync(['node', 'rise', ...args]);
  } finally {
    process.stdout.write = saved.write;
    if (saved.home === undefined) delete process.env.RISE_HOME;
    else process.env.RISE_HOME = saved.home;
  }
  return out;
}

test('rise report / compare: files, --json, and usage errors naming the run', async (t) => {
  const home = tempHome(t);
  await assert.rejects(rise(home, 'report', RUN), (e: Error) => e instanceof UsageError && /no store at /.test(e.message));
  assert.ok(!fs.existsSync(path.join(home, 'rise.db')), 'a failed report must not create a store');

  const { spec, plan } = await ablations();
  const store = await openStore({ home });
  await recordRun(store, spec, plan, { runId: RUN });
  await recordRun(store, spec, plan, { runId: 'run-b', skill: 0.1 });
  await store.close();

  const out = await rise(home, 'report', RUN);
  const dir = path.join(home, 'reports', RUN);
  assert.equal(out, `wrote ${dir}/report.md\nwrote ${dir}/report.html\n`);
  assert.match(fs.readFileSync(path.join(dir, 'report.md'), 'utf8'), /## Headline metrics/);
  assert.ok(!/<script[^>]+src=/.test(fs.readFileSync(path.join(dir, 'report.html'), 'utf8')), 'the page loads no script from elsewhere');

  const custom = path.join(home, 'elsewhere');
  await rise(home, 'report', RUN, '--out', custom);
  assert.ok(fs.existsSync(path.join(custom, 'report.html')));

  const json = JSON.parse(await rise(home, 'report', RUN, '--json')) as RunReport;
  assert.equal(json.run.id, RUN);
  assert.ok(json.metrics.some((m) => m.name === 'p1@t10' && m.arm === 'uniform' && m.iteration === 2));

  // Another tie rule is a recomputation from the ledger: the same points, values under that rule, the rule named.
  const latest = JSON.parse(await rise(home, 'report', RUN, '--json', '--tie-break', 'latest')) as RunReport;
  assert.equal(json.tieBreak, 'expected');
  assert.equal(latest.tieBreak, 'latest');
  assert.deepEqual(latest.metrics.map((m) => m.value), json.metrics.map((m) => m.byRule!.latest));
  assert.ok(latest.metrics.some((m, i) => m.value !== json.metrics[i].value), 'ties decide some points');
  assert.deepEqual(latest.transitions, json.transitions);
  // So is another vote weighting: recency moves sequential votes only; parallel samples and the oracle stay.
  const recency = JSON.parse(await rise(home, 'report', RUN, '--json', '--vote', 'recency')) as RunReport;
  assert.deepEqual([json.vote, recency.vote], ['uniform', 'recency']);
  assert.deepEqual(recency.metrics.map((m) => [m.arm, m.iteration, m.evalSet, m.name]), json.metrics.map((m) => [m.arm, m.iteration, m.evalSet, m.name]));
  const moved = recency.metrics.filter((m, i) => m.value !== json.metrics[i].value).map((m) => m.name);
  assert.ok(moved.length > 0 && moved.every((name) => /^m1@t([2-9]|10)$/.test(name)), `recency moved ${[...new Set(moved)].join(', ')}`);
  assert.ok(recency.differences.some((d, i) => d.difference !== json.differences[i].difference), 'comparisons are recomputed too');
  // The fixture gives every sample the same log-prob and length: confidence weighs every answer alike.
  const confidence = JSON.parse(await rise(home, 'report', RUN, '--json', '--vote', 'confidence')) as RunReport;
  assert.deepEqual(confidence.metrics.map((m) => m.value), json.metrics.map((m) => m.value));
  await assert.rejects(rise(home, 'report', RUN, '--vote', 'loudest'), /Allowed choices are uniform, recency, confidence/);
  await rise(home, 'report', RUN, '--tie-break', 'earliest', '--out', custom);
  assert.match(fs.readFileSync(path.join(custom, 'report.md'), 'utf8'), /Majority-vote ties: earliest/);
  await assert.rejects(rise(home, 'report', RUN, '--tie-break', 'first'), /Allowed choices are expected, latest, earliest, random/);

  await assert.rejects(rise(home, 'report', 'nope'), (e: Error) => e instanceof UsageError && e.message.includes('no run "nope"') && e.message.includes('run-b'));

  const table = await rise(home, 'compare', RUN, 'run-b');
  assert.match(table, /^\| arm \| model \| eval set \| metric \| run-a \| run-b \| Δ run-b − run-a \| 95% interval run-b − run-a \| ties run-a \| ties run-b \|\n\|---\|---\|---\|---\|---:\|---:\|---:\|---\|---:\|---:\|\n\| rise \| boosted \| in-dist \| m1@t1 \|/);
  const recencyTable = await rise(home, 'compare', RUN, 'run-b', '--vote', 'recency', '--json');
  assert.equal((JSON.parse(recencyTable) as { vote: string }).vote, 'recency');
  assert.equal(table.trimEnd().split('\n').length, 2 + 6 * 3 * 2 * 4);
  const comparison = JSON.parse(await rise(home, 'compare', RUN, 'run-b', '--metrics', 'p1@t10', '--json')) as { runs: string[]; points: unknown[] };
  assert.deepEqual(comparison.runs, [RUN, 'run-b']);
  assert.equal(comparison.points.length, 6 * 3 * 2);

  await assert.rejects(rise(home, 'compare', RUN), (e: Error) => e instanceof UsageError && /at least two/.test(e.message));
  await assert.rejects(rise(home, 'compare', RUN, 'nope'), (e: Error) => e instanceof UsageError && /no run "nope"/.test(e.message));
});
