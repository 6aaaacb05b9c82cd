/**
 * A checkpoint is a directory:
 *   model.safetensors      parameters, in parameterSpecs order
 *   config.json            { format, version, model: ModelConfig, lora?: LoraConfig }
 *   tokenizer.json         tokenizer.toJSON()
 *   optimizer.safetensors  optional AdamW state; the step count is in its metadata
 *   meta.json              optional free-form JSON object (step, metrics, …)
 * A LoRA checkpoint (config.json has `lora`) holds adapters.safetensors (the adapters, in loraSpecs
 * order) instead of model.safetensors, and its optimizer state is the adapters'. It does not hold the
 * base parameters: whoever saves it keeps a reference to the base model beside it.
 * Saving builds the directory beside the target and renames it into place, so a reader sees either the
 * old checkpoint or the new one, never a mix or a half-written file.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { isPlainObject } from '../util/objects.ts';
import { resolveModelConfig, type ModelConfig } from './config.ts';
import { loraSpecs, resolveLoraConfig, type LoraConfig } from './lora.ts';
import { parameterSpecs } from './parameters.ts';
import { readSafetensors, writeSafetensors } from './safetensors.ts';
import type { NamedTensor } from './tensor.ts';
import type { Tokenizer } from './tokenizer.ts';
import { tokenizerFromJSON } from './tokenizer-json.ts';

export const CHECKPOINT_FORMAT = 'rise-checkpoint';
export const CHECKPOINT_VERSION = 1;

export interface OptimizerState {
  /** Number of optimizer steps taken; AdamW's bias correction depends on it. */
  step: number;
  tensors: NamedTensor[];
}

export interface Checkpoint {
  config: ModelConfig;
  tokenizer: Tokenizer;
  /** The model's parameters; in a LoRA checkpoint, the adapters (`lora.layers.i.<target>.a|b`). */
  params: NamedTensor[];
  /** Set in a LoRA checkpoint, whose base parameters live elsewhere (see the file comment). */
  lora?: LoraConfig;
  optimizer?: OptimizerState;
  meta?: Record<string, unknown>;
}

const MODEL_FILE = 'model.safetensors';
const ADAPTERS_FILE = 'adapters.safetensors';
const CONFIG_FILE = 'config.json';
const TOKENIZER_FILE = 'tokenizer.json';
const OPTIMIZER_FILE = 'optimizer.safetensors';
const META_FILE = 'meta.json';

type OptionalConfigKey = 'qkvBias' | 'ropeScaling';

/** Typed as a record over ModelConfig's keys, so adding a config field without listing it here fails to compile. */
const MODEL_CONFIG_FIELDS: Record<Exclude<keyof ModelConfig, OptionalConfigKey>, 'number' | 'boolean'> = {
  vocabSize: 'number',
  layers: 'number',
  dim: 'number',
  heads: 'number',
  kvHeads: 'number',
  hidden: 'number',
  context: 'number',
  ropeTheta: 'number',
  normEps: 'number',
  tiedEmbeddings: 'boolean',
  seed: 'number',
};

/** The architecture extensions: absent, or exactly this shape. */
const OPTIONAL_CONFIG_FIELDS: Record<OptionalConfigKey, (v: unknown) => boolean> = {
  qkvBias: (v) => v === true,
  ropeScaling: (v) =>
    isPlainObject(v) &&
    v.kind === 'llama3' &&
    ['factor', 'lowFreqFactor', 'highFreqFactor', 'originalContext'].every((k) => typeof v[k] === 'number' && Number.isFinite(v[k])),
};

/** Validates everything before touching the disk, so an inconsistent checkpoint is never written. */
export async function saveCheckpoint(dir: string, checkpoint: Checkpoint): Promise<void> {
  const target = resolve(dir);
  const where = `checkpoint ${target}`;
  const config = checkConfig(checkpoint.config, `${where}: config`);
  const lora = checkpoint.lora === undefined ? undefined : checkLora(checkpoint.lora, `${where}: lora`);
  checkVocab(checkpoint.tokenizer, config, where);
  const params = orderParams(checkpoint.params, config, lora, `${where}: params`);
  if (checkpoint.optimizer !== undefined) checkStep(checkpoint.optimizer.step, `${where}: optimizer`);
  if (checkpoint.meta !== undefined && !isPlainObject(checkpoint.meta)) {
    throw new Error(`${where}: meta must be a plain object`);
  }

  await mkdir(dirname(target), { recursive: true });
  const temp = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  await mkdir(temp);
  try {
    await writeSafetensors(join(temp, lora === undefined ? MODEL_FILE : ADAPTERS_FILE), params);
    await writeJSON(join(temp, CONFIG_FILE), { format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, model: config, ...(lora === undefined ? {} : { lora }) });
    await writeJSON(join(temp, TOKENIZER_FILE), checkpoint.tokenizer.toJSON());
    if (checkpoint.optimizer !== undefined) {
      const { step, tensors } = checkpoint.optimizer;
      await writeSafetensors(join(temp, OPTIMIZER_FILE), tensors, { step: String(step) });
    }
    if (checkpoint.meta !== undefined) await writeJSON(join(temp, META_FILE), checkpoint.meta);
    await syncDirectory(temp);
    await moveIntoPlace(temp, target);
  } catch (e) {
    await rm(temp, { recursive: true, force: true });
    throw e;
  }
}

