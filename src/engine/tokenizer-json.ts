/**
 * A tokenizer back from its saved description (a checkpoint's tokenizer.json), whatever its kind. Lives
 * apart from tokenizer.ts because it needs every implementation, and they all need that module's types.
 */

import { HfTokenizer } from './hf-tokenizer.ts';
import { charTokenizerFromJSON, type Tokenizer } from './tokenizer.ts';

/** Rebuilds a tokenizer from `toJSON()` output, dispatching on `kind`. */
export function tokenizerFromJSON(json: unknown): Tokenizer {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new Error(`tokenizer JSON must be an object, got ${json === undefined ? 'nothing' : JSON.stringify(json)}`);
  }
  const { kind } = json as { kind?: unknown };
  if (kind === undefined) throw new Error('tokenizer JSON has no "kind" field');
  switch (kind) {
    case 'char':
      return charTokenizerFromJSON(json);
    case 'huggingface':
      return HfTokenizer.fromJSON(json);
    default:
      throw new Error(`tokenizer kind ${JSON.stringify(kind)} is not supported (supported: "char", "huggingface")`);
  }
}
