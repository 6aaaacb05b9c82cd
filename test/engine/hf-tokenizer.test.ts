import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gguf } from '@huggingface/gguf';
import { HfTokenizer, tokenizerJsonFromGguf, type GgufMetadata } from '../../src/engine/hf-tokenizer.ts';
import { tokenizerFromJSON } from '../../src/engine/tokenizer-json.ts';
import { smollm2Gguf } from '../models/real-model.ts';

interface CorpusEntry {
  text: string;
  ids: number[];
  /** transformers' own GGUF conversion, where it differs (it drops SmolLM2's numeral splitting). */
  transformersGgufIds?: number[];
}
const fixture = JSON.parse(readFileSync(new URL('../fixtures/smollm2-tokenizer.json', import.meta.url), 'utf8')) as {
  special: { bos: string; eos: string; pad: string };
  corpus: CorpusEntry[];
};

const smollm2 = () => gguf(smollm2Gguf(), { allowLocalFile: true }).then(({ metadata }) => HfTokenizer.fromGguf(metadata));

test('SmolLM2 from its GGUF: ids equal the Python reference for every corpus text, and decode gives the text back', async () => {
  const tok = await smollm2();
  assert.equal(tok.vocabSize, 49152);
  assert.deepEqual(tok.special, { pad: 2, bos: 1, eos: 2 });
  assert.deepEqual(tok.toJSON().special, { pad: fixture.special.pad, bos: fixture.special.bos, eos: fixture.special.eos });
  assert.ok(tok.chatTemplate?.includes('<|im_start|>'));
  for (const { text, ids, transformersGgufIds } of fixture.corpus) {
    assert.deepEqual(tok.encode(text), ids, `ids of ${JSON.stringify(text)}`);
    assert.equal(tok.decode(ids), text);
    if (transformersGgufIds) assert.notDeepEqual(tok.encode(text), transformersGgufIds);
  }
  // The reference covers what the task needs: special strings inside text, numerals, CJK, ZWJ emoji, tabs.
  assert.ok(fixture.corpus.some((e) => e.transformersGgufIds !== undefined));
  assert.ok(fixture.corpus.some((e) => e.ids.includes(2) && e.ids.includes(0)));
});

test('SmolLM2: specials are single ids, can be skipped in decoding, and the tokenizer survives its checkpoint JSON', async () => {
  const tok = await smollm2();
  const ids = tok.encode('<|im_start|>user\nHi<|im_end|>');
  assert.equal(ids[0], 1);
  assert.equal(ids.at(-1), 2);
  assert.ok(tok.isSpecial(1) && tok.isSpecial(2) && tok.isSpecial(16) && !tok.isSpecial(17));
  assert.equal(tok.decode(ids, { skipSpecial: true }), 'user\nHi');
  assert.equal(tok.tokenToString(tok.encode(' the')[0]), 'Ġthe');
  assert.equal(tok.decode([]), '');
  assert.throws(() => tok.decode([5, 49152]), /token id 49152 at position 1 is outside the vocabulary \[0, 49152\)/);
  const back = tokenizerFromJSON(JSON.parse(JSON.stringify(tok.toJSON())));
  assert.ok(back instanceof HfTokenizer);
  assert.deepEqual(back.special, tok.special);
  assert.equal(back.chatTemplate, tok.chatTemplate);
  for (const { text, ids: expected } of fixture.corpus) assert.deepEqual(back.encode(text), expected);
});

/** GPT-2's byte → printable-character map, which byte-level BPE vocabularies are written in. */
function byteChars(): string[] {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let extra = 0;
  return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(printable(b) ? b : 256 + extra++));
}

