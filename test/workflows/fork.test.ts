/**
 * Retroactive evaluation through Temporal: a finished run forked with an extra evaluation set and more
 * turns evaluates every model the run stored and retrains nothing. The store says which run computed
 * each step (a reused step keeps the run that computed it), so the test reads there what ran.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { planFromJson } from '../../src/plan/plan.ts';
import { getRun, getStep, openStore, readMetrics } from '../../src/store/index.ts';
import { testTemporalServer, type TestTemporalServer } from '../temporal/server.ts';
import { uniqueTaskQueue } from '../temporal/worker.ts';
import { rise, stepsRunBy, tempHome, TINY } from './helpers.ts';

describe('rise fork against the test server', () => {
  let server: TestTemporalServer;
  before(async () => {
    server = await testTemporalServer();
  });
  after(async () => {
    await server?.stop();
  });

  test('an evaluation set and a turn added to a finished run: only evaluations run, on every stored model; extending it runs the new iteration only; a change from iteration 1 reruns from there', async (t) => {
    const home = tempHome(t);
    const dir = mkdtempSync(join(tmpdir(), 'rise-fork-'));
    const file = join(dir, 'tiny.json');
    writeFileSync(file, JSON.stringify({ name: 'tiny-fork', ...TINY }));
    const env = { RISE_HOME: home, TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: server.namespace, RISE_TASK_QUEUE: uniqueTaskQueue('fork') };
    const first = await rise(['run', file, '--worker'], env);
    assert.equal(first.code, 0, first.stderr);
    const runId = /started run (\S+)/.exec(first.stdout)![1];

    const evalSets = JSON.stringify([{ name: 'in-dist', count: 8 }, { name: 'wide', count: 6, max: 9 }]);
    const fork = await rise(['fork', runId, '--set', `task.eval=${evalSets}`, '--set', 'evaluate.turns=3', '--worker'], env);
    assert.equal(fork.code, 0, fork.stderr);
    const forkId = /started run (\S+)/.exec(fork.stdout)![1];
    assert.notEqual(forkId, runId);
    assert.match(fork.stdout, /5 reused, 4 to run/, fork.stdout);

    const store = await openStore({ home });
    t.after(async () => store.close());
    const plan = planFromJson((await getRun(store, forkId))!.plan)!;
    const computed = await stepsRunBy(store, plan, forkId);
    assert.deepEqual(computed.map((s) => s.kind), ['evaluate', 'evaluate', 'evaluate', 'evaluate'], 'the fork computed evaluations only');
    for (const step of Object.values(plan.steps)) {
      const info = (await getStep(store, step.key))!;
      assert.equal(info.status, 'done');
      if (step.kind !== 'evaluate') assert.deepEqual([info.runId, info.attempts], [runId, 1], `${step.kind} computed once, by the first run`);
    }
    // Both stored models (the boosted one and iteration 1's) evaluated on both sets, with three turns.
    const rows = (await readMetrics(store, { runId: forkId })).filter((r) => r.name === 'm1@t3');
    assert.deepEqual(rows.map((r) => `${r.iteration} ${r.evalSet}`).sort(), ['0 in-dist', '0 wide', '1 in-dist', '1 wide']);

    // The fork extended by an iteration: only iteration 2 runs, and the new run reports every iteration.
    const extend = await rise(['extend', forkId, '--iterations', '2', '--worker'], env);
    assert.equal(extend.code, 0, extend.stderr);
    const extendId = /started run (\S+)/.exec(extend.stdout)![1];
    const longer = planFromJson((await getRun(store, extendId))!.plan)!;
    const added = await stepsRunBy(store, longer, extendId);
    assert.deepEqual(added.map((s) => s.kind), ['rollout', 'relabel', 'filter', 'train', 'evaluate', 'evaluate']);
    for (const step of Object.values(plan.steps)) assert.ok(longer.steps[step.key], `the fork's ${step.kind} is kept`);
    const sets = (await readMetrics(store, { runId: extendId })).filter((r) => r.name === 'm1@t3');
    assert.deepEqual(sets.map((r) => `${r.iteration} ${r.evalSet}`).sort(), ['0 in-dist', '0 wide', '1 in-dist', '1 wide', '2 in-dist', '2 wide']);

    // A change from iteration 1 on: the boost, its evaluation and iteration 1's rollout (sampled from the
    // boosted model) are the first run's; relabeling and what follows from it run anew.
    const from = await rise(['fork', runId, '--set', 'relabel.samples=3', '--from', 'iteration:1', '--worker'], env);
    assert.equal(from.code, 0, from.stderr);
    const fromId = /started run (\S+)/.exec(from.stdout)![1];
    assert.match(from.stdout, /why: samples 2 → 3/);
    const spliced = planFromJson((await getRun(store, fromId))!.plan)!;
    const ran = await stepsRunBy(store, spliced, fromId);
    assert.deepEqual(ran.map((s) => s.kind), ['relabel', 'filter', 'train', 'evaluate']);
    const firstPlan = planFromJson((await getRun(store, runId))!.plan)!;
    const boostEval = firstPlan.arms[0].steps.filter((u) => u.iteration === 0 || u.kind === 'rollout').map((u) => u.key);
    assert.deepEqual(spliced.arms[0].steps.filter((u) => u.iteration === 0 || u.kind === 'rollout').map((u) => u.key), boostEval);
  });
});
