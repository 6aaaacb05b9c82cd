import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hashSeed, Rng } from '../../src/engine/random.ts';

test('streams are deterministic per name and differ across names', () => {
  const draw = (...parts: (string | number)[]) => Array.from({ length: 5 }, () => new Rng(...parts)).map((r) => r.nextU32());
  assert.deepEqual(draw(7, 'a'), draw(7, 'a'));
  assert.notDeepEqual(new Rng(7, 'a').nextU32(), new Rng(7, 'b').nextU32());
  assert.notEqual(hashSeed(0), hashSeed(2 ** 32), 'large seeds are not folded onto small ones');
  assert.notEqual(hashSeed('1', 2), hashSeed(1, '2'), 'the type of a part matters');
});

test('uniform, int and normal have the right ranges and moments', () => {
  const rng = new Rng('moments');
  let sum = 0;
  let sumSq = 0;
  const n = 20000;
  for (let i = 0; i < n; i++) {
    const u = rng.uniform();
    assert.ok(u >= 0 && u < 1);
    const k = rng.int(5);
    assert.ok(Number.isInteger(k) && k >= 0 && k < 5);
    const z = rng.normal();
    sum += z;
    sumSq += z * z;
  }
  assert.ok(Math.abs(sum / n) < 0.03, `normal mean ${sum / n}`);
  assert.ok(Math.abs(sumSq / n - 1) < 0.05, `normal variance ${sumSq / n}`);
});
