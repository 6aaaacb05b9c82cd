/**
 * Forking a run's spec: `--set` on a stored spec (paths, values, validation), the plan spliced from an
 * iteration on, and the reuse table `rise fork` and `rise extend` print; the CLI against a store whose run
 * finished (no Temporal: --dry-run starts nothing).
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { forkPlan, ForkError } from '../../src/plan/fork.ts';
import { placeOf } from '../../src/plan/stale.ts';
import { SpecError } from '../../src/spec/issues.ts';
import { stepOfKind } from '../../src/steps/index.ts';
import { applySettings, parseSetting, SettingError } from '../../src/spec/set.ts';
import { validateSpec } from '../../src/spec/validate.ts';
import { createRun, finishStep, openStore, setRunStatus, startStep } from '../../src/store/index.ts';
import { formatReuse, iterationsSetting } from '../../src/cli/fork.ts';
import { rise, tempHome, tinyPlan, tinySpec } from '../workflows/helpers.ts';

const set = (spec: ReturnType<typeof tinySpec>, ...texts: string[]) => applySettings(spec, texts.map(parseSetting));

/** Place → key for every step use of a plan. */
function places(plan: ReturnType<typeof tinyPlan>): Map<string, string> {
  return new Map(plan.arms.flatMap((arm) => arm.steps.map((use) => [placeOf(arm, use), use.key] as const)));
}

