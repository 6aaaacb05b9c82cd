/**
 * Quarantine in a step's work through the ledger (activities/episodes.ts): a checker that throws on one
 * problem (a test double around the real arithmetic task) costs that problem, recorded with its error,
 * and not the step; a checker that throws on everything still fails the step; errors about the step
 * itself are not blamed on problems. The store holds what happened.
 */

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { StepContext } from '../../activities/context.ts';
import { inLedgerBatches, type BatchWork } from '../../activities/episodes.ts';
import { QuarantineLimitError } from '../../activities/quarantine.ts';
import type { StepRun } from '../../activities/step.ts';
import { RemoteUnavailableError } from '../../src/remote/openai-policy.ts';
import { collectEpisodes } from '../../src/rise/rollout.ts';
import type { RunReport } from '../../src/report/data.ts';
import { claimStep, createRun, finishStep, openStore, quarantinedProblems, quarantineProblem, readEpisodes, recordedProblems, setRunStatus, startStep, type Store } from '../../src/store/index.ts';
import { createTask, generateArithmetic, type Problem, type Task } from '../../src/tasks/index.ts';
import { PROMPTING, relabeler, rolloutOptions, ScriptedPolicy } from '../rise/helpers.ts';
import { rise, tempHome, tinyPlan, tinySpec } from './helpers.ts';

const PROBLEMS = generateArithmetic({ seed: 1, count: 40, ops: 1, min: 1, max: 5 });
const BAD = PROBLEMS[13].id;

class CheckerError extends Error {
  override name = 'CheckerError';
}

/** The real arithmetic task, but its checker throws on the problems `fails` picks. */
function checker(fails: (problem: Problem) => boolean): Task & { tries: Map<string, number> } {
  const real = createTask('arithmetic');
  const tries = new Map<string, number>();
  return {
    ...real,
    tries,
    reward(response, problem) {
      if (!fails(problem)) return real.reward(response, problem);
      tries.set(problem.id, (tries.get(problem.id) ?? 0) + 1);
      throw new CheckerError(`cannot check ${problem.id}`);
    },
  };
}

/** A claimed step and the context its work runs in, over a fresh store; batches of 8 problems. */
async function stepRun(store: Store, name: string): Promise<{ ctx: StepContext; run: StepRun }> {
  const key = name.padEnd(64, '0');
  const lease = { owner: `test/${name}`, ms: 60_000 };
  const claim = await claimStep(store, { key, kind: 'rollout', params: {}, inputs: [] }, lease, 'run-q');
  assert.equal(claim.kind, 'claimed');
  const attempt = claim.kind === 'claimed' ? claim.attempt : assert.fail();
  const ctx = { store, ledgerBatch: 8, quarantine: { attempts: 3, maxFraction: 0.1 } } as StepContext;
  const run = { step: undefined as never, attempt, guard: { owner: lease.owner, generation: attempt.generation }, progress: () => {} } satisfies StepRun;
  return { ctx, run };
}

/** Attempt 1 of every problem from a scripted policy, scored by `task` (made when a batch needs it, as a step's policy is). */
function sampler(task: Task): () => Promise<BatchWork> {
  const policy = new ScriptedPolicy('learner', (id) => `#### ${id.problemId.length % 7}`);
  const options = { task, learner: policy, relabeler: relabeler(policy, { samples: 1 }), rollout: rolloutOptions({ turns: 1 }), prompting: PROMPTING, seed: 5 };
  return async () => async (batch: Problem[]) => (await collectEpisodes(batch, options)).episodes;
}

test('a problem whose checker throws is quarantined with its error; the rest of the step is what it would have been', async (t) => {
  const store = await openStore({ home: tempHome(t) });
  t.after(async () => store.close());
  const task = checker((p) => p.id === BAD);
  const { ctx, run } = await stepRun(store, 'aa');
  const result = await inLedgerBatches(ctx, run, 'run-q', PROBLEMS, sampler(task));
  assert.deepEqual(result, { resumed: 0, quarantined: 1 });
  const key = run.attempt.key;
  assert.deepEqual((await quarantinedProblems(store, [key])).get(key), [{ problemId: BAD, attempts: 3, errorClass: 'CheckerError', message: `cannot check ${BAD}` }]);
  const recorded = await recordedProblems(store, key);
  assert.equal(recorded.size, 39);
  assert.ok(!recorded.has(BAD));
  // Tried in its batch of 8, in the halves of 4 and 2 that held it, then 3 times alone.
  assert.equal(task.tries.get(BAD), 3 + 3);

  // The same problems through a checker that never throws: every other episode is the same.
  const healthy = await stepRun(store, 'bb');
  await inLedgerBatches(healthy.ctx, healthy.run, 'run-q', PROBLEMS.filter((p) => p.id !== BAD), sampler(createTask('arithmetic')));
  const texts = async (k: string) => (await readEpisodes(store, k)).map((e) => JSON.stringify([e.problemId, e.turns])).sort();
  assert.deepEqual(await texts(key), await texts(healthy.run.attempt.key));

  // A new attempt tries the quarantined problem again; with a checker that works now, nothing stays quarantined.
  const again = await inLedgerBatches(ctx, run, 'run-q', PROBLEMS, sampler(createTask('arithmetic')));
  assert.deepEqual(again, { resumed: 39, quarantined: 0 });
  assert.equal((await quarantinedProblems(store, [key])).size, 0);
  assert.equal((await recordedProblems(store, key)).size, 40);
});

