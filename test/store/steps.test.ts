import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InputNotReadyError, LostStepError, claimStep, dependents, failStep, finishStep, getStep, markStale, renewLease, startStep, stepStatus } from '../../src/store/steps.ts';
import { recordEpisodes } from '../../src/store/ledger.ts';
import { eq } from 'drizzle-orm';
import { steps } from '../../src/store/schema.ts';
import { plannedStep, rowCount, simulateCrash, tempStore } from './helpers.ts';

test('a step goes missing → running → done, with its inputs, attempts, times and outputs', async (t) => {
  const store = await tempStore(t);
  assert.equal(await stepStatus(store, 'train-1'), 'pending');
  assert.equal(await getStep(store, 'train-1'), undefined);

  const before = Date.now();
  const attempt = await startStep(store, plannedStep('train-1', 'train', ['filter-1', 'boost']), 'run-1');
  assert.deepEqual(attempt, { key: 'train-1', attempt: 1, generation: 0 });
  assert.equal(await stepStatus(store, 'train-1'), 'running');
  const running = (await getStep(store, 'train-1'))!;
  assert.equal(running.kind, 'train');
  assert.deepEqual(running.params, { key: 'train-1', temperature: 1 });
  assert.deepEqual(running.inputs, ['filter-1', 'boost']);
  assert.equal(running.runId, 'run-1');
  assert.ok(running.startedAt!.getTime() >= before);
  assert.equal(running.endedAt, null);
  assert.equal('outputs' in running, false);

  const outputs = { checkpoint: { sha256: 'a'.repeat(64), kind: 'checkpoint', bytes: 10 }, loss: 0.5 };
  assert.deepEqual(await finishStep(store, 'train-1', outputs), outputs);
  const done = (await getStep(store, 'train-1'))!;
  assert.equal(done.status, 'done');
  assert.deepEqual(done.outputs, outputs);
  assert.ok(done.finishedAt instanceof Date && done.endedAt instanceof Date);
  assert.equal(done.attempts, 1);
});

test('without its result row a step is never done', async (t) => {
  const store = await tempStore(t);
  await startStep(store, plannedStep('s'));
  // The attempt's own bookkeeping says finished, but no result was written: not done.
  await store.db.update(steps).set({ state: 'finished' }).where(eq(steps.key, 's'));
  assert.equal(await stepStatus(store, 's'), 'pending');
  assert.equal((await getStep(store, 's'))!.status, 'pending');

  // A crash while writing the result (the last write) rolls the whole finish back: still running.
  await store.db.update(steps).set({ state: 'running' }).where(eq(steps.key, 's'));
  const recover = await simulateCrash(store, 'step_results');
  await assert.rejects(async () => finishStep(store, 's', { ok: true }), /simulated crash/);
  assert.equal(await stepStatus(store, 's'), 'running');
  assert.equal((await getStep(store, 's'))!.endedAt, null);
  await recover();
  await finishStep(store, 's', { ok: true });
  assert.equal(await stepStatus(store, 's'), 'done');
});

test('a failed step records its error and resumes with a new attempt', async (t) => {
  const store = await tempStore(t);
  await startStep(store, plannedStep('rollout-1'), 'run-1');
  await failStep(store, 'rollout-1', new Error('NaN loss at step 12'));
  const failed = (await getStep(store, 'rollout-1'))!;
  assert.equal(failed.status, 'failed');
  assert.equal(failed.error, 'NaN loss at step 12');
  assert.ok(failed.endedAt instanceof Date);

  assert.deepEqual(await startStep(store, plannedStep('rollout-1'), 'run-2'), { key: 'rollout-1', attempt: 2, generation: 0 });
  const retried = (await getStep(store, 'rollout-1'))!;
  assert.equal(retried.status, 'running');
  assert.equal(retried.error, null);
  assert.equal(retried.runId, 'run-2');
  await finishStep(store, 'rollout-1', ['ref']);
  assert.equal(await stepStatus(store, 'rollout-1'), 'done');
  assert.equal((await getStep(store, 'rollout-1'))!.attempts, 2);
});

