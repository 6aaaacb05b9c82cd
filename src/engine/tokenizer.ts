/**
 * Tokenizers behind one interface, so tasks, training and generation never depend on which kind a model
 * uses. What every vocabulary has is the end of a sequence and padding; a beginning-of-sequence token is
 * optional (Qwen2 has none). Chat role markers are not part of the interface: they belong to a format
 * (the compact template's markers are the char tokenizer's own specials; a Hugging Face model spells
 * its roles in its chat template).
 */

/** Text the tokenizer cannot encode: the data, not the run, must change (non-retryable). */
export class TokenizerError extends Error {
  override name = 'TokenizerError';
}

/** The special tokens every tokenizer names. */
export interface SpecialTokenIds {
  /** Fills batches past a sequence's end; models without a padding token use their end-of-sequence token. */
  pad: number;
  /** Null for a model that has none. */
  bos: number | null;
  eos: number;
}

export interface DecodeOptions {
  /** Leave special tokens out of the text instead of rendering their strings. */
  skipSpecial?: boolean;
}

export interface Tokenizer {
  readonly vocabSize: number;
  readonly special: Readonly<SpecialTokenIds>;
  /** Special-token strings in `text` become their single ids. Adds no BOS/EOS: callers frame sequences. */
  encode(text: string): number[];
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string;
  /** The token's vocabulary entry (for byte-level BPE in its byte-mapped form, e.g. "Ġthe"). */
  tokenToString(id: number): string;
  isSpecial(id: number): boolean;
  /** A JSON-safe description that `tokenizerFromJSON` (tokenizer-json.ts) turns back into an identical tokenizer. */
  toJSON(): TokenizerJSON;
}

/** The char tokenizer's specials: the generic three, then the compact chat format's role markers and turn end. */
export const SPECIAL_TOKEN_NAMES = ['pad', 'bos', 'eos', 'system', 'user', 'assistant', 'end'] as const;
export type SpecialTokenName = (typeof SPECIAL_TOKEN_NAMES)[number];
export type CharSpecialTokenIds = Record<SpecialTokenName, number>;

export interface CharTokenizerJSON {
  kind: 'char';
  specials: Record<SpecialTokenName, string>;
  /** The characters after the specials, in id order. */
  chars: string;
}

/** Which specials a Hugging Face tokenizer uses, by token string (as tokenizer_config.json names them). */
export interface HfSpecialTokens {
  pad: string;
  bos: string | null;
  eos: string;
}

export interface HfTokenizerJSON {
  kind: 'huggingface';
  /** A Hugging Face `tokenizer.json` object. */
  tokenizer: Record<string, unknown>;
  special: HfSpecialTokens;
  /** The model's Jinja chat template (tokenizer_config.json's, or GGUF's tokenizer.chat_template), if it has one. */
  chatTemplate: string | null;
}

export type TokenizerJSON = CharTokenizerJSON | HfTokenizerJSON;

export const DEFAULT_SPECIAL_STRINGS: Readonly<Record<SpecialTokenName, string>> = {
  pad: '<|pad|>',
  bos: '<|bos|>',
  eos: '<|eos|>',
  system: '<|system|>',
  user: '<|user|>',
  assistant: '<|assistant|>',
  end: '<|end|>',
};

/** Tab, newline and printable ASCII: enough for the built-in tasks and a small, stable vocabulary. */
export const DEFAULT_CHARS = '\t\n' + String.fromCharCode(...Array.from({ length: 0x7f - 0x20 }, (_, i) => 0x20 + i));

/**
 * One token per character, after the special tokens (pad = 0). Built from an explicit description so a
 * checkpoint's tokenizer.json keeps decoding the same way even if the defaults change later.
 */
