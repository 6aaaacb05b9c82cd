/**
 * The KV cache of a decoding batch: per layer, keys and values as [slots, kvHeads, capacity, hd].
 * Decode graphs read it in place as their `past` inputs, so its time axis is what every step's
 * attention scans; the capacity therefore grows in chunks with the longest row instead of being the
 * model's whole context from the start.
 *
 * Its memory comes from the decode session's `KvMemory` and goes back there when the batch is done: a
 * batch-128 cache of SmolLM2 is most of a gigabyte, and memory the process has not touched before can cost
 * more to fault in than the decoding it holds (on this project's VMs, 0.1–3 GB/s, changing from run to
 * run). Growing the time axis grows that memory in place and moves each slot within it, so a batch as
 * large as one before touches nothing new.
 */
import ort from 'onnxruntime-node';

/** Growth step of the time axis: a reallocation (one copy of the cache) per this many positions. */
const CHUNK = 64;

/**
 * A decode step writes one position per row and head: tens of thousands of head-sized copies per step at
 * batch 128, where making a subarray for `set` costs more than copying the floats one by one.
 */
function copy(from: Float32Array, at: number, to: Float32Array, into: number, n: number): void {
  if (n > 256) {
    to.set(from.subarray(at, at + n), into);
    return;
  }
  for (let i = 0; i < n; i++) to[into + i] = from[at + i];
}

/** Keys and values of some rows, [rows, kvHeads, s, hd] per layer. */
export interface KvRows {
  keys: Float32Array[];
  values: Float32Array[];
}

/**
 * Positions [0, count) of row `row` of some keys and values laid out [rows, kvHeads, stride, hd] per layer:
 * a view, nothing copied.
 */
export interface KvSpan {
  kv: KvRows;
  row: number;
  stride: number;
  count: number;
}

/** Spans one after another, copied into one row of their own ([1, kvHeads, total, hd] per layer). */
export function joinSpans(spans: readonly KvSpan[], kvHeads: number, headDim: number): KvRows {
  const total = spans.reduce((n, s) => n + s.count, 0);
  const join = (part: (s: KvSpan) => Float32Array) => {
    const out = new Float32Array(kvHeads * total * headDim);
    for (let h = 0; h < kvHeads; h++) {
      let at = h * total * headDim;
      for (const s of spans) {
        const n = s.count * headDim;
        copy(part(s), (s.row * kvHeads + h) * s.stride * headDim, out, at, n);
        at += n;
      }
    }
    return out;
  };
  const layers = spans[0].kv.keys.length;
  return {
    keys: Array.from({ length: layers }, (_, l) => join((s) => s.kv.keys[l])),
    values: Array.from({ length: layers }, (_, l) => join((s) => s.kv.values[l])),
  };
}

/** The new keys and values a decode run returns (`k.<l>` / `v.<l>`), viewed without copying. */
export function decodedKv(out: ort.InferenceSession.ReturnType, layers: number): KvRows {
  const keys: Float32Array[] = [];
  const values: Float32Array[] = [];
  for (let l = 0; l < layers; l++) {
    keys.push(out[`k.${l}`].data as Float32Array);
    values.push(out[`v.${l}`].data as Float32Array);
  }
  return { keys, values };
}

/**
 * The memory of the KV caches a decode session is done with, lent to its next batches: per cache, one
 * resizable buffer per layer's keys and per layer's values, grown in place as caches need more. Batches of
 * one session may run at once (a server's open batch beside a step's), so each takes a set of its own,
 * the one that already holds the most; a batch that finds none takes a new one and leaves it here when
 * done. What is kept is bounded: the largest sets, up to `budget` bytes.
 */
export class KvMemory {
  /** Free sets, least memory first. */
  private free: ArrayBuffer[][] = [];

  constructor(readonly budget: number) {}

  get bytes(): number {
    return this.free.reduce((n, set) => n + bytesOf(set), 0);
  }

  /** The free set holding the most memory among those of `count` buffers that may grow to `maxBytes` each, or null. */
  take(count: number, maxBytes: number): ArrayBuffer[] | null {
    for (let i = this.free.length - 1; i >= 0; i--) {
      const set = this.free[i];
      if (set.length === count && set[0].maxByteLength >= maxBytes) return this.free.splice(i, 1)[0];
    }
    return null;
  }

  give(set: ArrayBuffer[]): void {
    this.free.push(set);
    this.free.sort((a, b) => bytesOf(a) - bytesOf(b));
    while (this.free.length > 0 && this.bytes > this.budget) this.free.shift();
  }
}

function bytesOf(set: readonly ArrayBuffer[]): number {
  return set.reduce((n, b) => n + b.byteLength, 0);
}

/** The most a resizable buffer may grow to (V8's limit in Node 20): a cache that outgrows it moves to plain buffers. */
const MAX_RESIZABLE_BYTES = 2 ** 32;

/** How much memory the KV caches of one decode session keep between batches. */
export const KV_MEMORY_BYTES = 2 * 2 ** 30;

export class KvCache {
  /**
   * Per layer, keys then values: resizable buffers, reserved for the model's whole context (or as much of it
   * as a resizable buffer may hold) and grown as the capacity grows, so the memory a cache has touched stays
   * its own (and goes back to `memory`).
   */
  private buffers: ArrayBuffer[];
  /** Views of the buffers over [slots, kvHeads, capacity, hd], made again as the capacity grows. */
  private arrays: Float32Array[] = [];
  capacity = 0;

