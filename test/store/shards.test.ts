import assert from 'node:assert/strict';
import { test } from 'node:test';
import { recordEpisodes, recordedProblems } from '../../src/store/ledger.ts';
import { claimShard, failShard, openShardedStep, recordShard, renewShardLease, shardTotals, stepShardsOf } from '../../src/store/shards.ts';
import { InputNotReadyError, LostStepError, claimStep, finishStep, getStep, markStale, type Lease } from '../../src/store/steps.ts';
import { plannedStep, tempStore } from './helpers.ts';

const lease = (owner: string, ms = 60_000, family?: string): Lease => ({ owner, ms, ...(family ? { family } : {}) });
const episode = (problemId: string) => ({ problemId, turns: [{ turn: 1, kind: 'policy', chosen: 0, samples: [{ text: problemId, answer: null, reward: 0, tokens: 1, logprob: -1 }] }] });
const FIRST = { shard: 0, start: 0, end: 4 };

test('shards of an opened step are claimed once, record under their own guard, and say which worker ran them', async (t) => {
  const store = await tempStore(t);
  assert.equal(await openShardedStep(store, plannedStep('s'), 'run-1'), 'open');
  assert.equal((await getStep(store, 's'))!.status, 'running');

  const a = await claimShard(store, 's', FIRST, lease('a#1'), 'worker-a', 'run-1');
  assert.equal(a.kind, 'claimed');
  const guard = a.kind === 'claimed' ? a.guard : assert.fail();
  assert.deepEqual(guard, { owner: 'a#1', generation: 0, shard: { start: 0, end: 4 } });
  // Another owner (another arm's shard of the same step) waits while the lease holds.
  const b = await claimShard(store, 's', FIRST, lease('b#1'), 'worker-b');
  assert.equal(b.kind, 'busy');
  assert.equal(b.kind === 'busy' && b.worker, 'worker-a');
  // Other ranges are free.
  assert.equal((await claimShard(store, 's', { shard: 1, start: 4, end: 8 }, lease('b#1'), 'worker-b')).kind, 'claimed');

  await recordEpisodes(store, 's', [episode('p0'), episode('p1')], 'run-1', guard);
  assert.equal(await renewShardLease(store, 's', guard, 60_000), true);
  await recordShard(store, 's', guard, { resumed: 0, recorded: 2 });
  assert.equal((await claimShard(store, 's', FIRST, lease('c#1'), 'worker-c')).kind, 'recorded');
  // A recorded shard's guard no longer writes.
  await assert.rejects(async () => recordEpisodes(store, 's', [episode('p2')], 'run-1', guard), LostStepError);

  assert.deepEqual((await shardTotals(store, 's')).recorded, 2);
  assert.ok((await shardTotals(store, 's')).seconds >= 0);
  const shards = await stepShardsOf(store, 's');
  assert.deepEqual(
    shards.map((s) => [s.shard, s.start, s.end, s.state, s.worker, s.attempts, s.recorded]),
    [
      [0, 0, 4, 'recorded', 'worker-a', 1, 2],
      [1, 4, 8, 'running', 'worker-b', 1, null],
    ],
  );
  // The step is done only once its own attempt writes the result; then every shard claim says so.
  const claim = await claimStep(store, plannedStep('s'), lease('assemble#1'));
  assert.equal(claim.kind, 'claimed');
  await finishStep(store, 's', { ok: true }, { owner: 'assemble#1', generation: 0 });
  assert.equal((await claimShard(store, 's', { shard: 1, start: 4, end: 8 }, lease('d#1'), 'worker-d')).kind, 'done');
  assert.equal(await openShardedStep(store, plannedStep('s')), 'done');
});

test('a lapsed shard is taken over on another worker, which resumes from the ledger; the dead attempt can no longer write', async (t) => {
  const store = await tempStore(t);
  await openShardedStep(store, plannedStep('s'));
  const dead = await claimShard(store, 's', FIRST, lease('a#1', -1), 'worker-a');
  const deadGuard = dead.kind === 'claimed' ? dead.guard : assert.fail();
  await recordEpisodes(store, 's', [episode('p0')], undefined, deadGuard);

  const taken = await claimShard(store, 's', FIRST, lease('b#1'), 'worker-b');
  assert.equal(taken.kind, 'claimed');
  assert.equal(taken.kind === 'claimed' && taken.attempt, 2);
  assert.deepEqual([...await recordedProblems(store, 's')], ['p0'], 'what the dead attempt recorded is there to resume from');
  await assert.rejects(async () => recordEpisodes(store, 's', [episode('p1')], undefined, deadGuard), LostStepError);
  assert.equal(await renewShardLease(store, 's', deadGuard, 60_000), false);
  await failShard(store, 's', deadGuard, new Error('late')); // ignored: the shard is no longer its
  const [row] = await stepShardsOf(store, 's');
  assert.deepEqual([row.state, row.worker, row.attempts, row.error], ['running', 'worker-b', 2, null]);
});

test('a retry of the same activity takes its shard over at once; a failure is recorded and the shard claimed again', async (t) => {
  const store = await tempStore(t);
  await openShardedStep(store, plannedStep('s'));
  const family = 'wf/run/7#';
  const first = await claimShard(store, 's', FIRST, lease(`${family}1`, 60_000, family), 'worker-a');
  const retry = await claimShard(store, 's', FIRST, lease(`${family}2`, 60_000, family), 'worker-b');
  assert.equal(retry.kind, 'claimed');
  await failShard(store, 's', retry.kind === 'claimed' ? retry.guard : assert.fail(), new Error('out of memory'));
  assert.deepEqual((await stepShardsOf(store, 's')).map((s) => [s.state, s.error]), [['failed', 'out of memory']]);
  assert.equal(first.kind, 'claimed');
  assert.equal((await claimShard(store, 's', FIRST, lease('other#1'), 'worker-c')).kind, 'claimed');
});

test('replay makes a step\'s shards history: a new generation starts without them, and old guards are refused', async (t) => {
  const store = await tempStore(t);
  await openShardedStep(store, plannedStep('s'));
  const old = await claimShard(store, 's', FIRST, lease('a#1'), 'worker-a');
  await markStale(store, ['s']);
  assert.deepEqual(await stepShardsOf(store, 's'), []);
  await assert.rejects(async () => recordEpisodes(store, 's', [episode('p0')], undefined, old.kind === 'claimed' ? old.guard : assert.fail()), LostStepError);
  await openShardedStep(store, plannedStep('s'));
  const fresh = await claimShard(store, 's', FIRST, lease('a#2'), 'worker-a');
  assert.equal(fresh.kind === 'claimed' && fresh.guard.generation, 1);
});

test('a step opens for shards only once its inputs are done; opening a running step keeps its lease', async (t) => {
  const store = await tempStore(t);
  await assert.rejects(openShardedStep(store, plannedStep('s', 'relabel', ['r'])), InputNotReadyError);
  await assert.rejects(claimShard(store, 'never', FIRST, lease('a#1'), 'w'), /never opened/);
  const claim = await claimStep(store, plannedStep('t'), lease('holder#1'));
  assert.equal(claim.kind, 'claimed');
  assert.equal(await openShardedStep(store, plannedStep('t')), 'open');
  const attempt = (await getStep(store, 't'))!.attempts;
  assert.equal(attempt, 1, 'no new attempt over a running one');
  await finishStep(store, 't', {}, { owner: 'holder#1', generation: 0 }); // its lease still holds
});
