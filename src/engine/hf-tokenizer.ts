/**
 * Hugging Face tokenizers: a `tokenizer.json` run by @huggingface/tokenizers (pure JS), behind the
 * engine's `Tokenizer` interface. A GGUF file carries no tokenizer.json, only its parts (vocabulary,
 * merges, token types, special ids and the name of its pre-tokenizer), so `tokenizerJsonFromGguf` rebuilds
 * one, spelling each known pre-tokenizer the way the model's own tokenizer.json (and llama.cpp) splits text.
 */

import { Tokenizer as HfLibraryTokenizer } from '@huggingface/tokenizers';
import {
  TokenizerError,
  type DecodeOptions,
  type HfSpecialTokens,
  type HfTokenizerJSON,
  type SpecialTokenIds,
  type Tokenizer,
} from './tokenizer.ts';
import { isPlainObject } from '../util/objects.ts';

/** GGUF key-value metadata, as @huggingface/gguf returns it (its type has no index signature); only `tokenizer.*` keys are read. */
export type GgufMetadata = object;

function entry(metadata: GgufMetadata, key: string): unknown {
  return (metadata as Readonly<Record<string, unknown>>)[key];
}

const BYTE_LEVEL_DECODER = { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true };

/** Qwen2's split: case-insensitive contractions, words with one leading non-letter, single digits, punctuation runs, newlines. */
const QWEN2_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/** Llama 3's split: as Qwen2's but numbers in groups of up to three digits. */
const LLAMA3_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const isolate = (regex: string) => ({ type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false });
/** Byte-level mapping after a Split that already did the word splitting. */
const bytesOnly = (trimOffsets: boolean) => ({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: trimOffsets, use_regex: false });

interface PreTokenization {
  normalizer: object | null;
  pre_tokenizer: object;
  ignoreMerges: boolean;
}

/**
 * tokenizer.ggml.pre → how the model's tokenizer.json splits text. SmolLM2/StarCoder isolate every Unicode
 * number character (HF's `Digits` is Unicode-aware in Rust, but only ASCII in the JS library, hence a
 * Split on \p{N}) before GPT-2's byte-level regex. Llama 3 matches whole vocabulary words before merging
 * (`ignore_merges`).
 */
const PRE_TOKENIZATIONS: Readonly<Record<string, PreTokenization>> = {
  smollm: digitsThenGpt2(),
  starcoder: digitsThenGpt2(),
  qwen2: {
    normalizer: { type: 'NFC' },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [isolate(QWEN2_PATTERN), bytesOnly(false)] },
    ignoreMerges: false,
  },
  'llama-bpe': {
    normalizer: null,
    pre_tokenizer: { type: 'Sequence', pretokenizers: [isolate(LLAMA3_PATTERN), bytesOnly(true)] },
    ignoreMerges: true,
  },
};

function digitsThenGpt2(): PreTokenization {
  return {
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [isolate('\\p{N}'), { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true }],
    },
    ignoreMerges: false,
  };
}

/** llama.cpp's token types (tokenizer.ggml.token_type). */
const TOKEN_TYPE = { control: 3, userDefined: 4 } as const;

/** The `tokenizer.json` of a GGUF model's byte-level BPE tokenizer. */
export function tokenizerJsonFromGguf(metadata: GgufMetadata): Record<string, unknown> {
  const model = entry(metadata, 'tokenizer.ggml.model');
  if (model !== 'gpt2') {
    throw new Error(`GGUF metadata: tokenizer.ggml.model ${JSON.stringify(model)} is not supported (supported: "gpt2", byte-level BPE)`);
  }
  const pre = entry(metadata, 'tokenizer.ggml.pre');
  const split = typeof pre === 'string' ? PRE_TOKENIZATIONS[pre] : undefined;
  if (split === undefined) {
    const supported = Object.keys(PRE_TOKENIZATIONS).map((k) => JSON.stringify(k)).join(', ');
    throw new Error(`GGUF metadata: tokenizer.ggml.pre ${JSON.stringify(pre)} is not supported (supported: ${supported})`);
  }
  const tokens = stringArray(metadata, 'tokenizer.ggml.tokens');
  const merges = stringArray(metadata, 'tokenizer.ggml.merges');
  const types = entry(metadata, 'tokenizer.ggml.token_type');
  if (!Array.isArray(types) || types.length !== tokens.length) {
    throw new Error(`GGUF metadata: tokenizer.ggml.token_type must be an array of ${tokens.length} token types (one per token)`);
  }

  const vocab: Record<string, number> = {};
  const addedTokens: object[] = [];
  tokens.forEach((content, id) => {
    // A repeated string keeps its first id, the one encoding can reach; later copies decode all the same.
    if (!Object.hasOwn(vocab, content)) vocab[content] = id;
    const type = Number(types[id]);
    if (type === TOKEN_TYPE.control || type === TOKEN_TYPE.userDefined) {
      const special = type === TOKEN_TYPE.control;
      addedTokens.push({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: !special, special });
    }
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: split.normalizer,
    pre_tokenizer: split.pre_tokenizer,
    post_processor: null,
    decoder: BYTE_LEVEL_DECODER,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: split.ignoreMerges,
      vocab,
      merges,
    },
  };
}