/** A tiny byte-level vocabulary: the 256 bytes, "12", "123" (by merges), "hello" (no merges reach it), and a control token. */
function metadata(pre: string, extra: Record<string, unknown> = {}): GgufMetadata {
  const tokens = [...byteChars(), '12', '123', 'hello', '<|end|>'];
  return {
    'tokenizer.ggml.model': 'gpt2',
    'tokenizer.ggml.pre': pre,
    'tokenizer.ggml.tokens': tokens,
    'tokenizer.ggml.token_type': tokens.map((t) => (t === '<|end|>' ? 3 : 1)),
    'tokenizer.ggml.merges': ['1 2', '12 3'],
    'tokenizer.ggml.eos_token_id': tokens.length - 1,
    ...extra,
  };
}
/** Byte b is token b, so an ASCII character's id is its code. */
const ID = { twelve: 256, oneTwoThree: 257, hello: 258, end: 259 };
const digit = (d: number) => '0'.charCodeAt(0) + d;

test('each GGUF pre-tokenizer splits numbers as its model does; Llama 3 matches whole vocabulary words', () => {
  const encode = (pre: string, text: string) => HfTokenizer.fromGguf(metadata(pre)).encode(text);
  for (const pre of ['smollm', 'starcoder', 'qwen2']) assert.deepEqual(encode(pre, '12345'), [1, 2, 3, 4, 5].map(digit), pre);
  assert.deepEqual(encode('llama-bpe', '12345'), [ID.oneTwoThree, digit(4), digit(5)]);
  assert.deepEqual(encode('llama-bpe', 'hello'), [ID.hello]);
  assert.deepEqual(encode('qwen2', 'hello'), [...'hello'].map((c) => c.charCodeAt(0)));
  assert.deepEqual(encode('smollm', 'a<|end|>'), ['a'.charCodeAt(0), ID.end]);
  const json = tokenizerJsonFromGguf(metadata('qwen2')) as { normalizer: unknown; added_tokens: { id: number; special: boolean }[] };
  assert.deepEqual(json.normalizer, { type: 'NFC' });
  assert.deepEqual(json.added_tokens.map((t) => [t.id, t.special]), [[ID.end, true]]);
});

test('GGUF special tokens: pad falls back to eos, bos may be absent', () => {
  assert.deepEqual(HfTokenizer.fromGguf(metadata('smollm')).special, { pad: ID.end, bos: null, eos: ID.end });
  const tok = HfTokenizer.fromGguf(metadata('smollm', { 'tokenizer.ggml.bos_token_id': ID.hello, 'tokenizer.ggml.padding_token_id': ID.twelve }));
  assert.deepEqual(tok.special, { pad: ID.twelve, bos: ID.hello, eos: ID.end });
  assert.equal(tok.chatTemplate, null);
});

test('unsupported or malformed GGUF tokenizers and tokenizer JSON are named by key and field', () => {
  assert.throws(() => tokenizerJsonFromGguf(metadata('smollm', { 'tokenizer.ggml.model': 'llama' })), /tokenizer\.ggml\.model "llama" is not supported/);
  assert.throws(() => tokenizerJsonFromGguf(metadata('deepseek-llm')), /tokenizer\.ggml\.pre "deepseek-llm" is not supported \(supported: "smollm"/);
  assert.throws(() => tokenizerJsonFromGguf(metadata('smollm', { 'tokenizer.ggml.token_type': [1] })), /tokenizer\.ggml\.token_type must be an array of 260/);
  assert.throws(() => HfTokenizer.fromGguf(metadata('smollm', { 'tokenizer.ggml.eos_token_id': undefined })), /tokenizer\.ggml\.eos_token_id is missing/);
  assert.throws(() => HfTokenizer.fromGguf(metadata('smollm', { 'tokenizer.ggml.bos_token_id': 999 })), /tokenizer\.ggml\.bos_token_id 999 is not a token id/);
  const json = HfTokenizer.fromGguf(metadata('smollm')).toJSON();
  assert.throws(() => tokenizerFromJSON({ ...json, tokenizer: [] }), /"tokenizer" must be a tokenizer\.json object/);
  assert.throws(() => tokenizerFromJSON({ ...json, special: { ...json.special, eos: 7 } }), /"special\.eos" must be a token string/);
  assert.throws(() => tokenizerFromJSON({ ...json, special: { ...json.special, pad: '<|pad|>' } }), /special\.pad "<\|pad\|>" is not in the vocabulary/);
  assert.throws(() => tokenizerFromJSON({ ...json, chatTemplate: 3 }), /"chatTemplate" must be a string or null/);
});
