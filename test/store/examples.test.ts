import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readExamples, recordExamples, type ExampleRecord } from '../../src/store/examples.ts';
import { finishStep, markStale, startStep } from '../../src/store/steps.ts';
import { exampleCounts, plannedStep, started, tempStore } from './helpers.ts';

const batch: ExampleRecord[] = [
  { problemId: 'p1', turn: 1, reward: 0, weight: 1, tokens: 12, origin: 'iter-1' },
  { problemId: 'p1', turn: 2, reward: 1, weight: Math.exp(1 / 0.4), tokens: 9, origin: 'iter-1' },
  { problemId: 'p2', turn: 1, reward: -1, origin: 'iter-1', dropRule: 'empty' },
  { problemId: 'p2', turn: 2, reward: 0, origin: 'iter-1', dropRule: 'repeatedAttempt' },
  { problemId: 'p1', turn: 2, reward: 1, origin: 'iter-2', dropRule: 'duplicateExample' },
  { problemId: 'p3', turn: 1, reward: 0, dropRule: 'criteria' },
];

test('kept and dropped examples are recorded with their drop rule', (t) => {
  const store = tempStore(t);
  const key = started(store, 'filter-1', 'filter');
  assert.equal(recordExamples(store, key, batch), 6);
  const back = readExamples(store, key);
  assert.deepEqual(
    back.map((e) => [e.origin, e.problemId, e.turn, e.dropped, e.dropRule]),
    [
      ['iter-1', 'p1', 1, false, null],
      ['iter-1', 'p1', 2, false, null],
      ['iter-1', 'p2', 1, true, 'empty'],
      ['iter-1', 'p2', 2, true, 'repeatedAttempt'],
      ['iter-2', 'p1', 2, true, 'duplicateExample'],
      ['', 'p3', 1, true, 'criteria'],
    ],
  );
  assert.equal(back[1].weight, Math.exp(1 / 0.4));
  assert.equal(back[2].weight, null);
  assert.deepEqual(exampleCounts(store, key), { kept: 2, dropped: { empty: 1, repeatedAttempt: 1, duplicateExample: 1, criteria: 1 } });
});

test('recording examples again adds nothing; a replayed step starts a fresh set', (t) => {
  const store = tempStore(t);
  const key = started(store, 'filter-1', 'filter');
  recordExamples(store, key, batch);
  assert.equal(recordExamples(store, key, batch), 0);
  assert.equal(readExamples(store, key).length, 6);

  finishStep(store, key, {});
  markStale(store, [key]);
  startStep(store, plannedStep(key, 'filter'));
  assert.deepEqual(readExamples(store, key), []);
  assert.equal(recordExamples(store, key, batch.slice(0, 2)), 2);
  assert.deepEqual(exampleCounts(store, key), { kept: 2, dropped: {} });
});

test('the dropped flag and the drop rule cannot disagree', (t) => {
  const store = tempStore(t);
  const key = started(store, 'filter-1', 'filter');
  const insert = store.sqlite.prepare(
    `INSERT INTO examples (step_key, generation, problem_id, turn, reward, dropped, drop_rule) VALUES (?, 0, ?, 1, 0, ?, ?)`,
  );
  assert.throws(() => insert.run(key, 'a', 1, null), /CHECK constraint/);
  assert.throws(() => insert.run(key, 'b', 0, 'criteria'), /CHECK constraint/);
});