test('--set changes the base and every arm; arms.NAME.path one arm; the result is validated', () => {
  const spec = tinySpec('fork-set');
  const changed = set(spec, 'relabel.samples=5', 'arms.uniform.train.lr=0.002', 'task.eval=[{"name":"in-dist","count":8},{"name":"wide","count":4,"max":9}]');
  assert.equal(changed.relabel.samples, 5);
  assert.equal(changed.arms.rise.relabel.samples, 5);
  assert.equal(changed.arms.uniform.relabel.samples, 5);
  assert.equal(changed.arms.uniform.train.lr, 0.002);
  assert.equal(changed.arms.rise.train.lr, spec.arms.rise.train.lr);
  assert.deepEqual(changed.arms.rise.task.eval.map((s) => s.name), ['in-dist', 'wide']);
  // Knobs an arithmetic evaluation set leaves null are the training set's, as when the file said it.
  const task = changed.arms.rise.task;
  assert.ok(task.kind === 'arithmetic' && spec.task.kind === 'arithmetic');
  assert.deepEqual(task.eval[1].ops, spec.task.train.ops);
  assert.equal(spec.relabel.samples, 2, 'the stored spec is not modified');
  // Unchanged: re-validating a validated spec gives the same plan.
  assert.deepEqual(tinyPlan(set(spec, 'relabel.samples=2')), tinyPlan(spec));

  assert.throws(() => set(spec, 'relabel.sampels=5'), (err: Error) => err instanceof SettingError && /relabel\.sampels is not in the spec \(fields: .*samples/.test(err.message));
  assert.throws(() => set(spec, 'arms.nope.iterations=2'), (err: Error) => err instanceof SettingError && /no arm "nope"; arms: rise, uniform/.test(err.message));
  assert.throws(() => set(spec, 'relabel.samples=0'), (err: Error) => err instanceof SpecError && /\/relabel\/samples/.test(err.message) && /--set relabel\.samples=0/.test(err.message));
  assert.throws(() => parseSetting('relabel.samples'), /expected PATH=VALUE/);
  assert.throws(() => parseSetting('relabel..samples=1'), /expected PATH=VALUE/);
  assert.equal(parseSetting('task.kind=gsm8k').value, 'gsm8k', 'a value that is not JSON is a string');
});

test('a fork from iteration K keeps the earlier iterations\' keys and re-keys the rest onto them', () => {
  const spec = set(tinySpec('fork-from'), 'iterations=3');
  const before = tinyPlan(spec);
  const whole = tinyPlan(set(spec, 'relabel.samples=4'));
  const forked = forkPlan(before, whole, 2);
  const old = places(before);
  const now = places(forked);
  assert.deepEqual([...now.keys()], [...old.keys()], 'the same places');
  for (const [place, key] of now) {
    const [, iteration, kind] = place.split('/');
    const same = Number(iteration) < 2 || kind === 'rollout' && Number(iteration) === 2;
    // Iteration 2's rollout samples from iteration 1's model, which the change does not touch.
    assert.equal(key === old.get(place), same, place);
  }
  const relabel2 = forked.arms[0].steps.find((u) => u.iteration === 2 && u.kind === 'relabel')!;
  assert.equal(stepOfKind(forked.steps[relabel2.key], 'relabel').params.samples, 4);
  const relabel1 = forked.arms[0].steps.find((u) => u.iteration === 1 && u.kind === 'relabel')!;
  assert.equal(stepOfKind(forked.steps[relabel1.key], 'relabel').params.samples, 2);
  // Every input of every step is a step of the plan, and the plan's keys are the hashes of its steps.
  for (const step of Object.values(forked.steps)) for (const input of step.inputs) assert.ok(forked.steps[input], `${step.kind} reads ${input}`);
  // From iteration 1 the fork is the changed spec's plan: nothing before it differs (the boost is the same).
  assert.deepEqual(places(forkPlan(before, whole, 1)), places(whole));

  assert.throws(() => forkPlan(before, whole, 4), (err: Error) => err instanceof ForkError && /takes 1\.\.3/.test(err.message));
  assert.throws(() => forkPlan(before, tinyPlan(set(spec, 'boost.epochs=3')), 2), (err: Error) => err instanceof ForkError && /the spec's boost of arm rise \(learner\) is not the run's/.test(err.message));
});

test('extending a run whose iterations carry a stop rule raises their max and keeps the rule', () => {
  const stopping = applySettings(tinySpec('fork-extend-stop'), [parseSetting('iterations={"max": 2, "stopWhen": {"metric": "m1@t1", "evalSet": "in-dist", "patience": 1, "minGain": 0.5}}')]);
  const extended = applySettings(stopping, [iterationsSetting(stopping, 4)]);
  assert.deepEqual(extended.iterations, { max: 4, stopWhen: { metric: 'm1@t1', evalSet: 'in-dist', patience: 1, minGain: 0.5 } });
  const plain = tinySpec('fork-extend-plain');
  assert.equal(applySettings(plain, [iterationsSetting(plain, 4)]).iterations, 4);
});

test('extending splices after the run\'s last iteration: every step of the run kept, a fork\'s spliced iterations too', () => {
  const spec = set(tinySpec('fork-extend'), 'iterations=2');
  const before = tinyPlan(spec);
  const longer = tinyPlan(set(spec, 'iterations=3'));
  // Same spec, same engine: the splice is the longer spec's own plan.
  assert.deepEqual(places(forkPlan(before, longer, 3)), places(longer));

  // A run forked from iteration 2 with more relabel samples, then extended: iteration 1 stays the original's,
  // iteration 2 the fork's, and iteration 3 builds on the fork's iteration-2 model with its samples.
  const forked = forkPlan(before, tinyPlan(set(spec, 'relabel.samples=4')), 2);
  const extended = forkPlan(forked, tinyPlan(set(spec, 'relabel.samples=4', 'iterations=3')), 3);
  const kept = places(forked);
  for (const [place, key] of places(extended)) {
    if (kept.has(place)) assert.equal(key, kept.get(place), place);
  }
  const rise = extended.arms[0];
  const train2 = rise.steps.find((u) => u.iteration === 2 && u.kind === 'train')!.key;
  const rollout3 = rise.steps.find((u) => u.iteration === 3 && u.kind === 'rollout')!;
  assert.deepEqual(extended.steps[rollout3.key].inputs, [train2]);
  const relabel3 = rise.steps.find((u) => u.iteration === 3 && u.kind === 'relabel')!;
  assert.equal(stepOfKind(extended.steps[relabel3.key], 'relabel').params.samples, 4);
  // Re-planning the fork's spec instead would have lost its iteration 1.
  assert.notEqual(places(tinyPlan(set(spec, 'relabel.samples=4', 'iterations=3'))).get('rise/1/relabel/'), kept.get('rise/1/relabel/'));
});

test('an evaluation set added from iteration K is evaluated from K on only', () => {
  const spec = set(tinySpec('fork-eval'), 'iterations=2');
  const before = tinyPlan(spec);
  const whole = tinyPlan(set(spec, 'task.eval=[{"name":"in-dist","count":8},{"name":"wide","count":4,"max":9}]'));
  const forked = forkPlan(before, whole, 2);
  const wide = forked.arms[0].steps.filter((u) => u.evalSet === 'wide').map((u) => u.iteration);
  assert.deepEqual(wide, [2]);
  assert.equal(forked.arms[0].steps.filter((u) => u.kind !== 'evaluate' || u.evalSet !== 'wide').every((u) => places(before).get(placeOf(forked.arms[0], u)) === u.key), true, 'every other step is the run\'s');
});

test('the reuse table: finished steps reused, the others with why their key is new', () => {
  const spec = tinySpec('fork-table');
  const before = tinyPlan(spec);
  const after = tinyPlan(set(spec, 'iterations=2', 'evaluate.turns=3'));
  const done = new Set(Object.keys(before.steps));
  const text = formatReuse(before, after, (key) => (done.has(key) ? 'done' : 'pending'));
  // Every boost, rollout, relabel, filter and train of iteration 1 is reused; every evaluation is new (turns).
  for (const line of text.split('\n').filter((l) => /^ {4}[0-9a-f]{12}/.test(l))) {
    const kind = line.trim().split(/\s+/)[1];
    const iteration2 = after.arms.some((arm) => arm.steps.some((u) => u.iteration === 2 && line.includes(u.key.slice(0, 12))));
    assert.equal(line.endsWith('reused'), kind !== 'evaluate' && !iteration2, line);
  }
  assert.match(text, /why: evaluate\.turns 2 → 3/);
  assert.match(text, /why: new: no step at this place in the previous plan/);
  assert.match(text, /distinct steps: \d+ reused, \d+ to run\n$/);
});

test('rise fork and rise extend --dry-run: the table from the store, bad settings named, exit 2', async (t) => {
  const home = tempHome(t);
  const spec = tinySpec('fork-cli');
  const plan = tinyPlan(spec);
  const store = await openStore({ home });
  const run = await createRun(store, { experiment: spec.name, spec, plan, arms: spec.arms, workflowId: `rise/${spec.name}/x` });
  for (const step of Object.values(plan.steps)) {
    await startStep(store, step, run.id);
    await finishStep(store, step.key, { placeholder: true });
  }
  await setRunStatus(store, run.id, 'done');
  await store.close();
  const env = { RISE_HOME: home };

  const fork = await rise(['fork', run.id, '--set', 'task.eval=[{"name":"in-dist","count":8},{"name":"wide","count":4,"max":9}]', '--dry-run'], env);
  assert.equal(fork.code, 0, fork.stderr);
  const toRun = fork.stdout.split('\n').filter((l) => /^ {4}[0-9a-f]{12}/.test(l) && !l.endsWith('reused'));
  assert.ok(toRun.length > 0 && toRun.every((l) => /evaluate\s+wide\s+run$/.test(l)), fork.stdout);
  assert.match(fork.stdout, /9 reused, 3 to run/, 'the new set on the boosted model (shared by both arms) and on each arm\'s iteration-1 model');
  assert.doesNotMatch(fork.stdout, /started run/);

  const extend = await rise(['extend', run.id, '--iterations', '2', '--dry-run'], env);
  assert.equal(extend.code, 0, extend.stderr);
  assert.match(extend.stdout, /iteration 2\n.*rollout\s+run\n\s+why: new: no step at this place/);

  for (const [args, message] of [
    [['fork', run.id, '--set', 'relabel.sampels=3', '--dry-run'], /relabel\.sampels is not in the spec/],
    [['fork', run.id, '--set', 'relabel.samples=0', '--dry-run'], /\/relabel\/samples/],
    [['fork', run.id, '--dry-run'], /at least one --set/],
    [['fork', run.id, '--set', 'relabel.samples=3', '--from', 'iteration:1:train', '--dry-run'], /use iteration:K/],
    [['fork', run.id, '--set', 'boost.epochs=3', '--from', 'iteration:1', '--dry-run'], /boost of arm rise \(learner\) is not the run's/],
    [['extend', run.id, '--iterations', '1', '--dry-run'], /already has 1/],
    [['extend', 'no-such-run', '--iterations', '3'], /no run "no-such-run"/],
  ] as const) {
    const r = await rise([...args], env);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, message);
  }
});

test('--set seeds replicates a single run\'s arms, and a replicated spec is edited as declared', () => {
  const single = validateSpec({ iterations: 1, arms: { a: {}, b: { train: { lr: 0.002 } } } });
  const replicated = applySettings(single, [parseSetting('seeds=[1,2]')]);
  assert.deepEqual(Object.keys(replicated.arms), ['a@seed1', 'a@seed2', 'b@seed1', 'b@seed2']);
  assert.equal(replicated.arms['b@seed2'].train.lr, 0.002);
  assert.equal(replicated.arms['b@seed2'].seed, 2);
  // The replicate at seed 1 is the single run's arm.
  assert.deepEqual(replicated.arms['a@seed1'], single.arms.a);
  // Editing a replicated spec changes every replicate; budget is the experiment's, not an arm's.
  const edited = applySettings(replicated, [parseSetting('relabel.samples=4'), parseSetting('budget.tokens=1000')]);
  assert.deepEqual(Object.keys(edited.arms), Object.keys(replicated.arms));
  assert.ok(Object.values(edited.arms).every((arm) => arm.relabel.samples === 4));
  assert.equal(edited.budget.tokens, 1000);
  assert.deepEqual(applySettings(replicated, [parseSetting('seeds=[3]')]).arms['a@seed3'].seed, 3);
});
