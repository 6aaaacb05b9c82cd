import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isShardedKind, shardLabel, shardRanges } from '../../src/steps/shards.ts';
import { STEP_KINDS } from '../../src/steps/kinds.ts';

test('shard ranges cover every problem once, in order, the last one shorter', () => {
  assert.deepEqual(shardRanges(10, 4), [
    { shard: 0, start: 0, end: 4 },
    { shard: 1, start: 4, end: 8 },
    { shard: 2, start: 8, end: 10 },
  ]);
  assert.deepEqual(shardRanges(8, 4).map((r) => [r.start, r.end]), [
    [0, 4],
    [4, 8],
  ]);
  for (const [total, size] of [[1, 1], [7, 3], [100, 7], [64, 64], [5, 100]] as const) {
    const ranges = shardRanges(total, size);
    const covered = ranges.flatMap((r) => Array.from({ length: r.end - r.start }, (_, i) => r.start + i));
    assert.deepEqual(covered, Array.from({ length: total }, (_, i) => i), `${total} problems in shards of ${size}`);
    assert.ok(ranges.every((r, i) => r.shard === i && r.end - r.start <= size && r.end > r.start));
    assert.equal(ranges.length, Math.ceil(total / size));
  }
});

test('no size is one shard over everything; no problems is no shards', () => {
  assert.deepEqual(shardRanges(24, null), [{ shard: 0, start: 0, end: 24 }]);
  assert.deepEqual(shardRanges(0, null), []);
  assert.deepEqual(shardRanges(0, 8), []);
});

test('a size or total that is not a whole number is refused, naming it', () => {
  assert.throws(() => shardRanges(10, 0), /size must be a positive integer or null, got 0/);
  assert.throws(() => shardRanges(10, 2.5), /size must be a positive integer/);
  assert.throws(() => shardRanges(-1, 2), /total must be a non-negative integer, got -1/);
});

test('rollout, relabel and evaluate shard; boost, filter and train run as one activity', () => {
  assert.deepEqual(STEP_KINDS.filter(isShardedKind), ['rollout', 'relabel', 'evaluate']);
  assert.equal(shardLabel({ shard: 2, start: 64, end: 96 }), '2 [64, 96)');
});