/** The GGUF model's pad, BOS and EOS token strings; pad falls back to EOS when the model has none. */
export function ggufSpecialTokens(metadata: GgufMetadata): HfSpecialTokens {
  const tokens = stringArray(metadata, 'tokenizer.ggml.tokens');
  const token = (key: string): string | null => {
    const value = entry(metadata, key);
    if (value === undefined) return null;
    const id = Number(value);
    if (!Number.isInteger(id) || id < 0 || id >= tokens.length) {
      throw new Error(`GGUF metadata: ${key} ${String(value)} is not a token id in [0, ${tokens.length})`);
    }
    return tokens[id];
  };
  const eos = token('tokenizer.ggml.eos_token_id');
  if (eos === null) throw new Error('GGUF metadata: tokenizer.ggml.eos_token_id is missing');
  return { pad: token('tokenizer.ggml.padding_token_id') ?? eos, bos: token('tokenizer.ggml.bos_token_id'), eos };
}

function stringArray(metadata: GgufMetadata, key: string): string[] {
  const value = entry(metadata, key);
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw new Error(`GGUF metadata: ${key} must be an array of strings`);
  }
  return value;
}

export class HfTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly special: Readonly<SpecialTokenIds>;
  /** The model's Jinja chat template, if it has one. */
  readonly chatTemplate: string | null;
  private readonly inner: HfLibraryTokenizer;
  private readonly specialIds: ReadonlySet<number>;

  constructor(private readonly description: HfTokenizerJSON) {
    // Decoding must give back exactly the text that was encoded: no space clean-up.
    this.inner = new HfLibraryTokenizer(description.tokenizer, { clean_up_tokenization_spaces: false });
    const vocab = this.inner.get_vocab(true);
    let size = 0;
    for (const id of vocab.values()) size = Math.max(size, id + 1);
    this.vocabSize = size;
    this.specialIds = new Set([...this.inner.get_added_tokens_decoder()].filter(([, t]) => t.special).map(([id]) => id));
    const idOf = (field: keyof HfSpecialTokens, text: string) => {
      const id = this.inner.token_to_id(text);
      if (id === undefined) throw new Error(`huggingface tokenizer JSON: special.${field} ${JSON.stringify(text)} is not in the vocabulary`);
      return id;
    };
    const { pad, bos, eos } = description.special;
    this.special = Object.freeze({ pad: idOf('pad', pad), bos: bos === null ? null : idOf('bos', bos), eos: idOf('eos', eos) });
    this.chatTemplate = description.chatTemplate;
  }

  /** The tokenizer a GGUF model file describes, with its chat template. */
  static fromGguf(metadata: GgufMetadata): HfTokenizer {
    const template = entry(metadata, 'tokenizer.chat_template');
    if (template !== undefined && typeof template !== 'string') throw new Error('GGUF metadata: tokenizer.chat_template must be a string');
    return new HfTokenizer({
      kind: 'huggingface',
      tokenizer: tokenizerJsonFromGguf(metadata),
      special: ggufSpecialTokens(metadata),
      chatTemplate: template ?? null,
    });
  }

  /** Checks the fields of a `HfTokenizerJSON`-shaped value (e.g. read from a checkpoint). */
  static fromJSON(json: object): HfTokenizer {
    const { tokenizer, special, chatTemplate } = json as Partial<Record<keyof HfTokenizerJSON, unknown>>;
    if (!isPlainObject(tokenizer)) throw new Error('huggingface tokenizer JSON: "tokenizer" must be a tokenizer.json object');
    if (!isPlainObject(special)) throw new Error('huggingface tokenizer JSON: "special" must be an object');
    const { pad, bos, eos } = special;
    if (typeof pad !== 'string') throw new Error('huggingface tokenizer JSON: "special.pad" must be a token string');
    if (typeof eos !== 'string') throw new Error('huggingface tokenizer JSON: "special.eos" must be a token string');
    if (typeof bos !== 'string' && bos !== null) throw new Error('huggingface tokenizer JSON: "special.bos" must be a token string or null');
    if (typeof chatTemplate !== 'string' && chatTemplate !== null) throw new Error('huggingface tokenizer JSON: "chatTemplate" must be a string or null');
    return new HfTokenizer({ kind: 'huggingface', tokenizer, special: { pad, bos, eos }, chatTemplate });
  }

  encode(text: string): number[] {
    if (text.length === 0) return [];
    const { ids, tokens } = this.inner.encode(text, { add_special_tokens: false });
    const unknown = ids.findIndex((id: number | undefined) => id === undefined);
    if (unknown >= 0) throw new TokenizerError(`huggingface tokenizer: piece ${JSON.stringify(tokens[unknown])} of the text is not in the vocabulary`);
    return ids;
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const list = Array.from(ids);
    list.forEach((id, i) => this.check(id, `at position ${i} `));
    // The library refuses an empty list.
    if (list.length === 0) return '';
    return this.inner.decode(list, { skip_special_tokens: options.skipSpecial ?? false, clean_up_tokenization_spaces: false });
  }

  /** The token's vocabulary entry, in its byte-level form (e.g. "Ġthe" for " the"), as HF's convert_ids_to_tokens. */
  tokenToString(id: number): string {
    this.check(id, '');
    return this.inner.id_to_token(id) ?? '';
  }

  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  toJSON(): HfTokenizerJSON {
    return this.description;
  }

  private check(id: number, where: string): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize || this.inner.id_to_token(id) === undefined) {
      throw new RangeError(`huggingface tokenizer: token id ${id} ${where}is outside the vocabulary [0, ${this.vocabSize})`);
    }
  }
}