test('markStale makes a done step count as not done, keeps its old result, and the re-run stores a new one', async (t) => {
  const store = await tempStore(t);
  await startStep(store, plannedStep('eval-1', 'evaluate'));
  await finishStep(store, 'eval-1', { metrics: 'old' });
  assert.deepEqual(await markStale(store, ['eval-1', 'eval-1', 'never-started']), ['eval-1']);
  const stale = (await getStep(store, 'eval-1'))!;
  assert.equal(stale.status, 'pending');
  assert.equal(stale.generation, 1);
  assert.equal(stale.outputs, undefined);
  assert.equal(await rowCount(store, 'step_results'), 1, 'the old result stays as history');

  assert.deepEqual(await startStep(store, plannedStep('eval-1', 'evaluate')), { key: 'eval-1', attempt: 2, generation: 1 });
  assert.equal(await stepStatus(store, 'eval-1'), 'running');
  await finishStep(store, 'eval-1', { metrics: 'new' });
  assert.deepEqual((await getStep(store, 'eval-1'))!.outputs, { metrics: 'new' });
  assert.equal(await rowCount(store, 'step_results'), 2);
  assert.deepEqual(await markStale(store, []), []);
});

test('when two attempts of a shared step both finish, the first result stands for both', async (t) => {
  const store = await tempStore(t);
  await startStep(store, plannedStep('boost', 'boost'), 'run-a');
  await startStep(store, plannedStep('boost', 'boost'), 'run-b');
  assert.deepEqual(await finishStep(store, 'boost', { model: 'first' }), { model: 'first' });
  assert.deepEqual(await finishStep(store, 'boost', { model: 'second' }), { model: 'first' });
  assert.deepEqual((await getStep(store, 'boost'))!.outputs, { model: 'first' });
  // A late failure of the other attempt does not undo the result.
  await failStep(store, 'boost', 'worker lost');
  assert.equal(await stepStatus(store, 'boost'), 'done');
});

test('misuse fails loudly', async (t) => {
  const store = await tempStore(t);
  await assert.rejects(async () => finishStep(store, 'nope', {}), /never started/);
  await assert.rejects(async () => failStep(store, 'nope', 'x'), /never started/);
  await startStep(store, plannedStep('k', 'rollout'));
  await assert.rejects(async () => startStep(store, plannedStep('k', 'train')), /share one key/);
});

test('dependents walks the lineage downstream', async (t) => {
  const store = await tempStore(t);
  // boost → rollout-1 → filter-1 → train-1 → eval-1;  boost → eval-0
  const edges: [string, string[]][] = [
    ['boost', []],
    ['rollout-1', ['boost']],
    ['filter-1', ['rollout-1']],
    ['train-1', ['filter-1', 'boost']],
    ['eval-1', ['train-1']],
    ['eval-0', ['boost']],
  ];
  for (const [key, inputs] of edges) await startStep(store, plannedStep(key, 'kind', inputs));
  assert.deepEqual((await dependents(store, ['boost'])).sort(), ['eval-0', 'eval-1', 'filter-1', 'rollout-1', 'train-1']);
  assert.deepEqual((await dependents(store, ['filter-1'])).sort(), ['eval-1', 'train-1']);
  assert.deepEqual((await dependents(store, ['rollout-1', 'train-1'])).sort(), ['eval-1', 'filter-1']);
  assert.deepEqual(await dependents(store, ['eval-1']), []);
  assert.deepEqual(await dependents(store, []), []);
});