/**
 * Files are read one by one, so a save landing mid-read could mix two versions. Each save renames a new
 * directory into place, so a changed directory identity (device, inode, ctime) exposes that; the read
 * is then repeated on the new version.
 */
export async function loadCheckpoint(dir: string): Promise<Checkpoint> {
  const target = resolve(dir);
  const where = `checkpoint ${target}`;
  for (let attempt = 1; attempt <= LOAD_ATTEMPTS; attempt++) {
    const before = await directoryIdentity(target, where);
    if (before === undefined) {
      if (attempt === 1) throw new Error(`${where}: directory does not exist`);
      // Caught between a save moving the old copy aside and renaming the new one in.
      await new Promise((done) => setTimeout(done, 10));
      continue;
    }
    try {
      const checkpoint = await readCheckpoint(target, where);
      if ((await directoryIdentity(target, where)) === before) return checkpoint;
    } catch (e) {
      if ((await directoryIdentity(target, where)) === before) throw e;
    }
  }
  throw new Error(`${where}: replaced by concurrent saves on each of ${LOAD_ATTEMPTS} attempts to read it`);
}

const LOAD_ATTEMPTS = 10;

async function directoryIdentity(path: string, where: string): Promise<string | undefined> {
  try {
    const info = await stat(path, { bigint: true });
    if (!info.isDirectory()) throw new Error(`${where}: not a directory`);
    return `${info.dev}:${info.ino}:${info.ctimeNs}`;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

async function readCheckpoint(target: string, where: string): Promise<Checkpoint> {
  const configJSON = await readJSON(target, CONFIG_FILE, where);
  const { config, lora } = parseConfigFile(configJSON, `${where}: ${CONFIG_FILE}`);

  const tokenizerJSON = await readJSON(target, TOKENIZER_FILE, where);
  let tokenizer: Tokenizer;
  try {
    tokenizer = tokenizerFromJSON(tokenizerJSON);
  } catch (e) {
    throw new Error(`${where}: ${TOKENIZER_FILE}: ${(e as Error).message}`);
  }
  checkVocab(tokenizer, config, where);

  const file = lora === undefined ? MODEL_FILE : ADAPTERS_FILE;
  await requireFile(target, file, where);
  const model = await readSafetensors(join(target, file));
  const params = orderParams(model.tensors, config, lora, `${where}: ${file}`);

  const checkpoint: Checkpoint = { config, tokenizer, params, ...(lora === undefined ? {} : { lora }) };
  if (await exists(join(target, OPTIMIZER_FILE))) {
    const optimizer = await readSafetensors(join(target, OPTIMIZER_FILE));
    const stepText = optimizer.metadata.step;
    const step = stepText !== undefined && /^\d+$/.test(stepText) ? Number(stepText) : NaN;
    checkStep(step, `${where}: ${OPTIMIZER_FILE}: metadata "step" (${JSON.stringify(stepText)})`);
    checkpoint.optimizer = { step, tensors: optimizer.tensors };
  }
  if (await exists(join(target, META_FILE))) {
    const meta = await readJSON(target, META_FILE, where);
    if (!isPlainObject(meta)) throw new Error(`${where}: ${META_FILE} must hold a JSON object`);
    checkpoint.meta = meta;
  }
  return checkpoint;
}

function parseConfigFile(json: unknown, where: string): { config: ModelConfig; lora?: LoraConfig } {
  if (!isPlainObject(json)) throw new Error(`${where}: must hold a JSON object`);
  if (json.format !== CHECKPOINT_FORMAT) {
    throw new Error(`${where}: "format" must be "${CHECKPOINT_FORMAT}", got ${JSON.stringify(json.format)}`);
  }
  if (json.version !== CHECKPOINT_VERSION) {
    throw new Error(`${where}: unsupported "version" ${JSON.stringify(json.version)} (this build reads ${CHECKPOINT_VERSION})`);
  }
  const config = checkConfig(json.model, `${where}: "model"`);
  return json.lora === undefined ? { config } : { config, lora: checkLora(json.lora, `${where}: "lora"`) };
}

const LORA_FIELDS = ['rank', 'alpha', 'targets', 'dropout'];

/** Exactly LoraConfig's fields, valid, with the targets in canonical order (as resolveLoraConfig leaves them). */
function checkLora(value: unknown, where: string): LoraConfig {
  if (!isPlainObject(value)) throw new Error(`${where}: must be an object`);
  for (const key of Object.keys(value)) if (!LORA_FIELDS.includes(key)) throw new Error(`${where}: unknown field "${key}"`);
  for (const key of LORA_FIELDS) if (!(key in value)) throw new Error(`${where}: "${key}" is missing`);
  let lora: LoraConfig;
  try {
    lora = resolveLoraConfig(value as unknown as LoraConfig);
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`);
  }
  if (JSON.stringify(lora.targets) !== JSON.stringify(value.targets)) {
    throw new Error(`${where}: "targets" must be in the order ${JSON.stringify(lora.targets)}, got ${JSON.stringify(value.targets)}`);
  }
  return lora;
}

/**
 * Every field must be present and well typed: a checkpoint names its model exactly, so defaults filled
 * in at load time could silently describe a different model than the one trained.
 */
function checkConfig(value: unknown, where: string): ModelConfig {
  if (!isPlainObject(value)) throw new Error(`${where}: must be an object`);
  for (const key of Object.keys(value)) {
    if (!Object.hasOwn(MODEL_CONFIG_FIELDS, key) && !Object.hasOwn(OPTIONAL_CONFIG_FIELDS, key)) throw new Error(`${where}: unknown field "${key}"`);
  }
  for (const [key, valid] of Object.entries(OPTIONAL_CONFIG_FIELDS)) {
    if (key in value && !valid(value[key])) throw new Error(`${where}: "${key}" is malformed, got ${JSON.stringify(value[key])}`);
  }
  for (const [key, type] of Object.entries(MODEL_CONFIG_FIELDS)) {
    const v = value[key];
    if (typeof v !== type || (type === 'number' && !Number.isFinite(v))) {
      throw new Error(`${where}: "${key}" must be a ${type === 'number' ? 'finite number' : type}, got ${JSON.stringify(v)}`);
    }
  }
  try {
    return resolveModelConfig(value as unknown as ModelConfig);
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`);
  }
}

/** Checks names and shapes against the config and returns the tensors in parameterSpecs (or loraSpecs) order. */
function orderParams(params: readonly NamedTensor[], config: ModelConfig, lora: LoraConfig | undefined, where: string): NamedTensor[] {
  const byName = new Map<string, NamedTensor>();
  for (const p of params) {
    if (byName.has(p.name)) throw new Error(`${where}: duplicate parameter "${p.name}"`);
    byName.set(p.name, p);
  }
  const specs = lora === undefined ? parameterSpecs(config) : loraSpecs(config, lora);
  const expected = new Set(specs.map((s) => s.name));
  const unexpected = params.filter((p) => !expected.has(p.name)).map((p) => `"${p.name}"`);
  if (unexpected.length > 0) throw new Error(`${where}: parameters not in the model config: ${unexpected.join(', ')}`);
  const missing = specs.filter((s) => !byName.has(s.name)).map((s) => `"${s.name}"`);
  if (missing.length > 0) throw new Error(`${where}: missing parameters: ${missing.join(', ')}`);
  return specs.map((spec) => {
    const p = byName.get(spec.name)!;
    if (p.shape.length !== spec.shape.length || p.shape.some((d, i) => d !== spec.shape[i])) {
      throw new Error(`${where}: parameter "${p.name}" has shape [${p.shape}] but the config expects [${spec.shape}]`);
    }
    return p;
  });
}

function checkVocab(tokenizer: Tokenizer, config: ModelConfig, where: string): void {
  // A larger model vocabulary is allowed (padded for speed); a larger tokenizer would emit ids with no embedding.
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new Error(`${where}: tokenizer has ${tokenizer.vocabSize} tokens but the model config only ${config.vocabSize}`);
  }
}

