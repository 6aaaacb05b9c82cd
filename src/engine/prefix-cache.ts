/**
 * Sequences whose keys and values a decode session has computed, kept for the calls after: the next turn
 * of a RISE episode is the last turn's prompt, its response and the feedback, and a server's client sends
 * the whole chat again with every message. A prompt is matched against the kept sequences by its longest
 * common prefix, and only what follows that prefix is prefilled.
 *
 * The weights of a decode session never change, so a kept sequence never goes stale while the session
 * lives: its keys and values are what a prefill of it computes, up to the rounding of the run's shape (as
 * when prompts are prefilled together). The cache is bounded in bytes; the least recently used go first.
 * No entry is a prefix of another: a longer sequence that extends a kept one replaces it, since any prompt
 * that matched the shorter matches the longer at least as far.
 *
 * Sequences are kept in a scope and matched only within it. What a prompt finds decides the shapes of its
 * prefill, and so the last bits of what follows; a caller that must compute the same bits whatever the
 * process ran before (a RISE collection, which a sharded or resumed step must repeat exactly) names a
 * scope of its own.
 */
import type { Env } from '../util/env.ts';
import { joinSpans, type KvRows, type KvSpan } from './kv-cache.ts';

/**
 * Matching granularity: sequences are indexed at every BLOCK tokens, so a prompt that shares less than a block
 * with a kept sequence is prefilled whole — for so little, copying the cache would cost about what it saves.
 */
export const BLOCK = 32;

/**
 * The bytes each decode session may keep: `RISE_PREFIX_CACHE_MB` megabytes, 1024 by default (about 22,000
 * positions of SmolLM2-135M); 0 turns the cache off.
 */
export function prefixCacheBudget(env: Env = process.env): number {
  const text = env.RISE_PREFIX_CACHE_MB;
  if (text === undefined || text === '') return 1024 * 2 ** 20;
  const mb = Number(text);
  if (!Number.isInteger(mb) || mb < 0) throw new Error(`RISE_PREFIX_CACHE_MB="${text}": give the prefix cache's size in megabytes, a whole number (0 turns it off)`);
  return mb * 2 ** 20;
}

interface Entry {
  scope: string;
  tokens: Int32Array;
  kv: KvRows;
  bytes: number;
  /** The index keys of its full blocks. */
  blocks: string[];
}

/** A kept sequence's first `length` positions, shared with a prompt. */
export interface PrefixMatch {
  span: KvSpan;
  length: number;
}

/**
 * Keys of each run of whole blocks from the start (block j's key names the scope and tokens
 * [0, (j+1)·BLOCK)): two 32-bit hashes chained over the scope's characters, then the tokens. A collision
 * costs only a lookup miss, since every match is checked token by token.
 */
function blockKeys(scope: string, tokens: ArrayLike<number>, count: number): string[] {
  const keys: string[] = [];
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (let i = 0; i < scope.length; i++) {
    a = Math.imul(a ^ scope.charCodeAt(i), 0x01000193);
    b = Math.imul(b ^ scope.charCodeAt(i), 0x5bd1e995);
  }
  for (let j = 0; j < count; j++) {
    for (let i = j * BLOCK; i < (j + 1) * BLOCK; i++) {
      const t = tokens[i];
      a = Math.imul(a ^ t, 0x01000193);
      b = Math.imul(b ^ t, 0x5bd1e995);
      b ^= b >>> 15;
    }
    keys.push(`${a >>> 0}.${b >>> 0}`);
  }
  return keys;
}

function commonPrefix(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

export class PrefixCache {
  /** In use order, least recent first. */
  private readonly entries = new Set<Entry>();
  private readonly index = new Map<string, Set<Entry>>();
  private used = 0;

  constructor(
    /** The most bytes of keys and values kept; 0 keeps nothing. */
    readonly budget: number,
  ) {}

  get bytes(): number {
    return this.used;
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * The kept sequence of `scope` sharing the longest prefix with `prompt` (at least a block), and how much
   * of it to use: never the whole prompt, since the prompt's last token must be run for the logits it is
   * sampled from.
   */
  match(scope: string, prompt: readonly number[]): PrefixMatch | null {
    const found = this.longest(scope, prompt);
    if (found === null) return null;
    const length = Math.min(found.shared, prompt.length - 1);
    if (length < BLOCK) return null;
    this.touch(found.entry);
    return { span: { kv: found.entry.kv, row: 0, stride: found.entry.tokens.length, count: length }, length };
  }

  /**
   * Keeps `tokens` with their keys and values (`spans`, in order, covering every token; copied here) in
   * `scope`, unless a kept sequence of the scope already extends them. Those they extend are dropped.
   */
  keep(scope: string, tokens: readonly number[], spans: readonly KvSpan[], kvHeads: number, headDim: number): void {
    const blocks = Math.floor(tokens.length / BLOCK);
    if (blocks === 0) return;
    const bytes = 2 * tokens.length * kvHeads * headDim * spans[0].kv.keys.length * Float32Array.BYTES_PER_ELEMENT;
    if (bytes > this.budget) return;
    const found = this.longest(scope, tokens);
    if (found !== null && found.shared === tokens.length) {
      this.touch(found.entry);
      return;
    }
    const keys = blockKeys(scope, tokens, blocks);
    for (const key of keys) {
      for (const e of this.index.get(key) ?? []) {
        if (e.scope === scope && e.tokens.length <= tokens.length && commonPrefix(e.tokens, tokens) === e.tokens.length) this.drop(e);
      }
    }
    const entry: Entry = { scope, tokens: Int32Array.from(tokens), kv: joinSpans(spans, kvHeads, headDim), bytes, blocks: keys };
    this.entries.add(entry);
    for (const key of keys) {
      let holders = this.index.get(key);
      if (holders === undefined) this.index.set(key, (holders = new Set()));
      holders.add(entry);
    }
    this.used += bytes;
    for (const oldest of this.entries) {
      if (this.used <= this.budget) break;
      this.drop(oldest);
    }
  }

  /** The kept sequence of `scope` with the longest common prefix with `tokens`, among those sharing its deepest indexed block. */
  private longest(scope: string, tokens: readonly number[]): { entry: Entry; shared: number } | null {
    const keys = blockKeys(scope, tokens, Math.floor(tokens.length / BLOCK));
    let holders: Set<Entry> | undefined;
    for (const key of keys) {
      const next = this.index.get(key);
      if (next === undefined) break;
      holders = next;
    }
    let best: { entry: Entry; shared: number } | null = null;
    for (const entry of holders ?? []) {
      if (entry.scope !== scope) continue;
      const shared = commonPrefix(entry.tokens, tokens);
      if (best === null || shared > best.shared) best = { entry, shared };
    }
    return best;
  }

  private touch(entry: Entry): void {
    this.entries.delete(entry);
    this.entries.add(entry);
  }

  private drop(entry: Entry): void {
    if (!this.entries.delete(entry)) return;
    this.used -= entry.bytes;
    for (const key of entry.blocks) {
      const holders = this.index.get(key)!;
      holders.delete(entry);
      if (holders.size === 0) this.index.delete(key);
    }
  }
}
