/**
 * Training-example lineage over a recorded run (its filter decisions made by the real filter over
 * rollout and relabel ledgers), and `rise why` on problems and examples, good ids and bad.
 */

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { main } from '../../src/cli/main.ts';
import { planFromJson } from '../../src/plan/plan.ts';
import { exampleId, parseExampleId, runLineage } from '../../src/report/lineage.ts';
import { runTrajectories } from '../../src/report/trajectories.ts';
import { DROP_RULES } from '../../src/rise/filter.ts';
import { shortKey, stepOfKind } from '../../src/steps/index.ts';
import { getRun, openStore, readEpisodes, type LedgerEpisode, type Store } from '../../src/store/index.ts';
import { ablations, recordRun, tempHome } from './fixture.ts';
import { TRAIN_PROBLEMS } from './training-data.ts';

const RUN = 'run-a';

async function recorded(t: TestContext): Promise<{ home: string; store: Store }> {
  const home = tempHome(t);
  const store = await openStore({ home });
  t.after(async () => store.close());
  const { spec, plan } = await ablations();
  await recordRun(store, spec, plan, { runId: RUN, unfinishedArm: 'weak-to-strong' });
  return { home, store };
}

/** `rise ARGS` through main, with the store at `home`: the exit code and what it printed. */
async function rise(home: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const saved = { home: process.env.RISE_HOME, out: process.stdout.write, err: process.stderr.write };
  let [out, err] = ['', ''];
  process.env.RISE_HOME = home;
  process.stdout.write = ((chunk: string) => ((out += chunk), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => ((err += chunk), true)) as typeof process.stderr.write;
  try {
    return { code: await main(['node', 'rise', ...args]), out, err };
  } finally {
    process.stdout.write = saved.out;
    process.stderr.write = saved.err;
    if (saved.home === undefined) delete process.env.RISE_HOME;
    else process.env.RISE_HOME = saved.home;
  }
}

test('example ids: relabel/problem/tturn, problem ids with slashes included', () => {
  assert.equal(exampleId({ relabel: 'b97b8f40abbd', problemId: 'train-3', turn: 2 }), 'b97b8f40abbd/train-3/t2');
  assert.deepEqual(parseExampleId('b97b8f40abbd/gsm8k/train/17/t3'), { relabel: 'b97b8f40abbd', problemId: 'gsm8k/train/17', turn: 3 });
  assert.equal(parseExampleId('train-17'), null);
  assert.equal(parseExampleId('b97b8f40abbd/train-17'), null);
  assert.equal(parseExampleId('iter-1/train-17/t2'), null);
});

test('lineage: every kept example is a chosen sample of its relabel ledger, every dropped one names its rule, weights follow the train steps', async (t) => {
  const { store } = await recorded(t);
  const plan = planFromJson((await getRun(store, RUN))!.plan)!;
  const lineage = await runLineage(store, plan);
  // Iterations 1 and 2 of the five finished arms; rise, success-only, uniform and single-turn share iteration 1's data.
  assert.ok(lineage.length >= 6, `${lineage.length} filter steps`);
  let kept = 0;
  let dropped = 0;
  for (const f of lineage) {
    const filter = stepOfKind(plan.steps[f.key], 'filter');
    // Every turn of every episode of the filter's relabel steps is decided on once.
    const episodes = [];
    for (const r of f.relabels) for (const e of await readEpisodes(store, r.key)) episodes.push({ origin: r.origin, e });
    assert.equal(f.relabels.length, filter.inputs.length);
    assert.equal(f.examples.length, episodes.reduce((n, { e }) => n + e.turns.length, 0), `${f.key}: one decision per turn`);
    assert.equal(new Set(f.examples.map((e) => e.id)).size, f.examples.length, 'ids are unique within a filter');
    for (const e of f.examples) assert.equal(e.id, `${shortKey(f.relabels.find((r) => r.origin === e.origin)!.key)}/${e.problemId}/t${e.turn}`);
    for (const e of f.examples) {
      const episode: LedgerEpisode = episodes.find((x) => x.origin === e.origin && x.e.problemId === e.problemId)!.e;
      const turn = episode.turns.find((x) => x.turn === e.turn)!;
      const sample = turn.samples[turn.chosen];
      assert.equal(e.reward, sample.reward, `${e.id}: the reward is its ledger sample's`);
      assert.equal(e.candidate, sample.candidate, `${e.id}: the candidate is the chosen sample's`);
      assert.equal(e.kind, e.turn === 1 ? 'onPolicy' : 'relabel');
      assert.equal(e.candidates, e.turn === 1 ? 1 : stepOfKind(plan.steps[f.relabels.find((r) => r.origin === e.origin)!.key], 'relabel').params.samples);
      f.trains.forEach((train, i) => {
        const { weighting, tau } = stepOfKind(plan.steps[train.key], 'train').params;
        const expected = e.dropRule !== null ? null : weighting === 'uniform' ? 1 : Math.exp(e.reward / tau!);
        assert.equal(e.weights[i], expected, `${e.id} under ${train.key}`);
      });
      if (e.dropRule === null) kept++;
      else {
        dropped++;
        assert.ok((DROP_RULES as readonly string[]).includes(e.dropRule), `${e.id}: rule ${e.dropRule}`);
      }
    }
  }
  assert.ok(kept > 0 && dropped > 0, `${kept} kept, ${dropped} dropped`);
  assert.ok(lineage.some((f) => f.examples.some((e) => e.dropRule === 'unsuccessfulTrajectory')), 'success-only drops unsuccessful trajectories');
  assert.ok(lineage.some((f) => f.relabels.length === 2), 'iteration 2 aggregates iteration 1');

  // The viewer's conversations: every done evaluation, every problem, each turn's text as the ledger has it.
  const trajectories = await runTrajectories(store, plan);
  assert.equal(trajectories.models.length, 5 * 3 * 2 + 2 * 2);
  for (const [i, step] of trajectories.steps.entries()) {
    const ledger = new Map((await readEpisodes(store, step.key)).map((e) => [e.problemId, e]));
    assert.equal(step.problems.length, ledger.size, `step ${i}: every problem`);
    for (const [id, question, turns, parallel] of step.problems) {
      const e = ledger.get(id)!;
      assert.equal(trajectories.texts[question], e.prompt);
      assert.deepEqual(turns.map(([text]) => trajectories.texts[text]), e.turns.map((x) => x.samples[0].text));
      assert.equal(parallel.length, e.turns[0].samples.length);
    }
  }
});

test('rise why: a problem\'s episodes and examples, an example\'s origin and decisions, clear errors for unknown ids', async (t) => {
  const { home, store } = await recorded(t);
  const plan = planFromJson((await getRun(store, RUN))!.plan)!;
  const lineage = await runLineage(store, plan);

  const problem = await rise(home, 'why', RUN, 'train-3');
  assert.equal(problem.code, 0, problem.err);
  assert.match(problem.out, /^problem train-3 in run run-a\nquestion:\n {2}What is 3 \+ 4\? \(problem 3\)\n/);
  assert.match(problem.out, /\nrollout \w+ \(iteration 1; arms rise, expert, success-only, uniform, single-turn\)\n {2}turn 1 \(onPolicy\), 1 sample:\n {4}\[0\] chosen, reward [01], answer /);
  assert.match(problem.out, /\nrelabel \w+ \(iteration 2; arms rise\)\n/);
  const examples = lineage.flatMap((f) => f.examples.filter((e) => e.problemId === 'train-3'));
  assert.ok(examples.length > 0);
  assert.equal((problem.out.match(/^ {2}[0-9a-f]+\/train-3\/t\d+: /gm) ?? []).length, examples.length, 'every decision on the problem is listed');

  const evaluated = await rise(home, 'why', RUN, 'p3');
  assert.equal(evaluated.code, 0, evaluated.err);
  // Each evaluation of the problem (boosted and iterations 1, 2 of five arms, 1 of weak-to-strong, on its eval sets).
  assert.equal((evaluated.out.match(/^evaluate \w+ /gm) ?? []).length, new Set((await runTrajectories(store, plan)).models.map((m) => m.step)).size);
  assert.match(evaluated.out, /\n {2}turn 1 \(parallel\), 10 samples:\n/);
  assert.match(evaluated.out, /\nno filter step made examples of it\n$/);

  const dropped = lineage.flatMap((f) => f.examples).find((e) => e.dropRule !== null && e.turn === 2)!;
  const example = await rise(home, 'why', RUN, dropped.id);
  assert.equal(example.code, 0, example.err);
  assert.match(example.out, new RegExp(`^example ${dropped.id} in run run-a: problem ${dropped.problemId}, turn 2, relabel candidate \\d+ of 8 \\(\\w+\\), reward ${dropped.reward}\\norigin: rollout \\w+ drew attempt 1; relabel \\w+ \\(${dropped.origin}\\) continued the episode\\n`));
  assert.match(example.out, /\n {2}turn 2 \(relabel\), 8 samples:\n/);
  assert.match(example.out, new RegExp(`\\n {2}${dropped.id}: .*dropped by ${dropped.dropRule}`));
  const decisions = lineage.filter((f) => f.examples.some((e) => e.id === dropped.id)).length;
  assert.equal((example.out.match(new RegExp(`^ {2}${dropped.id}: `, 'gm')) ?? []).length, decisions, 'one line per filter that decided on it');

  const noProblem = await rise(home, 'why', RUN, 'train-333');
  assert.equal(noProblem.code, 2);
  assert.match(noProblem.err, /^rise: no problem "train-333" in run run-a's rollout, relabel or evaluate steps \(\d+ problems\); closest problem ids: train-3, /);
  const missing = `${dropped.id.split('/')[0]}/train-3/t7`;
  const noExample = await rise(home, 'why', RUN, missing);
  assert.equal(noExample.code, 2);
  assert.ok(noExample.err.startsWith(`rise: no example "${missing}" in run run-a's filter steps (`), noExample.err);
  assert.match(noExample.err, new RegExp(`closest example ids: ${dropped.id.split('/')[0]}/train-3/t1, `));
  const noRun = await rise(home, 'why', 'run-z', 'train-3');
  assert.equal(noRun.code, 2);
  assert.match(noRun.err, /no run "run-z".*run-a/);
  assert.ok(TRAIN_PROBLEMS > 3);
});
