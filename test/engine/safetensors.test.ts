import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
  writeSafetensors,
} from '../../src/engine/safetensors.ts';
import type { NamedTensor } from '../../src/engine/tensor.ts';

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'rise-safetensors-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function bits(data: Float32Array): number[] {
  return Array.from(new Uint32Array(data.buffer, data.byteOffset, data.length));
}

/** Compares bit patterns, so NaN, -0 and infinities count too. */
function assertSameTensors(actual: NamedTensor[], expected: NamedTensor[]): void {
  assert.deepEqual(
    actual.map((t) => ({ name: t.name, shape: t.shape, bits: bits(t.data) })),
    expected.map((t) => ({ name: t.name, shape: t.shape, bits: bits(t.data) })),
  );
}

/** A file from a raw header (object or text) and `dataBytes` bytes of data, for malformed cases. */
function craft(header: object | string, data: Uint8Array | number): Uint8Array {
  const text = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const payload = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + text.length + payload.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  out.set(payload, 8 + text.length);
  return out;
}

const tensors: NamedTensor[] = [
  { name: 'matrix', shape: [2, 3], data: new Float32Array([1, -2, 3.5, 0, -0, 1e-30]) },
  { name: 'scalar', shape: [], data: new Float32Array([42]) },
  { name: 'empty', shape: [0], data: new Float32Array(0) },
  { name: 'empty3d', shape: [4, 0, 2], data: new Float32Array(0) },
  { name: 'specials', shape: [3], data: new Float32Array([NaN, Infinity, -Infinity]) },
  { name: '__proto__', shape: [1], data: new Float32Array([7]) },
];

test('byte layout matches a hand-computed file', () => {
  const bytes = serializeSafetensors([{ name: 'a', shape: [2], data: new Float32Array([1, -2]) }]);
  // {"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} is 54 bytes, padded with 2 spaces to 56.
  const header = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}  ';
  const expected = [
    ...[56, 0, 0, 0, 0, 0, 0, 0],
    ...Array.from(header, (c) => c.charCodeAt(0)),
    ...[0x00, 0x00, 0x80, 0x3f], // 1.0f little-endian
    ...[0x00, 0x00, 0x00, 0xc0], // -2.0f little-endian
  ];
  assert.deepEqual(Array.from(bytes), expected);
});

test('the header is padded with spaces so the data starts 8-byte aligned', () => {
  for (let n = 1; n <= 9; n++) {
    const bytes = serializeSafetensors([{ name: 'x'.repeat(n), shape: [1], data: new Float32Array([1]) }], { k: 'v'.repeat(n) });
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert.equal(headerLength % 8, 0);
    assert.equal(bytes.length, 8 + headerLength + 4);
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + headerLength));
    assert.match(text, /^\{"__metadata__":\{"k":"v+"\},.*\} *$/);
  }
});

test('buffer round trip: shapes including a scalar and empty tensors, with metadata', () => {
  const metadata = { step: '12', note: 'ünïcode' };
  const back = parseSafetensors(serializeSafetensors(tensors, metadata));
  assertSameTensors(back.tensors, tensors);
  assert.deepEqual(back.metadata, metadata);
  assert.deepEqual(parseSafetensors(serializeSafetensors([])), { tensors: [], metadata: {} });
});

test('parsing copies out of an unaligned buffer', () => {
  const bytes = serializeSafetensors(tensors);
  const shifted = new Uint8Array(bytes.length + 3);
  shifted.set(bytes, 3);
  const back = parseSafetensors(shifted.subarray(3));
  assertSameTensors(back.tensors, tensors);
  shifted.fill(0);
  assert.equal(back.tensors[0].data[0], 1);
});

test('file round trip, and the file equals the buffer serialization', async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, 'weights.safetensors');
    await writeSafetensors(path, tensors, { format: 'pt' });
    const back = await readSafetensors(path);
    assertSameTensors(back.tensors, tensors);
    assert.deepEqual(back.metadata, { format: 'pt' });
    assert.deepEqual(new Uint8Array(await readFile(path)), serializeSafetensors(tensors, { format: 'pt' }));
  });
});

test('F16, BF16 and F64 tensors are read into Float32', () => {
  const f16 = new Uint16Array([0x3c00, 0xc000, 0x0001, 0x0400, 0x7bff, 0x8000, 0x7c00, 0xfc00, 0x7e00]);
  const bf16 = new Uint16Array([0x3f80, 0xc040, 0x7f80]);
  const f64 = new Float64Array([0.1, -1e300, 3]);
  const data = new Uint8Array(f16.byteLength + bf16.byteLength + f64.byteLength + 2);
  data.set(new Uint8Array(f16.buffer), 0);
  data.set(new Uint8Array(f64.buffer), 18);
  data.set(new Uint8Array(bf16.buffer), 42);
  const { tensors: read } = parseSafetensors(
    craft(
      {
        half: { dtype: 'F16', shape: [9], data_offsets: [0, 18] },
        double: { dtype: 'F64', shape: [3, 1], data_offsets: [18, 42] },
        brain: { dtype: 'BF16', shape: [3], data_offsets: [42, 48] },
      },
      data.subarray(0, 48),
    ),
  );
  assert.deepEqual(read.map((t) => t.name), ['half', 'double', 'brain']);
  assert.deepEqual(Array.from(read[0].data), [1, -2, 2 ** -24, 2 ** -14, 65504, -0, Infinity, -Infinity, NaN]);
  assert.deepEqual(read[1].shape, [3, 1]);
  assert.deepEqual(Array.from(read[1].data), [Math.fround(0.1), -Infinity, 3]);
  assert.deepEqual(Array.from(read[2].data), [1, -3, Infinity]);
});