test('a shared step is claimed once: others wait while the lease holds, take over when it lapses, and get the result', async (t) => {
  const store = await tempStore(t);
  const step = plannedStep('boost', 'boost', []);
  const a = { owner: 'arm-a', ms: 60_000 };
  const b = { owner: 'arm-b', ms: 60_000 };
  const first = await claimStep(store, step, a, 'run-1');
  assert.equal(first.kind, 'claimed');
  const waiting = await claimStep(store, step, b, 'run-1');
  assert.equal(waiting.kind, 'busy');
  assert.equal(waiting.kind === 'busy' && waiting.owner, 'arm-a');
  // The holder may claim again (its own retry) and renew.
  assert.equal((await claimStep(store, step, a)).kind, 'claimed');
  assert.equal(await renewLease(store, 'boost', a), true);
  assert.equal(await renewLease(store, 'boost', b), false);

  // A lease that lapses (its worker died) is taken over.
  assert.equal(await renewLease(store, 'boost', { owner: 'arm-a', ms: -1 }), true);
  const takeover = await claimStep(store, step, b);
  assert.equal(takeover.kind, 'claimed');
  assert.equal(await renewLease(store, 'boost', a), false, 'the old holder has lost the step');

  await finishStep(store, 'boost', { model: 'm' });
  assert.deepEqual(await claimStep(store, step, a), { kind: 'done', outputs: { model: 'm' } });
  assert.equal((await getStep(store, 'boost'))!.attempts, 3);
});

test('only the attempt that owns a step writes it: a superseded or replayed attempt is refused', async (t) => {
  const store = await tempStore(t);
  const step = plannedStep('rollout', 'rollout', []);
  const first = { owner: 'wf/run/3#1', ms: 60_000, family: 'wf/run/3#' };
  const claimed = await claimStep(store, step, first);
  assert.equal(claimed.kind, 'claimed');
  const guard1 = { owner: first.owner, generation: 0 };
  await recordEpisodes(store, 'rollout', [{ problemId: 'p0', turns: [] }], undefined, guard1);

  // Temporal retried the activity (attempt 2): it takes the step over at once, though attempt 1's lease holds.
  const second = { owner: 'wf/run/3#2', ms: 60_000, family: 'wf/run/3#' };
  assert.equal((await claimStep(store, step, second)).kind, 'claimed');
  await assert.rejects(async () => recordEpisodes(store, 'rollout', [{ problemId: 'p1', turns: [] }], undefined, guard1), LostStepError);
  await assert.rejects(async () => finishStep(store, 'rollout', { n: 1 }, guard1), LostStepError);
  await failStep(store, 'rollout', new Error('zombie'), guard1);
  assert.equal((await getStep(store, 'rollout'))!.status, 'running', "the zombie's failure does not touch the new attempt");
  // Another activity (another arm) still waits for it.
  assert.equal((await claimStep(store, step, { owner: 'wf/run/9#1', ms: 60_000, family: 'wf/run/9#' })).kind, 'busy');

  // Replay marks the step stale while attempt 2 runs: its remaining writes are refused too.
  const guard2 = { owner: second.owner, generation: 0 };
  await markStale(store, ['rollout']);
  await assert.rejects(async () => recordEpisodes(store, 'rollout', [{ problemId: 'p2', turns: [] }], undefined, guard2), LostStepError);
  await assert.rejects(async () => finishStep(store, 'rollout', { n: 2 }, guard2), LostStepError);
});

test('a step whose input has no result cannot be claimed', async (t) => {
  const store = await tempStore(t);
  const lease = { owner: 'a', ms: 60_000 };
  await assert.rejects(async () => claimStep(store, plannedStep('train', 'train', ['filter']), lease), InputNotReadyError);
  await claimStep(store, plannedStep('filter', 'filter', []), lease);
  await finishStep(store, 'filter', {});
  assert.equal((await claimStep(store, plannedStep('train', 'train', ['filter']), lease)).kind, 'claimed');
  await markStale(store, ['filter']);
  await assert.rejects(async () => claimStep(store, plannedStep('train2', 'train', ['filter']), lease), /input step\(s\) filter/);
});
