import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import { decodedKv, KvCache, KvMemory, type KvRows } from '../../src/engine/kv-cache.ts';

/** A fake decode output for one layer: [rows, kvHeads, s, hd] filled with recognisable values. */
function output(rows: number, kvHeads: number, s: number, hd: number, base: number): KvRows {
  const data = Float32Array.from({ length: rows * kvHeads * s * hd }, (_, i) => base + i);
  const out = { 'k.0': new ort.Tensor('float32', data, [rows, kvHeads, s, hd]), 'v.0': new ort.Tensor('float32', data.map((x) => -x), [rows, kvHeads, s, hd]) };
  return decodedKv(out, 1);
}

function slotPositions(cache: KvCache, slots: number, slot: number, h: number, count: number): number[] {
  const k = cache.feeds(slots)['past_k.0'];
  const hd = cache.headDim;
  const start = ((slot * cache.kvHeads + h) * cache.capacity) * hd;
  return [...(k.data as Float32Array).subarray(start, start + count * hd)];
}

test('the cache grows in chunks, keeps its contents, and moves slots', () => {
  const cache = new KvCache(1, 2, 2, 3, 200);
  assert.equal(cache.capacity, 64);
  cache.write({ kv: output(1, 2, 5, 3, 100), row: 0, stride: 5, count: 5 }, 1, 0);
  const before = slotPositions(cache, 2, 1, 1, 5);
  assert.deepEqual(before, Array.from({ length: 15 }, (_, i) => 100 + 15 + i), 'head 1 of slot 1 holds head 1 of the row');
  cache.ensure(65);
  assert.equal(cache.capacity, 128);
  assert.deepEqual(slotPositions(cache, 2, 1, 1, 5), before, 'growing keeps what was stored');
  cache.ensure(199);
  assert.equal(cache.capacity, 200, 'never beyond the model context');
  assert.throws(() => cache.ensure(201), /201 positions exceed the context of 200/);
  cache.move(1, 0);
  assert.deepEqual(slotPositions(cache, 1, 0, 1, 5), before);
  assert.deepEqual(cache.feeds(1)['past_v.0'].dims, [1, 2, 200, 3]);
});

test('a row of a prefill goes into a slot: its prompt positions of every head, from the padded row', () => {
  // Row 1 of a 3-row prefill padded to 6 positions, of which its prompt fills 4.
  const prefill = output(3, 2, 6, 3, 0);
  const cache = new KvCache(1, 2, 2, 3, 200);
  cache.write({ kv: prefill, row: 1, stride: 6, count: 4 }, 1, 0);
  for (const h of [0, 1]) {
    const start = (1 * 2 + h) * 6 * 3;
    assert.deepEqual(slotPositions(cache, 2, 1, h, 4), Array.from({ length: 12 }, (_, i) => start + i), `head ${h}`);
  }
});

test('a cached step appends each row at its own position, as writing the rows one by one does', () => {
  const step = output(3, 2, 1, 3, 500);
  const at = [4, 0, 9];
  const appended = new KvCache(1, 3, 2, 3, 200);
  appended.append(step, at);
  const written = new KvCache(1, 3, 2, 3, 200);
  at.forEach((position, i) => written.write({ kv: step, row: i, stride: 1, count: 1 }, i, position));
  for (const [name, t] of Object.entries(written.feeds(3))) assert.deepEqual(appended.feeds(3)[name].data, t.data, name);
  assert.deepEqual(slotPositions(appended, 3, 2, 1, 10).slice(27, 30), [515, 516, 517], 'row 2, head 1 (15 floats into the step) at position 9');
});

test('a cache grows within the memory it holds, and the next cache of the session takes that memory', () => {
  const memory = new KvMemory(1 << 30);
  const first = new KvCache(1, 2, 2, 3, 300, memory);
  first.write({ kv: output(1, 2, 5, 3, 100), row: 0, stride: 5, count: 5 }, 1, 0);
  const before = slotPositions(first, 2, 1, 1, 5);
  first.ensure(130);
  assert.equal(first.capacity, 192);
  assert.deepEqual(slotPositions(first, 2, 1, 1, 5), before, 'each slot and head moved to its place in the longer layout');
  first.release();
  assert.equal(memory.bytes, 2 * 2 * 2 * 192 * 3 * 4, 'keys and values of one layer: 2 slots, 2 heads, 192 positions, width 3');

  const next = new KvCache(1, 2, 2, 3, 300, memory);
  assert.equal(memory.bytes, 0, 'the next cache took the memory');
  const beside = new KvCache(1, 2, 2, 3, 300, memory);
  next.ensure(100);
  beside.write({ kv: output(1, 2, 5, 3, 900), row: 0, stride: 5, count: 5 }, 0, 0);
  next.write({ kv: output(1, 2, 5, 3, 100), row: 0, stride: 5, count: 5 }, 1, 0);
  assert.deepEqual(slotPositions(next, 2, 1, 1, 5), before, 'a cache running beside it has memory of its own');
  next.release();
  beside.release();
  assert.equal(memory.bytes, 2 * 2 * 2 * (192 + 64) * 3 * 4, 'both sets kept, each at the most it held (memory is never given back to shrink)');
  assert.equal(new KvCache(1, 4, 2, 3, 300, memory).capacity, 64, 'a cache of more slots than a kept set may grow to takes a set of its own');
  assert.equal(memory.bytes, 2 * 2 * 2 * (192 + 64) * 3 * 4);
});

test('the memory kept between batches stays within its budget, the largest sets first', () => {
  const setBytes = (capacity: number) => 2 * 2 * 2 * capacity * 3 * 4;
  const memory = new KvMemory(setBytes(128) + setBytes(64));
  const caches = [64, 128, 192].map((length) => {
    const c = new KvCache(1, 2, 2, 3, 300, memory);
    c.ensure(length);
    return c;
  });
  for (const c of caches) c.release();
  assert.equal(memory.bytes, setBytes(192), 'the largest set alone fills the budget');
  memory.give([new ArrayBuffer(0, { maxByteLength: 1024 }), new ArrayBuffer(0, { maxByteLength: 1024 })]);
  assert.equal(memory.bytes, setBytes(192), 'an empty set costs nothing');
});

test('a cache whose whole context is more than a resizable buffer may hold still grows within one', () => {
  // One slot, one head of width 1: a context of 2^31 positions would be 8 GiB a layer, past V8's 4 GiB.
  const memory = new KvMemory(1 << 30);
  const cache = new KvCache(1, 1, 1, 1, 2 ** 31, memory);
  cache.write({ kv: output(1, 1, 3, 1, 40), row: 0, stride: 3, count: 3 }, 0, 0);
  cache.ensure(1000);
  assert.equal(cache.capacity, 1024);
  assert.deepEqual(slotPositions(cache, 1, 0, 0, 3), [40, 41, 42]);
  cache.release();
  assert.equal(memory.bytes, 2 * 1024 * 4, 'its buffers went back to the memory');
});
