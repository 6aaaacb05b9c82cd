/**
 * Pulls the models the tests and the example experiments use into the model store (the same as
 * `rise model pull NAME`), unless they are there already. Runs after `npm install`/`npm ci`.
 *
 *   node --import tsx scripts/setup-models.ts               # exit 1 if a model cannot be pulled
 *   node --import tsx scripts/setup-models.ts --postinstall # (npm ci) warn instead of failing the install
 *
 * RISE_SKIP_MODEL_SETUP=1 skips it (e.g. a machine that only orchestrates and never runs a model).
 */

import { pullModel } from '../src/models/pull.ts';
import { modelsHome } from '../src/models/store.ts';

/** SmolLM2-135M-Instruct: the real model of the tests and of experiments/gsm8k-smollm2.json. */
const MODELS = ['smollm2-135m-instruct'];

const postinstall = process.argv.includes('--postinstall');

async function main(): Promise<void> {
  if (/^(1|true|yes)$/i.test(process.env.RISE_SKIP_MODEL_SETUP ?? '')) {
    console.error('rise: RISE_SKIP_MODEL_SETUP is set; not pulling models');
    return;
  }
  const home = modelsHome();
  for (const name of MODELS) {
    const started = Date.now();
    const { model, pulled } = await pullModel(home, name, { log: (line) => console.error(`rise: ${line}`) });
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    console.error(`rise: model ${name} ${pulled ? `pulled in ${seconds} s` : 'already in the store'}: ${model.dir}`);
  }
}

try {
  await main();
} catch (err) {
  console.error(`rise: ${err instanceof Error ? err.message : String(err)}`);
  if (postinstall) console.error('rise: continuing the install without the model; `rise model pull` fetches it later, and the tests that need it fail until then.');
  process.exitCode = postinstall ? 0 : 1;
}