function checkStep(step: number, where: string): void {
  if (!Number.isSafeInteger(step) || step < 0) throw new Error(`${where}: step must be a non-negative integer, got ${step}`);
}

/**
 * rename() replaces an absent or empty directory atomically. A non-empty one must be moved aside first;
 * for that brief moment the target is absent (a reader gets "does not exist"), never half-written.
 */
async function moveIntoPlace(temp: string, target: string): Promise<void> {
  let aside: string | undefined;
  try {
    await rename(temp, target);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
    aside = `${target}.old-${process.pid}-${randomBytes(4).toString('hex')}`;
    await rename(target, aside);
    try {
      await rename(temp, target);
    } catch (e2) {
      await rename(aside, target);
      throw e2;
    }
  }
  // Makes the rename itself durable before the old copy is gone.
  await syncDirectory(dirname(target));
  if (aside !== undefined) await rm(aside, { recursive: true, force: true });
}

async function writeJSON(path: string, value: unknown): Promise<void> {
  const handle = await open(path, 'w');
  try {
    await handle.writeFile(JSON.stringify(value, null, 2) + '\n');
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** A directory's entries are durable only once the directory itself is synced (POSIX; Windows cannot open one). */
async function syncDirectory(path: string): Promise<void> {
  if (process.platform === 'win32') return;
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function readJSON(dir: string, file: string, where: string): Promise<unknown> {
  await requireFile(dir, file, where);
  const text = await readFile(join(dir, file), 'utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${where}: ${file} is not valid JSON: ${(e as Error).message}`);
  }
}

async function requireFile(dir: string, file: string, where: string): Promise<void> {
  if (!(await exists(join(dir, file)))) throw new Error(`${where}: missing ${file}`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}
