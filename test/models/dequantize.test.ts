import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { BLOCK_FORMATS, dequantize, encodedBytes, halfToFloat, isGgmlType } from '../../src/models/dequantize.ts';

interface Case {
  type: string;
  count: number;
  bytes: string;
  expected: string;
}

// Written by scripts/reference/dequantize_cases.py from the `gguf` package's numpy dequantizers.
const fixture = JSON.parse(readFileSync(new URL('../fixtures/dequantize-cases.json', import.meta.url), 'utf8')) as { cases: Case[] };

const bytesOf = (base64: string) => new Uint8Array(Buffer.from(base64, 'base64'));

test('the fixture covers every format the importer reads', () => {
  assert.deepEqual(fixture.cases.map((c) => c.type).sort(), Object.keys(BLOCK_FORMATS).sort());
});

for (const c of fixture.cases) {
  test(`${c.type} decodes bit for bit as the gguf package does`, () => {
    assert.ok(isGgmlType(c.type));
    const raw = bytesOf(c.expected);
    const expected = new Float32Array(raw.buffer, raw.byteOffset, c.count);
    const got = dequantize(c.type, bytesOf(c.bytes), c.count);
    const mismatches = [...got.keys()].filter((i) => !Object.is(got[i], expected[i]));
    assert.deepEqual(
      mismatches.slice(0, 5).map((i) => ({ i, got: got[i], expected: expected[i] })),
      [],
      `${mismatches.length} of ${c.count} values differ`,
    );
  });
}

test('half precision: zero, subnormal, normal, infinity and NaN', () => {
  assert.ok(Object.is(halfToFloat(0x8000), -0));
  assert.equal(halfToFloat(0x0001), 2 ** -24);
  assert.equal(halfToFloat(0x3c00), 1);
  assert.equal(halfToFloat(0xc000), -2);
  assert.equal(halfToFloat(0x7bff), 65504);
  assert.equal(halfToFloat(0x7c00), Infinity);
  assert.ok(Number.isNaN(halfToFloat(0x7e00)));
});

test('sizes that do not fill whole blocks, or bytes of the wrong length, are refused', () => {
  assert.equal(encodedBytes('Q4_K', 512), 288);
  assert.throws(() => encodedBytes('Q4_0', 33), /Q4_0: 33 values do not fill whole blocks of 32/);
  assert.throws(() => dequantize('Q8_0', new Uint8Array(33), 32), /Q8_0: 32 values take 34 bytes, got 33/);
});