test('a checker that throws on every problem fails the step once more than 10% are quarantined', async (t) => {
  const store = await openStore({ home: tempHome(t) });
  t.after(async () => store.close());
  const { ctx, run } = await stepRun(store, 'cc');
  await assert.rejects(
    inLedgerBatches(ctx, run, 'run-q', PROBLEMS, sampler(checker(() => true))),
    (err: Error) => err instanceof QuarantineLimitError && /^5 of 40 problems failed every try, more than the 4 \(10%\) a step may quarantine: the step is broken/.test(err.message) && /CheckerError: cannot check/.test(err.message),
  );
  // It stopped at the fifth: the rest of the step was not tried.
  assert.equal((await quarantinedProblems(store, [run.attempt.key])).get(run.attempt.key)?.length, 5);
  assert.equal((await recordedProblems(store, run.attempt.key)).size, 0);
});

test('an error about the step (the remote policy is down) fails it at once: no problem is blamed', async (t) => {
  const store = await openStore({ home: tempHome(t) });
  t.after(async () => store.close());
  const { ctx, run } = await stepRun(store, 'dd');
  let calls = 0;
  const down = async () => {
    calls++;
    throw new RemoteUnavailableError('endpoint kept failing');
  };
  await assert.rejects(inLedgerBatches(ctx, run, 'run-q', PROBLEMS, down), RemoteUnavailableError);
  assert.equal(calls, 1);
  assert.equal((await quarantinedProblems(store, [run.attempt.key])).size, 0);
});

test('rise status and rise report count the quarantined problems per step and list them', async (t) => {
  const home = tempHome(t);
  const spec = tinySpec('quarantine-report');
  const plan = tinyPlan(spec);
  const store = await openStore({ home });
  const run = await createRun(store, { experiment: spec.name, spec, plan, arms: spec.arms, workflowId: `rise/${spec.name}/q` });
  const rollout = plan.arms[0].steps.find((u) => u.kind === 'rollout')!.key;
  // Only the rollout is recorded: the reports read the outputs of done boost and train steps.
  await startStep(store, plan.steps[rollout], run.id);
  await quarantineProblem(store, rollout, { problemId: 'arith-7', attempts: 3, errorClass: 'TokenizerError', message: 'cannot encode U+1F600' }, run.id);
  await quarantineProblem(store, rollout, { problemId: 'arith-9', attempts: 3, errorClass: 'CheckerError', message: 'checker threw' }, run.id);
  await finishStep(store, rollout, { placeholder: true });
  await setRunStatus(store, run.id, 'done');
  await store.close();
  const env = { RISE_HOME: home };

  const status = await rise(['status', run.id], env);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, new RegExp(`quarantined: 2 problems in 1 step .*\\n  rise · iteration 1 · rollout ${rollout.slice(0, 12)}: 2\\n    arith-7: TokenizerError: cannot encode U\\+1F600 \\(3 tries\\)`));

  const json = await rise(['report', run.id, '--json'], env);
  const report = JSON.parse(json.stdout) as RunReport;
  assert.deepEqual(
    report.steps.filter((s) => s.quarantined.length > 0).map((s) => [s.key, s.quarantined.map((q) => q.problemId)]),
    [[rollout, ['arith-7', 'arith-9']]],
  );
  const out = join(home, 'report');
  const written = await rise(['report', run.id, '--out', out], env);
  assert.equal(written.code, 0, written.stderr);
  const markdown = readFileSync(join(out, 'report.md'), 'utf8');
  assert.match(markdown, new RegExp(`\\| ${rollout.slice(0, 12)} \\| rollout \\| 1 \\| +\\| rise, uniform \\| 2 \\|`));
  assert.match(markdown, /\| arith-9 \| CheckerError: checker threw \| 3 \|/);
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.match(html, /<h2>Quarantined problems<\/h2>/);
  assert.match(html, /TokenizerError: cannot encode U\+1F600/);
});
