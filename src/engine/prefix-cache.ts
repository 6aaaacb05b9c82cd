/**
 * Sequences whose keys and values a decode session has computed, kept for the calls after: the next turn
 * of a RISE episode is the last turn's prompt, its response and the feedback, and a server's client sends
 * the whole chat again with every message. A prompt is matched against the kept sequences by its longest
 * common prefix, and only what follows that prefix is prefilled.
 *
 * The weights of a decode session never change, so a kept sequence never goes stale while the session
 * lives: its keys and values are what a prefill of it computes, up to the rounding of the run's shape (as
 * when prompts are prefilled together). A kept sequence holds its keys and values as views of the arrays
 * they were computed in (a prefill's outputs, never written after), not as copies: a batch-128 prefill
 * would otherwise copy hundreds of megabytes just to keep them. The cache is bounded in the bytes of the
 * arrays its sequences hold (an array held by several counts once); the least recently used go first.
 * No entry is a prefix of another: a longer sequence that extends a kept one replaces it, since any prompt
 * that matched the shorter matches the longer at least as far.
 *
 * Sequences are kept in a scope and matched only within it. What a prompt finds decides the shapes of its
 * prefill, and so the last bits of what follows; a caller that must compute the same bits whatever the
 * process ran before (a RISE collection, which a sharded or resumed step must repeat exactly) names a
 * scope of its own.
 */
import type { Env } from '../util/env.ts';
import type { KvSpan } from './kv-cache.ts';

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
  /** Its keys and values: spans one after another, covering every token. */
  spans: readonly KvSpan[];
  /** The index keys of its full blocks. */
  blocks: string[];
}

/** A kept sequence's first `length` positions, shared with a prompt: spans one after another. */
export interface PrefixMatch {
  spans: KvSpan[];
  length: number;
}

/** The first `length` positions of spans one after another. */
function cut(spans: readonly KvSpan[], length: number): KvSpan[] {
  const out: KvSpan[] = [];
  for (const span of spans) {
    if (length <= 0) break;
    out.push({ ...span, count: Math.min(span.count, length) });
    length -= span.count;
  }
  return out;
}

/** The memory spans view. */
function buffersOf(spans: readonly KvSpan[]): Set<ArrayBufferLike> {
  return new Set(spans.flatMap((s) => [...s.kv.keys, ...s.kv.values].map((a) => a.buffer)));
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
  /** How many entries hold each array. */
  private readonly holders = new Map<ArrayBufferLike, number>();
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
    return { spans: cut(found.entry.spans, length), length };
  }

  /**
   * Keeps `tokens` with their keys and values (`spans`, in order, covering every token) in `scope`, unless a
   * kept sequence of the scope already extends them. Those they extend are dropped. The spans are held as
   * they are: the arrays they view must never be written again.
   */
  keep(scope: string, tokens: readonly number[], spans: readonly KvSpan[]): void {
    const blocks = Math.floor(tokens.length / BLOCK);
    if (blocks === 0) return;
    const buffers = buffersOf(spans);
    let bytes = 0;
    for (const buffer of buffers) bytes += buffer.byteLength;
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
    const entry: Entry = { scope, tokens: Int32Array.from(tokens), spans: spans.slice(), blocks: keys };
    this.entries.add(entry);
    for (const key of keys) {
      let holders = this.index.get(key);
      if (holders === undefined) this.index.set(key, (holders = new Set()));
      holders.add(entry);
    }
    for (const buffer of buffers) {
      const n = this.holders.get(buffer) ?? 0;
      if (n === 0) this.used += buffer.byteLength;
      this.holders.set(buffer, n + 1);
    }
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
    for (const buffer of buffersOf(entry.spans)) {
      const n = this.holders.get(buffer)! - 1;
      if (n > 0) this.holders.set(buffer, n);
      else {
        this.holders.delete(buffer);
        this.used -= buffer.byteLength;
      }
    }
    for (const key of entry.blocks) {
      const holders = this.index.get(key)!;
      holders.delete(entry);
      if (holders.size === 0) this.index.delete(key);
    }
  }
}
