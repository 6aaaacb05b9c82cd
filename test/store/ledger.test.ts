import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Episode } from '../../src/rise/episode.ts';
import { readEpisodes, recordedProblems, recordEpisodes, type LedgerEpisode } from '../../src/store/ledger.ts';
import { finishStep, markStale, startStep } from '../../src/store/steps.ts';
import { plannedStep, recordedSamples, rowCount, sampleKey, simulateCrash, started, tempStore } from './helpers.ts';

/** An episode as the algorithm produces it: a wrong on-policy attempt, then 3 relabel candidates. */
function episode(problemId: string): Episode {
  const sample = (candidate: number, text: string, reward: number) => ({
    requestId: `${problemId}|t${candidate === 0 ? 1 : 2}|c${candidate}|r0`,
    source: 'learner',
    candidate,
    resample: 0,
    text,
    answer: reward === 1 ? '42' : text.includes('?') ? null : '41',
    reward,
    tokens: text.length + 1,
    logprob: -0.5 * text.length,
    finishReason: 'stop' as const,
    degenerate: null,
  });
  return {
    problemId,
    prompt: `What is 6*7? (${problemId})`,
    turns: [
      { turn: 1, kind: 'onPolicy', samples: [sample(0, 'It is 41', 0)], chosen: 0 },
      { turn: 2, kind: 'relabel', samples: [sample(0, 'Still 41', 0), sample(1, '??', -1), sample(2, 'It is 42', 1)], chosen: 2 },
    ],
  };
}

test('episodes from the algorithm round-trip through the ledger', async (t) => {
  const store = await tempStore(t);
  const key = await started(store);
  const batch = [episode('p1'), episode('p2')];
  assert.equal(await recordEpisodes(store, key, batch, 'run-1'), 8);
  assert.deepEqual(await readEpisodes(store, key), batch as LedgerEpisode[]);
  assert.equal(await rowCount(store, 'episodes'), 2);
  assert.equal(await rowCount(store, 'turns'), 4);
  assert.equal(await rowCount(store, 'samples'), 8);
});

test('recording the same batch again adds nothing', async (t) => {
  const store = await tempStore(t);
  const key = await started(store);
  const batch = [episode('p1'), episode('p2'), episode('p3')];
  assert.equal(await recordEpisodes(store, key, batch), 12);
  assert.equal(await recordEpisodes(store, key, batch), 0);
  assert.equal(await recordEpisodes(store, key, [episode('p2'), episode('p4')]), 4);
  assert.deepEqual(
    (await readEpisodes(store, key)).map((e) => e.problemId),
    ['p1', 'p2', 'p3', 'p4'],
  );
  assert.deepEqual([await rowCount(store, 'episodes'), await rowCount(store, 'turns'), await rowCount(store, 'samples')], [4, 8, 16]);
});

test('a retried step skips what an earlier attempt recorded', async (t) => {
  const store = await tempStore(t);
  const step = plannedStep('rollout-1', 'rollout', ['boost']);
  const problems = Array.from({ length: 10 }, (_, i) => `p${i}`);

  // Attempt 1 records problems in batches of 3 and dies in the third batch.
  await startStep(store, step, 'run-1');
  await recordEpisodes(store, step.key, problems.slice(0, 3).map(episode));
  await recordEpisodes(store, step.key, problems.slice(3, 6).map(episode));

  // Attempt 2 asks what is recorded and does the rest only.
  await startStep(store, step, 'run-1');
  const done = await recordedProblems(store, step.key);
  const todo = problems.filter((p) => !done.has(p));
  assert.deepEqual(todo, ['p6', 'p7', 'p8', 'p9']);
  await recordEpisodes(store, step.key, todo.map(episode));
  assert.deepEqual(new Set((await readEpisodes(store, step.key)).map((e) => e.problemId)), new Set(problems));
  assert.equal(await rowCount(store, 'samples'), 40);
});

