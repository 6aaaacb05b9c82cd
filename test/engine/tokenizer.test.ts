import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CharTokenizer,
  DEFAULT_CHARS,
  SPECIAL_TOKEN_NAMES,
} from '../../src/engine/tokenizer.ts';
import { tokenizerFromJSON } from '../../src/engine/tokenizer-json.ts';

test('vocabulary: specials first with fixed ids, then tab, newline and printable ASCII', () => {
  const tok = new CharTokenizer();
  assert.equal(tok.vocabSize, 7 + 2 + 95);
  assert.deepEqual(tok.special, { pad: 0, bos: 1, eos: 2, system: 3, user: 4, assistant: 5, end: 6 });
  assert.equal(tok.tokenToString(0), '<|pad|>');
  assert.equal(tok.tokenToString(tok.special.assistant), '<|assistant|>');
  assert.equal(tok.tokenToString(7), '\t');
  assert.equal(tok.tokenToString(8), '\n');
  assert.equal(tok.tokenToString(9), ' ');
  assert.equal(tok.tokenToString(tok.vocabSize - 1), '~');
  assert.equal(DEFAULT_CHARS.length, 97);
  for (let id = 0; id < tok.vocabSize; id++) assert.equal(tok.isSpecial(id), id < SPECIAL_TOKEN_NAMES.length);
  assert.equal(tok.isSpecial(-1), false);
  assert.equal(tok.isSpecial(1.5), false);
});

test('round trip of every character and of text with special tokens inside', () => {
  const tok = new CharTokenizer();
  assert.equal(tok.decode(tok.encode(DEFAULT_CHARS)), DEFAULT_CHARS);
  const text = '<|bos|><|system|>Be brief.<|end|><|user|>What is 2+3*4?\n\t<|end|><|assistant|>14<|end|><|eos|>';
  const ids = tok.encode(text);
  assert.equal(tok.decode(ids), text);
  const s = tok.special;
  assert.deepEqual(ids.slice(0, 3), [s.bos, s.system, tok.encode('B')[0]]);
  assert.equal(ids.at(-1), s.eos);
  assert.equal(ids.filter((id) => tok.isSpecial(id)).length, 8);
  assert.equal(tok.decode(ids, { skipSpecial: true }), 'Be brief.What is 2+3*4?\n\t14');
  assert.deepEqual(tok.encode(''), []);
  assert.equal(tok.decode(new Int32Array([s.user, 44])), '<|user|>' + tok.tokenToString(44));
});

test('text that only resembles a special token is encoded character by character', () => {
  const tok = new CharTokenizer();
  for (const text of ['<|end', '<|End|>', '< |end|>', '<<|end|>', '|>']) {
    const ids = tok.encode(text);
    assert.equal(tok.decode(ids), text);
    assert.equal(ids.filter((id) => tok.isSpecial(id)).length, text === '<<|end|>' ? 1 : 0, text);
  }
});

test('an unknown character is an error naming it and its position', () => {
  const tok = new CharTokenizer();
  assert.throws(() => tok.encode('ab\u00e9c'), /unknown character "é" \(U\+00E9\) at index 2/);
  assert.throws(() => tok.encode('<|user|>x\r'), /unknown character "\\r" \(U\+000D\) at index 9/);
  assert.throws(() => tok.encode('1 😀'), /unknown character "😀" \(U\+1F600\) at index 2/);
});

test('ids outside the vocabulary are errors', () => {
  const tok = new CharTokenizer();
  assert.throws(() => tok.decode([9, tok.vocabSize]), /token id 104 at position 1 is outside the vocabulary \[0, 104\)/);
  assert.throws(() => tok.decode([-1]), RangeError);
  assert.throws(() => tok.tokenToString(2.5), /token id 2.5 is outside/);
});

test('JSON round trip gives an identical tokenizer, also through a string', () => {
  const tok = new CharTokenizer();
  const json = JSON.parse(JSON.stringify(tok.toJSON()));
  assert.equal(json.kind, 'char');
  const back = tokenizerFromJSON(json);
  assert.deepEqual(back.toJSON(), tok.toJSON());
  assert.equal(back.vocabSize, tok.vocabSize);
  assert.deepEqual(back.special, tok.special);
  const text = '<|user|>hi\n<|end|>';
  assert.deepEqual(back.encode(text), tok.encode(text));
});

test('a custom vocabulary keeps its ids through JSON', () => {
  const specials = { pad: '[P]', bos: '[B]', eos: '[E]', system: '[S]', user: '[U]', assistant: '[A]', end: '[/]' };
  const tok = new CharTokenizer(specials, '0123456789+=');
  assert.equal(tok.vocabSize, 19);
  assert.deepEqual(tok.encode('[U]1+1=[A]2[/]'), [4, 8, 17, 8, 18, 5, 9, 6]);
  assert.deepEqual(tokenizerFromJSON(tok.toJSON()).encode('[U]12'), [4, 8, 9]);
});

test('invalid vocabularies and JSON are rejected with the reason', () => {
  assert.throws(() => new CharTokenizer(undefined, 'abca'), /character "a" at position 3 duplicates the character at position 0/);
  const specials = { pad: '<p>', bos: '<p>', eos: '<e>', system: '<s>', user: '<u>', assistant: '<a>', end: '<x>' };
  assert.throws(() => new CharTokenizer(specials), /special token "bos" \("<p>"\) duplicates special token "pad"/);
  assert.throws(() => new CharTokenizer({ ...specials, bos: '' }), /special token "bos" must be a non-empty string/);
  assert.throws(() => tokenizerFromJSON({ kind: 'hf', path: 'tokenizer.json' }), /tokenizer kind "hf" is not supported/);
  assert.throws(() => tokenizerFromJSON({}), /no "kind"/);
  assert.throws(() => tokenizerFromJSON([]), /must be an object/);
  assert.throws(() => tokenizerFromJSON({ kind: 'char', specials: {}, chars: 'ab' }), /special token "pad" must be a non-empty string/);
  const json = new CharTokenizer().toJSON();
  assert.throws(() => tokenizerFromJSON({ ...json, chars: 7 }), /"chars" must be a string/);
  assert.throws(() => tokenizerFromJSON({ ...json, specials: { ...json.specials, tool: '<|tool|>' } }), /unknown special token\(s\) "tool"/);
});
