/**
 * The model store: pretrained models converted once into the engine's checkpoint format, kept by
 * content so that a step key naming a model's digest names exactly the weights, tokenizer and chat
 * template it ran with.
 *
 *   <models>/<digest>/        a checkpoint directory (model.safetensors, config.json, tokenizer.json) whose
 *                             meta.json holds the model's card: where it came from, its size, its stop tokens
 *   <models>/names/<name>     the digest a short name stands for (`rise model pull` and `--name` set it)
 *
 * The store is shared by every experiment store on the machine (models are large and immutable), at
 * $RISE_MODELS, else $XDG_CACHE_HOME/rise/models, else ~/.cache/rise/models. Entries are written beside
 * their final place and renamed into it, so a reader never sees half a model; importing the same content
 * twice finds the entry already there.
 *
 * Across machines, models travel through the artifact location that RISE_ARTIFACTS names (src/artifacts):
 * the machine that plans a run publishes each model the plan names (`shareModel`), and a worker that lacks
 * one fetches it into its own model store (`loadStoredModel`). Published, a model is its files as blobs plus
 * a manifest under `models/<digest>.json`; the digest is recomputed from the manifest before anything in it
 * is used, so neither the manifest nor a file is ever taken on trust.
 */

import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { sharedArtifactLocation } from '../artifacts/config.ts';
import { getBlob, putBlob, type ArtifactLocation } from '../artifacts/location.ts';
import { loadCheckpoint, saveCheckpoint } from '../engine/checkpoint.ts';
import type { ModelConfig } from '../engine/config.ts';
import type { NamedTensor } from '../engine/tensor.ts';
import type { Tokenizer } from '../engine/tokenizer.ts';
import type { Env } from '../util/env.ts';
import { isPlainObject } from '../util/objects.ts';

/** A name or digest the store cannot resolve, or an entry that is not a model: the user must act. */
export class ModelStoreError extends Error {
  override name = 'ModelStoreError';
}

/** What chatting needs beyond the tokenizer (which holds the chat template and the special tokens). */
export interface ChatFormat {
  /** Token strings that end an assistant turn when generating (end-of-turn, end-of-sequence). */
  stop: string[];
}

export interface ModelCard {
  /** 64 hex digits: SHA-256 over the weights, config, tokenizer and chat format. */
  digest: string;
  source: { format: 'gguf' | 'huggingface'; architecture: string; file: string; sha256?: string };
  chat: ChatFormat;
  parameters: number;
}

export interface StoredModel {
  card: ModelCard;
  dir: string;
  config: ModelConfig;
  names: string[];
}

export interface NewModel {
  config: ModelConfig;
  params: NamedTensor[];
  tokenizer: Tokenizer;
  source: ModelCard['source'];
  chat: ChatFormat;
}

const DIGEST = /^[0-9a-f]{64}$/;
const NAME = /^[a-z0-9][a-z0-9._-]{0,99}$/;
/** The files a model's digest covers; meta.json is derived from them and the source. */
const CONTENT_FILES = ['config.json', 'model.safetensors', 'tokenizer.json'];

export function modelsHome(env: Env = process.env): string {
  if (env.RISE_MODELS) return resolve(env.RISE_MODELS);
  return join(env.XDG_CACHE_HOME ? resolve(env.XDG_CACHE_HOME) : join(homedir(), '.cache'), 'rise', 'models');
}

export function checkModelName(name: string): string {
  if (!NAME.test(name)) throw new ModelStoreError(`model name "${name}": use lower-case letters, digits, '.', '_' and '-' (at most 100)`);
  return name;
}