const f32 = (shape: number[], begin: number, end: number) => ({ dtype: 'F32', shape, data_offsets: [begin, end] });

const corrupt: { what: string; bytes: Uint8Array; error: RegExp }[] = [
  { what: 'truncated length field', bytes: new Uint8Array(5), error: /truncated: 5 bytes is too short/ },
  { what: 'header length beyond the file', bytes: craft({ a: f32([1], 0, 4) }, 4).fill(0xff, 0, 2), error: /header length 6\d+ runs past the end/ },
  { what: 'bad JSON', bytes: craft('{"a": {"dtype": "F32",', 0), error: /header is not valid JSON/ },
  { what: 'header not an object', bytes: craft('[1, 2]', 0), error: /header must be a JSON object/ },
  { what: 'unsupported dtype', bytes: craft({ w: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, 8), error: /tensor "w": unsupported dtype "I64"/ },
  { what: 'offsets past the data', bytes: craft({ w: f32([4], 0, 16) }, 8), error: /tensor "w": data_offsets \[0, 16\] run past the end of the data \(8 bytes\)/ },
  { what: 'offsets reversed', bytes: craft({ w: f32([0], 4, 0) }, 4), error: /tensor "w": data_offsets must be \[begin, end\]/ },
  { what: 'overlapping tensors', bytes: craft({ a: f32([2], 0, 8), b: f32([2], 4, 12) }, 12), error: /tensor "b": data_offsets \[4, 12\] overlap tensor "a"/ },
  { what: 'shape/size mismatch', bytes: craft({ w: f32([3], 0, 8) }, 8), error: /tensor "w": shape \[3\] of F32 needs 12 bytes but data_offsets span 8/ },
  { what: 'bad shape', bytes: craft({ w: f32([-1], 0, 0) }, 0), error: /tensor "w": shape must be a list of non-negative integers/ },
  { what: 'gap between tensors', bytes: craft({ a: f32([1], 0, 4), b: f32([1], 8, 12) }, 12), error: /tensor "b": data bytes \[4, 8\) before it belong to no tensor/ },
  { what: 'trailing bytes', bytes: craft({ a: f32([1], 0, 4) }, 12), error: /tensors cover 4 bytes of data but the file holds 12/ },
  { what: 'non-string metadata', bytes: craft({ __metadata__: { step: 3 } }, 0), error: /metadata "step" must be a string/ },
  { what: 'invalid UTF-8 header', bytes: craft('{"\xff":1}', 0).fill(0xff, 10, 11), error: /header is not valid JSON/ },
];

test('corrupted buffers give errors naming the source and the tensor', () => {
  for (const { what, bytes, error } of corrupt) {
    assert.throws(() => parseSafetensors(bytes, 'sample.bin'), (e: Error) => {
      assert.match(e.message, /^sample\.bin: /, what);
      assert.match(e.message, error, what);
      return true;
    });
  }
});

test('corrupted files give errors naming the file and the tensor', async () => {
  await withTempDir(async (dir) => {
    for (const [i, { what, bytes, error }] of corrupt.entries()) {
      const path = join(dir, `bad-${i}.safetensors`);
      await writeFile(path, bytes);
      await assert.rejects(readSafetensors(path), (e: Error) => {
        assert.ok(e.message.startsWith(`${path}: `), `${what}: ${e.message}`);
        assert.match(e.message, error, what);
        return true;
      });
    }
    // A file cut short in its data: the last tensor's range runs past the end.
    const path = join(dir, 'cut.safetensors');
    const whole = serializeSafetensors(tensors.slice(0, 2));
    await writeFile(path, whole.subarray(0, whole.length - 2));
    await assert.rejects(readSafetensors(path), /cut\.safetensors: tensor "scalar": data_offsets \[24, 28\] run past the end/);
    await assert.rejects(readSafetensors(join(dir, 'absent.safetensors')), /ENOENT/);
  });
});

test('writing rejects tensors that cannot be described', () => {
  const one = new Float32Array([1]);
  assert.throws(() => serializeSafetensors([{ name: 'w', shape: [2], data: one }]), /tensor "w": shape \[2\] has 2 elements but data has 1/);
  assert.throws(() => serializeSafetensors([{ name: 'w', shape: [1], data: one }, { name: 'w', shape: [1], data: one }]), /tensor "w": duplicate tensor name/);
  assert.throws(() => serializeSafetensors([{ name: '__metadata__', shape: [1], data: one }]), /invalid tensor name/);
  assert.throws(() => serializeSafetensors([{ name: 'w', shape: [1.5], data: one }]), /tensor "w": shape must be a list of non-negative integers/);
  assert.throws(() => serializeSafetensors([], { step: 3 as unknown as string }), /metadata "step" must be a string/);
});
