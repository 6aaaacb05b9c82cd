/**
 * The real model of the tests: SmolLM2-135M-Instruct, as the project's set-up pulls it (`npm install`
 * runs `rise model pull smollm2-135m-instruct`) into the model store. A test that needs it fails with
 * what to run when it is missing, rather than skipping: a skipped parity test proves nothing.
 */
import { existsSync } from 'node:fs';
import { knownModel, sourcePath } from '../../src/models/pull.ts';
import { findModel, modelsHome, type StoredModel } from '../../src/models/store.ts';

export const SMOLLM2 = 'smollm2-135m-instruct';
const MISSING = `run \`node bin/rise.js model pull ${SMOLLM2}\` (npm install does it) so the model store ${modelsHome()} has it`;

/** The original GGUF file, kept by the pull. */
export function smollm2Gguf(): string {
  const path = sourcePath(modelsHome(), knownModel(SMOLLM2));
  if (!existsSync(path)) throw new Error(`the SmolLM2 GGUF file is not at ${path}: ${MISSING}`);
  return path;
}

/** The converted model in the model store. */
export function smollm2Stored(): StoredModel {
  try {
    return findModel(modelsHome(), SMOLLM2);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${MISSING}`);
  }
}