async function fileDigest(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The model digest over its content files' sha256s (file name → sha256) and its chat format. */
function digestOf(files: Readonly<Record<string, string>>, chat: ChatFormat): string {
  const parts = CONTENT_FILES.map((file) => `${file}:${files[file]}`);
  parts.push(`chat:${JSON.stringify(chat)}`);
  return createHash('sha256').update(parts.join('\n')).digest('hex');
}

async function contentDigest(dir: string, chat: ChatFormat): Promise<string> {
  const files: Record<string, string> = {};
  for (const file of CONTENT_FILES) files[file] = await fileDigest(join(dir, file));
  return digestOf(files, chat);
}

/** Saves a converted model (and its name, when given) and returns the stored entry. */
export async function addModel(home: string, model: NewModel, name?: string): Promise<StoredModel> {
  if (name !== undefined) checkModelName(name);
  await mkdir(home, { recursive: true });
  const staging = join(home, `.staging-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const parameters = model.params.reduce((n, p) => n + p.data.length, 0);
    await saveCheckpoint(staging, { config: model.config, tokenizer: model.tokenizer, params: model.params });
    const digest = await contentDigest(staging, model.chat);
    const card: ModelCard = { digest, source: model.source, chat: model.chat, parameters };
    await writeFile(join(staging, 'meta.json'), `${JSON.stringify({ model: card }, null, 2)}\n`);
    const dir = join(home, digest);
    if (existsSync(dir)) {
      await rm(staging, { recursive: true, force: true });
    } else {
      await rename(staging, dir);
    }
    if (name !== undefined) await setName(home, name, digest);
    return describe(home, digest);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

async function setName(home: string, name: string, digest: string): Promise<void> {
  const names = join(home, 'names');
  await mkdir(names, { recursive: true });
  const temp = join(names, `.${name}.${randomBytes(4).toString('hex')}`);
  await writeFile(temp, `${digest}\n`);
  await rename(temp, join(names, name));
}

function namesOf(home: string): Map<string, string> {
  const dir = join(home, 'names');
  const names = new Map<string, string>();
  if (!existsSync(dir)) return names;
  for (const name of readdirSync(dir)) {
    if (name.startsWith('.')) continue;
    names.set(name, readFileSync(join(dir, name), 'utf8').trim());
  }
  return names;
}

function readCard(dir: string): ModelCard {
  const where = `model ${dir}`;
  let meta: unknown;
  try {
    meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8'));
  } catch (err) {
    throw new ModelStoreError(`${where}: meta.json is missing or not JSON (${(err as Error).message})`);
  }
  const card = isPlainObject(meta) ? meta.model : undefined;
  if (!isPlainObject(card) || typeof card.digest !== 'string' || !isPlainObject(card.chat) || !isPlainObject(card.source)) {
    throw new ModelStoreError(`${where}: meta.json has no model card ("model": {digest, source, chat})`);
  }
  return card as unknown as ModelCard;
}

function describe(home: string, digest: string): StoredModel {
  const dir = join(home, digest);
  const card = readCard(dir);
  const config = (JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { model: ModelConfig }).model;
  const names = [...namesOf(home)].filter(([, d]) => d === digest).map(([n]) => n);
  return { card, dir, config, names };
}

/** Every model in the store, named ones first. */
export function listModels(home: string): StoredModel[] {
  if (!existsSync(home)) return [];
  const models = readdirSync(home)
    .filter((entry) => DIGEST.test(entry))
    .map((digest) => describe(home, digest));
  return models.sort((a, b) => Number(b.names.length > 0) - Number(a.names.length > 0) || (a.names[0] ?? a.card.digest).localeCompare(b.names[0] ?? b.card.digest));
}

/** A model by name, by digest (or a unique prefix of at least 8 hex digits). */
export function findModel(home: string, ref: string): StoredModel {
  const named = namesOf(home).get(ref);
  if (named !== undefined) {
    if (!existsSync(join(home, named))) throw new ModelStoreError(`model "${ref}" names ${named.slice(0, 12)}, which is not in the model store ${home}`);
    return describe(home, named);
  }
  if (/^[0-9a-f]{8,64}$/.test(ref) && existsSync(home)) {
    const matches = readdirSync(home).filter((entry) => DIGEST.test(entry) && entry.startsWith(ref));
    if (matches.length === 1) return describe(home, matches[0]);
    if (matches.length > 1) throw new ModelStoreError(`model digest prefix ${ref} is ambiguous (${matches.length} models); give more digits`);
  }
  const known = [...namesOf(home).keys()];
  throw new ModelStoreError(
    `no model "${ref}" in the model store ${home}` +
      (known.length > 0 ? ` (it has: ${known.join(', ')})` : ' (it is empty)') +
      `; \`rise model pull NAME\` fetches a known model, \`rise model import PATH\` converts a Hugging Face directory or GGUF file`,
  );
}

export interface LoadedPretrained {
  card: ModelCard;
  config: ModelConfig;
  params: NamedTensor[];
  tokenizer: Tokenizer;
}

/**
 * The weights and tokenizer of a stored model, checked against the files they were saved as. A model this
 * machine lacks is fetched from the shared artifact location (RISE_ARTIFACTS), when there is one.
 */
export async function loadStoredModel(home: string, digest: string, shared = sharedArtifactLocation()): Promise<LoadedPretrained> {
  if (!DIGEST.test(digest)) throw new ModelStoreError(`"${digest}" is not a model digest (64 hex digits)`);
  const dir = join(home, digest);
  if (!existsSync(dir)) {
    const where = `model ${digest.slice(0, 12)} is not in the model store ${home}`;
    if (shared === undefined) throw new ModelStoreError(`${where}; pull or import it on this machine, or share models through RISE_ARTIFACTS`);
    if (!(await fetchModel(shared, home, digest))) {
      throw new ModelStoreError(`${where} nor in the artifact location ${shared.url}; plan the run where the model is, with the same RISE_ARTIFACTS, or pull or import it on this machine`);
    }
  }
  const card = readCard(dir);
  const checkpoint = await loadCheckpoint(dir);
  return { card, config: checkpoint.config, params: checkpoint.params, tokenizer: checkpoint.tokenizer };
}

/** Recomputes a stored model's digest from its files: a changed or corrupted file shows here. */
export async function verifyModel(home: string, digest: string): Promise<boolean> {
  const dir = join(home, digest);
  return (await contentDigest(dir, readCard(dir).chat)) === digest;
}

const manifestKey = (digest: string) => `models/${digest}.json`;

/** A published model: its digest and the sha256 of each of its files (the content files and meta.json). */
interface ModelManifest {
  digest: string;
  files: Record<string, string>;
}

/**
 * Publishes a stored model to the artifact location every machine of a run reads (RISE_ARTIFACTS), so that
 * workers elsewhere find it; does nothing without one, or when the model is already there. The manifest is
 * written last, so its presence means every file is there.
 */
export async function shareModel(home: string, digest: string, shared = sharedArtifactLocation()): Promise<void> {
  if (shared === undefined || (await shared.size(manifestKey(digest))) !== undefined) return;
  const dir = join(home, digest);
  const files: Record<string, string> = {};
  for (const file of [...CONTENT_FILES, 'meta.json']) files[file] = await putBlob(shared, await readFile(join(dir, file)));
  if (digestOf(files, readCard(dir).chat) !== digest) throw new ModelStoreError(`model ${dir}: its files no longer match its digest (changed or corrupted); import it again`);
  const manifest: ModelManifest = { digest, files };
  await shared.write(manifestKey(digest), Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`));
}

/**
 * Copies a published model into the model store at `home`, checking every file against the manifest and
 * the manifest against the digest; false when the location does not have the model.
 */
async function fetchModel(shared: ArtifactLocation, home: string, digest: string): Promise<boolean> {
  const raw = await shared.read(manifestKey(digest));
  if (raw === undefined) return false;
  const where = `model ${digest.slice(0, 12)} in ${shared.url}`;
  let manifest: ModelManifest;
  try {
    manifest = JSON.parse(raw.toString('utf8')) as ModelManifest;
  } catch (err) {
    throw new ModelStoreError(`${where}: its manifest is not JSON (${(err as Error).message})`);
  }
  const meta = await getBlob(shared, manifest.files?.['meta.json'] ?? '');
  await mkdir(home, { recursive: true });
  const staging = join(home, `.staging-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await mkdir(staging);
    await writeFile(join(staging, 'meta.json'), meta);
    if (digestOf(manifest.files, readCard(staging).chat) !== digest) throw new ModelStoreError(`${where}: its manifest does not match the digest`);
    for (const file of CONTENT_FILES) await writeFile(join(staging, file), await getBlob(shared, manifest.files[file]));
    await rename(staging, join(home, digest)).catch((err: unknown) => {
      // Another process on this machine fetched it first: keep its copy.
      if (!existsSync(join(home, digest))) throw err;
    });
    return true;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
