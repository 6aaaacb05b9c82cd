import assert from 'node:assert/strict';
import test from 'node:test';
import { budgetReached, hasLimit, usageText } from '../../src/plan/budget.ts';
import { stopDecision, type StopRule } from '../../src/plan/stopping.ts';

const rule = (minGain: number, patience: number): StopRule => ({ metric: 'm1@t5', evalSet: 'in-dist', minGain, patience });

test('an arm stops after patience iterations without beating its best by minGain points', () => {
  // 40 → 45 (+5) → 45.5 (+0.5 < 1) → stop at 2 with patience 1.
  const stop = stopDecision([0.4, 0.45, 0.455], rule(1, 1));
  assert.equal(stop?.iteration, 2);
  assert.match(stop!.reason, /^m1@t5 on in-dist gained less than 1 point over its best \(45\.0 % at iteration 1\) for iteration: 45\.5 % at iteration 2$/);
  // Patience 2 waits for a second stalled iteration.
  assert.equal(stopDecision([0.4, 0.45, 0.455], rule(1, 2)), null);
  assert.equal(stopDecision([0.4, 0.45, 0.455, 0.44], rule(1, 2))?.iteration, 3);
});

test('a gain resets the count, and the best so far is the bar, not the last value', () => {
  // 40, 38 (stall 1), 42 (+2 over 40: a gain), 42.5 (stall 1), 43.5 (+1.5 over 42: a gain).
  assert.equal(stopDecision([0.4, 0.38, 0.42, 0.425, 0.435], rule(1, 2)), null);
  // A dip and a recovery to just under best + minGain is no gain.
  assert.equal(stopDecision([0.4, 0.3, 0.409], rule(1, 2))?.iteration, 2);
});

test('a gain of exactly minGain counts, despite fractions that do not add up exactly in binary', () => {
  assert.equal(stopDecision([0.41, 0.42], rule(1, 1)), null);
  assert.equal(stopDecision([0.1, 0.2, 0.3], rule(10, 1)), null);
});

test('missing values decide nothing', () => {
  assert.equal(stopDecision([], rule(1, 1)), null);
  assert.equal(stopDecision([0.4, undefined, 0.4], rule(1, 1)), null);
  assert.equal(stopDecision([0.4], rule(1, 1)), null);
});

test('a budget is reached at its limit, by tokens or by compute hours', () => {
  assert.equal(hasLimit({ hours: null, tokens: null }), false);
  assert.equal(hasLimit(undefined), false);
  assert.equal(hasLimit({ hours: null, tokens: 10 }), true);
  assert.equal(budgetReached({ seconds: 10, tokens: 9 }, { hours: null, tokens: 10 }), null);
  assert.equal(budgetReached({ seconds: 10, tokens: 10 }, { hours: null, tokens: 10 }), 'budget reached: 10 tokens of 10');
  assert.equal(budgetReached({ seconds: 3600, tokens: 0 }, { hours: 1, tokens: 10 }), 'budget reached: 1.000 compute hours of 1');
  assert.equal(usageText({ seconds: 1800, tokens: 5 }, { hours: 1, tokens: null }), '5 tokens, 0.500 compute hours of 1');
});