test('episodes can be recorded turn by turn', async (t) => {
  const store = await tempStore(t);
  const key = await started(store);
  const full = episode('p1');
  const firstTurn = { ...full, turns: full.turns.slice(0, 1) };
  assert.equal(await recordEpisodes(store, key, [firstTurn]), 1);
  assert.deepEqual(await recordedSamples(store, key), new Set([sampleKey('p1', 1, 0)]));
  assert.equal(await recordEpisodes(store, key, [full]), 3);
  assert.deepEqual(
    await recordedSamples(store, key),
    new Set([sampleKey('p1', 1, 0), sampleKey('p1', 2, 0), sampleKey('p1', 2, 1), sampleKey('p1', 2, 2)]),
  );
  assert.deepEqual(await readEpisodes(store, key), [full] as LedgerEpisode[]);
});

test('evaluation traces fit the same ledger: k parallel samples at turn 1, one per later turn', async (t) => {
  const store = await tempStore(t);
  const key = await started(store, 'eval-1', 'evaluate');
  const s = (text: string, reward: number) => ({ text, answer: text, reward, tokens: 3, logprob: -1 });
  const trace: LedgerEpisode = {
    problemId: 'q1',
    turns: [
      { turn: 1, kind: 'parallel', chosen: 0, samples: [s('1', 0), s('2', 1), s('3', 0)] },
      { turn: 2, kind: 'sequential', chosen: 0, samples: [s('2', 1)] },
    ],
  };
  await recordEpisodes(store, key, [trace]);
  const [back] = await readEpisodes(store, key);
  assert.deepEqual(back.turns.map((t) => t.samples.map((x) => x.answer)), [['1', '2', '3'], ['2']]);
  assert.equal(back.prompt, null);
  assert.equal(back.turns[0].samples[0].requestId, null);
});

test('large batches are split under SQLite’s parameter limit and stay one transaction', async (t) => {
  const store = await tempStore(t);
  const key = await started(store);
  const batch = Array.from({ length: 2500 }, (_, i) => episode(`p${i}`));
  assert.equal(await recordEpisodes(store, key, batch), 10_000);
  assert.equal((await recordedProblems(store, key)).size, 2500);

  // A failure in the middle of a batch leaves none of it.
  await simulateCrash(store, 'samples', 'NEW.episode_id > 2600');
  await assert.rejects(async () => recordEpisodes(store, key, Array.from({ length: 200 }, (_, i) => episode(`q${i}`))), /simulated crash/);
  assert.equal(await rowCount(store, 'episodes'), 2500);
  assert.equal(await rowCount(store, 'samples'), 10_000);
});

test('after replay marks the step stale, its ledger is history and the recomputation starts empty', async (t) => {
  const store = await tempStore(t);
  const key = await started(store);
  await recordEpisodes(store, key, [episode('p1'), episode('p2')]);
  await finishStep(store, key, {});
  await markStale(store, [key]);
  await startStep(store, plannedStep(key));
  assert.equal((await recordedProblems(store, key)).size, 0);
  assert.deepEqual(await readEpisodes(store, key), []);
  assert.equal(await recordEpisodes(store, key, [episode('p1')]), 4, 'the same problem is recorded anew');
  assert.equal(await rowCount(store, 'samples'), 12);
});

test('the ledger belongs to a started step', async (t) => {
  const store = await tempStore(t);
  await assert.rejects(async () => recordEpisodes(store, 'unknown', [episode('p1')]), /never started/);
  await assert.rejects(async () => recordedProblems(store, 'unknown'), /never started/);
});

test('episodes read back in the order of their positions in the step, whatever order they were recorded in; unpositioned (older) rows first', async (t) => {
  const store = await tempStore(t);
  const key = await started(store);
  const ep = (problemId: string, position?: number) => ({ problemId, ...(position !== undefined ? { position } : {}), turns: [{ turn: 1, kind: 'policy', chosen: 0, samples: [{ text: problemId, answer: null, reward: 0, tokens: 1, logprob: 0 }] }] });
  await recordEpisodes(store, key, [ep('old-b'), ep('old-a')]);
  // Two shards, the later one first.
  await recordEpisodes(store, key, [ep('p10', 10), ep('p11', 11)]);
  await recordEpisodes(store, key, [ep('p2', 2), ep('p3', 3)]);
  assert.deepEqual((await readEpisodes(store, key)).map((e) => e.problemId), ['old-b', 'old-a', 'p2', 'p3', 'p10', 'p11']);
});
