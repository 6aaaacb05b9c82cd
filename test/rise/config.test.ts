import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_RISE_CONFIG, mergeConfig, resolveRiseConfig } from '../../src/rise/index.ts';

test('defaults follow RISE.md and DESIGN.md §9', () => {
  const c = resolveRiseConfig();
  assert.equal(c.feedback, 'The answer is incorrect. Please try again.');
  assert.deepEqual(c.rollout, { turns: 2, temperature: 1, topP: 1, maxTokens: 64, stopOnSuccess: true, contextWindow: null, degenerate: { maxWordRepeats: 150, maxTokenChars: 300, maxResamples: 4 } });
  assert.deepEqual(c.relabel, { strategy: 'self', samples: 16 });
  assert.deepEqual(c.filter, { criteria: 'all', onlySuccessTrajectories: false, removeDuplicates: true, removeEmpty: true });
  assert.deepEqual(c.train, { weighting: 'rwr', tau: 0.4, format: 'multiTurn', initFrom: 'base', aggregate: true, normalize: 'example', epochs: 2, lr: 1e-3, batchSize: 32 });
  assert.deepEqual(c.evaluate, { turns: 5, parallelK: 5, contextWindow: 1, tieBreak: 'latest', temperature: 1, topP: 1, maxTokens: 64 });
  assert.deepEqual(c.boost, { epochs: 3, lr: 3e-3, batchSize: 64, pack: 1 });
  assert.equal(c.iterations, 2);
  assert.equal(c.unparsableReward, 0);
  assert.equal(c.instruction, null);
});

test('overrides merge object by object, as arms do, without touching the defaults', () => {
  const c = resolveRiseConfig({ filter: { criteria: 'success' }, evaluate: { contextWindow: null }, rollout: { degenerate: { maxResamples: 0 } } });
  assert.equal(c.filter.criteria, 'success');
  assert.equal(c.filter.removeDuplicates, true);
  assert.equal(c.evaluate.contextWindow, null);
  assert.equal(c.rollout.degenerate.maxResamples, 0);
  assert.equal(c.rollout.degenerate.maxWordRepeats, 150);
  assert.equal(DEFAULT_RISE_CONFIG.filter.criteria, 'all');
  assert.deepEqual(mergeConfig({ a: { b: 1, c: 2 } }, { a: { c: 3 } }), { a: { b: 1, c: 3 } });
});

test('bad knobs fail with the field named', () => {
  assert.throws(() => resolveRiseConfig({ train: { tau: 0 } }), /"train\.tau" must be a positive number/);
  assert.throws(() => resolveRiseConfig({ evaluate: { tieBreak: 'coin' as 'latest' } }), /"evaluate\.tieBreak" must be one of "latest", "earliest", "random"/);
  assert.throws(() => resolveRiseConfig({ rollout: { turns: 0 } }), /"rollout\.turns" must be a positive integer/);
  assert.throws(() => resolveRiseConfig({ evaluate: { contextWindow: -1 } }), /"evaluate\.contextWindow"/);
  assert.throws(() => resolveRiseConfig({ relabel: { strategy: 'oracle' as 'self' } }), /"relabel\.strategy"/);
  assert.throws(() => resolveRiseConfig({ filter: { criterion: 'all' } } as never), /unknown key "filter\.criterion"/);
});