export class CharTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly special: Readonly<CharSpecialTokenIds>;
  private readonly specialStrings: Record<SpecialTokenName, string>;
  private readonly chars: string;
  private readonly idToString: string[];
  private readonly charToId: Map<string, number>;
  /** Longest first, so a special whose string starts with another special's string still wins. */
  private readonly specialsByLength: { text: string; id: number }[];
  /** First UTF-16 units of the special strings: only there can a special start, which keeps plain text fast. */
  private readonly specialStarts: Set<number>;

  constructor(
    specials: Readonly<Record<SpecialTokenName, string>> = DEFAULT_SPECIAL_STRINGS,
    chars: string = DEFAULT_CHARS,
  ) {
    this.specialStrings = { ...specials };
    this.chars = chars;
    const special = {} as CharSpecialTokenIds;
    this.idToString = [];
    const seen = new Map<string, string>();
    SPECIAL_TOKEN_NAMES.forEach((name, id) => {
      const text = specials[name];
      if (typeof text !== 'string' || text.length === 0) {
        throw new Error(`char tokenizer: special token "${name}" must be a non-empty string, got ${JSON.stringify(text)}`);
      }
      const clash = seen.get(text);
      if (clash !== undefined) {
        throw new Error(`char tokenizer: special token "${name}" (${JSON.stringify(text)}) duplicates ${clash}`);
      }
      seen.set(text, `special token "${name}"`);
      special[name] = id;
      this.idToString.push(text);
    });
    this.special = Object.freeze(special);
    this.specialsByLength = this.idToString
      .map((text, id) => ({ text, id }))
      .sort((a, b) => b.text.length - a.text.length);
    this.specialStarts = new Set(this.idToString.map((text) => text.charCodeAt(0)));

    this.charToId = new Map();
    let position = 0;
    for (const ch of chars) {
      const clash = seen.get(ch);
      if (clash !== undefined) {
        throw new Error(`char tokenizer: character ${JSON.stringify(ch)} at position ${position} duplicates ${clash}`);
      }
      seen.set(ch, `the character at position ${position}`);
      this.charToId.set(ch, this.idToString.length);
      this.idToString.push(ch);
      position++;
    }
    this.vocabSize = this.idToString.length;
  }

  encode(text: string): number[] {
    const ids: number[] = [];
    let i = 0;
    outer: while (i < text.length) {
      if (this.specialStarts.has(text.charCodeAt(i))) {
        for (const s of this.specialsByLength) {
          if (text.startsWith(s.text, i)) {
            ids.push(s.id);
            i += s.text.length;
            continue outer;
          }
        }
      }
      const codePoint = text.codePointAt(i)!;
      const ch = String.fromCodePoint(codePoint);
      const id = this.charToId.get(ch);
      if (id === undefined) {
        const hex = codePoint.toString(16).toUpperCase().padStart(4, '0');
        throw new TokenizerError(`char tokenizer: unknown character ${JSON.stringify(ch)} (U+${hex}) at index ${i} of the text`);
      }
      ids.push(id);
      i += ch.length;
    }
    return ids;
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const parts: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (options.skipSpecial && this.isSpecial(id)) continue;
      parts.push(this.lookup(id, `at position ${i} `));
    }
    return parts.join('');
  }

  tokenToString(id: number): string {
    return this.lookup(id, '');
  }

  isSpecial(id: number): boolean {
    return Number.isInteger(id) && id >= 0 && id < SPECIAL_TOKEN_NAMES.length;
  }

  toJSON(): CharTokenizerJSON {
    return { kind: 'char', specials: { ...this.specialStrings }, chars: this.chars };
  }

  private lookup(id: number, where: string): string {
    const text = Number.isInteger(id) ? this.idToString[id] : undefined;
    if (text === undefined) {
      throw new RangeError(`char tokenizer: token id ${id} ${where}is outside the vocabulary [0, ${this.vocabSize})`);
    }
    return text;
  }
}

/** The char tokenizer of a `CharTokenizerJSON`-shaped value, with errors naming the field that is wrong. */
export function charTokenizerFromJSON(json: object): CharTokenizer {
  const { specials, chars } = json as { specials?: unknown; chars?: unknown };
  if (typeof specials !== 'object' || specials === null || Array.isArray(specials)) {
    throw new Error(`char tokenizer JSON: "specials" must be an object, got ${describe(specials)}`);
  }
  const unknownKeys = Object.keys(specials).filter((k) => !(SPECIAL_TOKEN_NAMES as readonly string[]).includes(k));
  if (unknownKeys.length > 0) {
    throw new Error(`char tokenizer JSON: unknown special token(s) ${unknownKeys.map((k) => `"${k}"`).join(', ')}`);
  }
  if (typeof chars !== 'string') {
    throw new Error(`char tokenizer JSON: "chars" must be a string, got ${describe(chars)}`);
  }
  return new CharTokenizer(specials as Record<SpecialTokenName, string>, chars);
}

function describe(value: unknown): string {
  return value === undefined ? 'nothing' : JSON.stringify(value);
}
