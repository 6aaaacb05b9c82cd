/**
 * A pretrained model from a local path — a GGUF file or a Hugging Face checkpoint directory — as
 * everything the engine and the chat layer need: config, parameters in the engine's layout, the
 * tokenizer's source, the chat template and the tokens that end a turn.
 */
import { existsSync } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ModelConfig } from '../engine/config.ts';
import type { NamedTensor } from '../engine/tensor.ts';
import { isPlainObject } from '../util/objects.ts';
import { readGgufModel } from './gguf.ts';
import { readHuggingFaceModel, readJsonFile } from './huggingface.ts';

export interface PretrainedModel {
  config: ModelConfig;
  params: NamedTensor[];
  source: { format: 'gguf' | 'huggingface'; architecture: string; file: string };
  /** A Hugging Face directory's tokenizer.json, verbatim; null for GGUF (see ggufTokenizerMetadata) or when absent. */
  tokenizer: { json: object } | null;
  /** A GGUF file's "tokenizer.*" metadata, verbatim, for building a tokenizer from it. */
  ggufTokenizerMetadata?: Record<string, unknown>;
  chatTemplate: string | null;
  specialTokens: { bos: string | null; eos: string | null; pad: string | null };
  /** Token strings that end generation: eos, the generation config's eos ids, the template's end-of-turn marker. */
  generationStop: string[];
  /** What the import changed from the model's own config (e.g. a context limited to its attention window). */
  notes: string[];
}

/** End-of-turn markers of common chat templates; one counts as a stop only where the template emits it. */
const END_OF_TURN = ['<|im_end|>', '<|eot_id|>', '<|end|>', '<end_of_turn>', '<|endoftext|>', '<|end_of_text|>'];

export async function readPretrained(path: string): Promise<PretrainedModel> {
  const file = resolve(path);
  let info;
  try {
    info = await stat(file);
  } catch (e) {
    throw new Error(`${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (info.isDirectory()) return readHuggingFaceDirectory(file);
  if (await isGguf(file)) return readGgufFile(file);
  throw new Error(`${file}: neither a GGUF file nor a Hugging Face checkpoint directory`);
}

async function isGguf(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const magic = new Uint8Array(4);
    await handle.read(magic, 0, 4, 0);
    return new TextDecoder().decode(magic) === 'GGUF';
  } finally {
    await handle.close();
  }
}

async function readGgufFile(file: string): Promise<PretrainedModel> {
  const model = await readGgufModel(file);
  const metadata = model.metadata;
  const tokens = metadata['tokenizer.ggml.tokens'];
  const token = (key: string): string | null => {
    const id = metadata[key];
    if (id === undefined) return null;
    if (!Array.isArray(tokens) || typeof tokens[Number(id)] !== 'string') {
      throw new Error(`${file}: "${key}" (${String(id)}) names no entry of "tokenizer.ggml.tokens"`);
    }
    return tokens[Number(id)] as string;
  };
  const template = metadata['tokenizer.chat_template'];
  const chatTemplate = typeof template === 'string' ? template : null;
  const specialTokens = {
    bos: token('tokenizer.ggml.bos_token_id'),
    eos: token('tokenizer.ggml.eos_token_id'),
    pad: token('tokenizer.ggml.padding_token_id'),
  };
  return {
    config: model.config,
    params: model.params,
    source: { format: 'gguf', architecture: model.architecture, file },
    tokenizer: null,
    ggufTokenizerMetadata: Object.fromEntries(Object.entries(metadata).filter(([k]) => k.startsWith('tokenizer.'))),
    chatTemplate,
    specialTokens,
    generationStop: stops([specialTokens.eos], chatTemplate),
    notes: [],
  };
}

async function readHuggingFaceDirectory(dir: string): Promise<PretrainedModel> {
  const model = await readHuggingFaceModel(dir);
  const optionalJson = async (name: string) => (existsSync(join(dir, name)) ? readJsonFile(join(dir, name)) : undefined);
  const tokenizerJson = await optionalJson('tokenizer.json');
  if (tokenizerJson !== undefined && !isPlainObject(tokenizerJson)) throw new Error(`${join(dir, 'tokenizer.json')}: must hold a JSON object`);
  const tokenizerConfig = await optionalJson('tokenizer_config.json');
  const settings = isPlainObject(tokenizerConfig) ? tokenizerConfig : {};
  const generation = await optionalJson('generation_config.json');

  const specialTokens = { bos: tokenText(settings.bos_token), eos: tokenText(settings.eos_token), pad: tokenText(settings.pad_token) };
  const chatTemplate = existsSync(join(dir, 'chat_template.jinja'))
    ? await readFile(join(dir, 'chat_template.jinja'), 'utf8')
    : templateText(settings.chat_template);
  const eosIds = isPlainObject(generation) ? [generation.eos_token_id].flat() : [];
  const vocabulary = tokenizerJson !== undefined ? tokenById(tokenizerJson) : () => null;
  return {
    config: model.config,
    params: model.params,
    source: { format: 'huggingface', architecture: model.architecture, file: dir },
    tokenizer: tokenizerJson !== undefined ? { json: tokenizerJson } : null,
    chatTemplate,
    specialTokens,
    generationStop: stops([specialTokens.eos, ...eosIds.map((id) => (typeof id === 'number' ? vocabulary(id) : null))], chatTemplate),
    notes: model.notes,
  };
}

function stops(tokens: (string | null)[], chatTemplate: string | null): string[] {
  const turnEnds = chatTemplate === null ? [] : END_OF_TURN.filter((marker) => chatTemplate.includes(marker));
  return [...new Set([...tokens, ...turnEnds].filter((t): t is string => t !== null))];
}

/** tokenizer_config.json writes a special token as its text or as an AddedToken object. */
function tokenText(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (isPlainObject(value) && typeof value.content === 'string') return value.content;
  return null;
}

/** A chat template is a string, or a list of named ones of which "default" is the chat template. */
function templateText(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const named = value.find((t) => isPlainObject(t) && t.name === 'default');
    return isPlainObject(named) && typeof named.template === 'string' ? named.template : null;
  }
  return null;
}

/** id → token text from a tokenizer.json: its added tokens, then the model's vocabulary (BPE/WordPiece map, Unigram list). */
function tokenById(json: Record<string, unknown>): (id: number) => string | null {
  const byId = new Map<number, string>();
  const model = isPlainObject(json.model) ? json.model : {};
  if (isPlainObject(model.vocab)) {
    for (const [text, id] of Object.entries(model.vocab)) if (typeof id === 'number') byId.set(id, text);
  } else if (Array.isArray(model.vocab)) {
    model.vocab.forEach((entry, id) => Array.isArray(entry) && typeof entry[0] === 'string' && byId.set(id, entry[0]));
  }
  if (Array.isArray(json.added_tokens)) {
    for (const t of json.added_tokens) if (isPlainObject(t) && typeof t.id === 'number' && typeof t.content === 'string') byId.set(t.id, t.content);
  }
  return (id) => byId.get(id) ?? null;
}
