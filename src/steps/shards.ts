/**
 * Sharded steps: a step that samples problem by problem (rollout, relabel, evaluate) can run as ranges of
 * its problem list, each an activity of its own on whichever worker takes it, all recording into the
 * step's one ledger. Sharding changes how a step is computed, never what: it enters no key and no seed
 * (every sample's random stream is named by its problem and request, see src/rise/rollout.ts), so a
 * sharded step records exactly what the unsharded one does. The unsharded step is the one-shard case.
 *
 * Pure: workflow code imports this file.
 */

import type { StepKind } from './kinds.ts';

/** The kinds whose problems can be split into shards; every other step runs as one activity. */
export const SHARDED_KINDS = ['rollout', 'relabel', 'evaluate'] as const satisfies readonly StepKind[];
export type ShardedKind = (typeof SHARDED_KINDS)[number];

export function isShardedKind(kind: StepKind): kind is ShardedKind {
  return (SHARDED_KINDS as readonly StepKind[]).includes(kind);
}

/** Problems `[start, end)` of the list a step works on; `shard` is its place among the step's shards. */
export interface ShardRange {
  shard: number;
  start: number;
  end: number;
}

/**
 * The shards of a step over `total` problems, `size` problems each (the last one shorter); null: one
 * shard over everything. No problems, no shards.
 */
export function shardRanges(total: number, size: number | null): ShardRange[] {
  if (!Number.isInteger(total) || total < 0) throw new RangeError(`shardRanges: total must be a non-negative integer, got ${total}`);
  if (size !== null && (!Number.isInteger(size) || size < 1)) throw new RangeError(`shardRanges: size must be a positive integer or null, got ${size}`);
  const step = size ?? Math.max(total, 1);
  const ranges: ShardRange[] = [];
  for (let start = 0; start < total; start += step) ranges.push({ shard: ranges.length, start, end: Math.min(start + step, total) });
  return ranges;
}

/** A shard as people read it: `2 [64, 96)`. */
export function shardLabel(range: ShardRange): string {
  return `${range.shard} [${range.start}, ${range.end})`;
}
