/**
 * The KV cache of a decoding batch: per layer, keys and values as [slots, kvHeads, capacity, hd].
 * Decode graphs read it in place as their `past` inputs, so its time axis is what every step's
 * attention scans; the capacity therefore grows in chunks with the longest row instead of being the
 * model's whole context from the start.
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

export class KvCache {
  private keys: Float32Array[];
  private values: Float32Array[];
  capacity = 0;

  constructor(
    readonly layers: number,
    readonly slots: number,
    readonly kvHeads: number,
    readonly headDim: number,
    /** The model's context: the capacity never grows past it. */
    readonly maxCapacity: number,
  ) {
    this.keys = [];
    this.values = [];
    this.ensure(1);
  }

  private get slotFloats(): number {
    return this.kvHeads * this.capacity * this.headDim;
  }

  /** Makes room for `length` positions per slot, keeping what is stored. */
  ensure(length: number): void {
    if (length <= this.capacity) return;
    if (length > this.maxCapacity) throw new Error(`KV cache: ${length} positions exceed the context of ${this.maxCapacity}`);
    const capacity = Math.min(this.maxCapacity, Math.ceil(length / CHUNK) * CHUNK);
    const grow = (old: Float32Array | undefined) => {
      const next = new Float32Array(this.slots * this.kvHeads * capacity * this.headDim);
      if (old) {
        const oldRow = this.capacity * this.headDim;
        for (let sh = 0; sh < this.slots * this.kvHeads; sh++) next.set(old.subarray(sh * oldRow, (sh + 1) * oldRow), sh * capacity * this.headDim);
      }
      return next;
    };
    this.keys = Array.from({ length: this.layers }, (_, l) => grow(this.keys[l]));
    this.values = Array.from({ length: this.layers }, (_, l) => grow(this.values[l]));
    this.capacity = capacity;
  }

  /** Copies a span into `slot` starting at position `at`. */
  write(span: KvSpan, slot: number, at: number): void {
    const hd = this.headDim;
    const n = span.count * hd;
    for (let l = 0; l < this.layers; l++) {
      for (let h = 0; h < this.kvHeads; h++) {
        const from = (span.row * this.kvHeads + h) * span.stride * hd;
        const to = ((slot * this.kvHeads + h) * this.capacity + at) * hd;
        copy(span.kv.keys[l], from, this.keys[l], to, n);
        copy(span.kv.values[l], from, this.values[l], to, n);
      }
    }
  }

  /** The first `count` positions of `slot`, as a view that the next write, move or growth changes: copy it before. */
  span(slot: number, count: number): KvSpan {
    return { kv: { keys: this.keys, values: this.values }, row: slot, stride: this.capacity, count };
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
      for (const [from, to] of [[src.keys[l], this.keys[l]], [src.values[l], this.values[l]]]) {
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
    for (const cache of [...this.keys, ...this.values]) cache.copyWithin(to * n, from * n, (from + 1) * n);
  }

  /** `past_k.<l>` / `past_v.<l>` inputs over the first `rows` slots, viewed without copying. */
  feeds(rows: number): Record<string, ort.Tensor> {
    const shape = [rows, this.kvHeads, this.capacity, this.headDim];
    const feeds: Record<string, ort.Tensor> = {};
    for (let l = 0; l < this.layers; l++) {
      feeds[`past_k.${l}`] = new ort.Tensor('float32', this.keys[l].subarray(0, rows * this.slotFloats), shape);
      feeds[`past_v.${l}`] = new ort.Tensor('float32', this.values[l].subarray(0, rows * this.slotFloats), shape);
    }
    return feeds;
  }
}
