import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JsonDepthError, JsonSyntaxError, MAX_DEPTH, parseJson } from '../../src/spec/json-text.ts';

test('parses what JSON.parse parses, to the same value', () => {
  const texts = [
    '{}', '[]', '0', '-0.5e-3', '1E+2', '"a\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00"', 'true', 'false', 'null',
    ' { "a" : [ 1 , { "b" : null } , "x" ] , "c" : { } }\n', '\ufeff{"bom": 1}', '[[[]], {"": ""}]', '{"é😀": "ü"}',
  ];
  for (const text of texts) assert.deepEqual(parseJson(text).value, JSON.parse(text.replace(/^\ufeff/, '')), text);
});

test('rejects what JSON.parse rejects', () => {
  for (const text of ['{', '[1,]', '{"a":1,}', "{'a':1}", '{a:1}', '01', '1.', '.5', '+1', '"\t"', '"\\x"', '"\\u12"', 'NaN', '[1 2]', '{"a" 1}', '"a', '// c\n1', '1 2']) {
    assert.throws(() => JSON.parse(text), SyntaxError, text);
    assert.throws(() => parseJson(text), JsonSyntaxError, text);
  }
});

test('locates values by JSON pointer, falling back to the nearest ancestor', () => {
  const parsed = parseJson('{\n  "a": {\n    "b/c": [10,\n      20]\n  }\n}');
  assert.deepEqual(parsed.locate(''), { line: 1, column: 1 });
  assert.deepEqual(parsed.locate('/a'), { line: 2, column: 3 });
  assert.deepEqual(parsed.locate('/a/b~1c'), { line: 3, column: 5 });
  assert.deepEqual(parsed.locate('/a/b~1c/1'), { line: 4, column: 7 });
  assert.deepEqual(parsed.locate('/a/missing/deeper'), { line: 2, column: 3 });
});

test('counts lines only at real line breaks: CRLF is one, an escaped \\n in a string none', () => {
  const parsed = parseJson('{\r\n  "a": "x\\ny",\r\n\t"b": [\n1]\n}');
  assert.deepEqual(parsed.locate('/a'), { line: 2, column: 3 });
  assert.deepEqual(parsed.locate('/b'), { line: 3, column: 2 });
  assert.deepEqual(parsed.locate('/b/0'), { line: 4, column: 1 });
});

test(`nests up to ${MAX_DEPTH} levels; a container deeper than that is a JsonDepthError at its bracket`, () => {
  const nested = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;
  assert.doesNotThrow(() => parseJson(nested(MAX_DEPTH)));
  assert.throws(
    () => parseJson(` ${nested(100_000)}`),
    (err) => err instanceof JsonDepthError && err.pointer === '/0'.repeat(MAX_DEPTH) && err.location.line === 1 && err.location.column === MAX_DEPTH + 2,
  );
});

test('reports duplicate keys with both places, keeping the last value as JSON.parse does', () => {
  const parsed = parseJson('{"x": 1,\n "x": 2}');
  assert.deepEqual(parsed.value, { x: 2 });
  assert.deepEqual(parsed.duplicates, [{ pointer: '/x', location: { line: 2, column: 2 }, first: { line: 1, column: 2 } }]);
});

test('"__proto__" is an ordinary key', () => {
  const value = parseJson('{"__proto__": {"polluted": true}}').value as Record<string, unknown>;
  assert.deepEqual(Object.keys(value), ['__proto__']);
  assert.equal(Object.getPrototypeOf(value), Object.prototype);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});