  constructor(
    readonly layers: number,
    readonly slots: number,
    readonly kvHeads: number,
    readonly headDim: number,
    /** The model's context: the capacity never grows past it. */
    readonly maxCapacity: number,
    /** Where the buffers come from and go back to (`release`); new ones, left to the collector, without. */
    private readonly memory: KvMemory | null = null,
  ) {
    const maxBytes = Math.min(this.floats(maxCapacity) * Float32Array.BYTES_PER_ELEMENT, MAX_RESIZABLE_BYTES);
    this.buffers = memory?.take(2 * layers, maxBytes) ?? Array.from({ length: 2 * layers }, () => new ArrayBuffer(0, { maxByteLength: maxBytes }));
    this.ensure(1);
  }

  private get slotFloats(): number {
    return this.kvHeads * this.capacity * this.headDim;
  }

  private floats(capacity: number): number {
    return this.slots * this.kvHeads * capacity * this.headDim;
  }

  /**
   * Makes room for `length` positions per slot, keeping what is stored: each (slot, head) row moves up to
   * its place in the longer layout, the last first, so none lands on one not yet moved. Positions past a
   * slot's length hold whatever the memory held before (the mask hides them from attention).
   */
  ensure(length: number): void {
    if (length <= this.capacity) return;
    if (length > this.maxCapacity) throw new Error(`KV cache: ${length} positions exceed the context of ${this.maxCapacity}`);
    const capacity = Math.min(this.maxCapacity, Math.ceil(length / CHUNK) * CHUNK);
    const oldRow = this.capacity * this.headDim;
    const newRow = capacity * this.headDim;
    const floats = this.floats(capacity);
    const bytes = floats * Float32Array.BYTES_PER_ELEMENT;
    const rows = this.slots * this.kvHeads;
    if (bytes <= this.buffers[0].maxByteLength) {
      this.arrays = this.buffers.map((b) => {
        if (b.byteLength < bytes) b.resize(bytes);
        // A view of fixed length: V8 reads and writes those faster than one that tracks the buffer's size.
        const a = new Float32Array(b, 0, floats);
        if (oldRow > 0) for (let r = rows - 1; r > 0; r--) a.copyWithin(r * newRow, r * oldRow, r * oldRow + oldRow);
        return a;
      });
    } else {
      // Past what a resizable buffer may hold: plain buffers of the new size, each row copied to its place.
      this.buffers = this.buffers.map(() => new ArrayBuffer(bytes));
      this.arrays = this.buffers.map((b, i) => {
        const a = new Float32Array(b);
        for (let r = 0; r < rows && oldRow > 0; r++) a.set(this.arrays[i].subarray(r * oldRow, (r + 1) * oldRow), r * newRow);
        return a;
      });
    }
    this.capacity = capacity;
  }

  /** Gives the buffers back to the memory they came from; the cache is not used after. */
  release(): void {
    if (this.buffers[0].resizable) this.memory?.give(this.buffers);
    this.arrays = [];
  }

  /** Copies a span into `slot` starting at position `at`. */
  write(span: KvSpan, slot: number, at: number): void {
    const hd = this.headDim;
    const n = span.count * hd;
    for (let l = 0; l < this.layers; l++) {
      for (let h = 0; h < this.kvHeads; h++) {
        const from = (span.row * this.kvHeads + h) * span.stride * hd;
        const to = ((slot * this.kvHeads + h) * this.capacity + at) * hd;
        copy(span.kv.keys[l], from, this.arrays[l], to, n);
        copy(span.kv.values[l], from, this.arrays[this.layers + l], to, n);
      }
    }
  }

  /** Copies spans one after another into `slot` from its first position. */
  fill(slot: number, spans: readonly KvSpan[]): void {
    let at = 0;
    for (const span of spans) {
      this.write(span, slot, at);
      at += span.count;
    }
  }

  /** The first `count` positions of `slot`, as a view that the next write, move or growth changes: copy it before. */
  span(slot: number, count: number): KvSpan {
    return { kv: { keys: this.arrays.slice(0, this.layers), values: this.arrays.slice(this.layers) }, row: slot, stride: this.capacity, count };
  }

  /**
   * Writes a cached step's keys and values (`src`: [rows, kvHeads, 1, hd] per layer) into slots 0..rows-1,
   * row i at position `at[i]`: one pass over each layer's output, no call per head.
   */
  append(src: KvRows, at: readonly number[]): void {
    const hd = this.headDim;
    const kvHeads = this.kvHeads;
    const capacity = this.capacity;
    for (let l = 0; l < this.layers; l++) {
      for (const [from, to] of [[src.keys[l], this.arrays[l]], [src.values[l], this.arrays[this.layers + l]]]) {
        for (let i = 0; i < at.length; i++) {
          for (let h = 0; h < kvHeads; h++) {
            const f = (i * kvHeads + h) * hd;
            const t = ((i * kvHeads + h) * capacity + at[i]) * hd;
            for (let d = 0; d < hd; d++) to[t + d] = from[f + d];
          }
        }
      }
    }
  }

  /** Moves slot `from` onto slot `to` (to keep the active slots packed at the front). */
  move(from: number, to: number): void {
    const n = this.slotFloats;
    for (const cache of this.arrays) cache.copyWithin(to * n, from * n, (from + 1) * n);
  }

  /** `past_k.<l>` / `past_v.<l>` inputs over the first `rows` slots, viewed without copying. */
  feeds(rows: number): Record<string, ort.Tensor> {
    const shape = [rows, this.kvHeads, this.capacity, this.headDim];
    const feeds: Record<string, ort.Tensor> = {};
    for (let l = 0; l < this.layers; l++) {
      feeds[`past_k.${l}`] = new ort.Tensor('float32', this.arrays[l].subarray(0, rows * this.slotFloats), shape);
      feeds[`past_v.${l}`] = new ort.Tensor('float32', this.arrays[this.layers + l].subarray(0, rows * this.slotFloats), shape);
    }
    return feeds;
  }
}
