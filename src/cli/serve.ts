/**
 * `rise serve MODEL`: an OpenAI-compatible server over one model (src/serve/server.ts; docs/serving.md).
 * MODEL is a model store name or digest, a checkpoint directory, or `RUN:ARM:ITERATION` — the model an
 * arm of a run had after that iteration (0 = the boosted model), so people can talk to what they trained.
 * Runs until SIGINT or SIGTERM.
 */

import { existsSync, statSync } from 'node:fs';
import { type Command, InvalidArgumentError } from 'commander';
import { checkpointDir } from '../../activities/models.ts';
import { Generator } from '../engine/generate.ts';
import { defaultThreads } from '../engine/session.ts';
import { loadCheckpointModel, loadModelForInference, type RunnableModel } from '../models/load.ts';
import { planFromJson } from '../plan/plan.ts';
import { chatTemplateFor } from '../rise/chat-template.ts';
import { doneOutputs } from '../steps/stored.ts';
import { getStep } from '../store/index.ts';
import { UsageError } from './errors.ts';
import { findRun, withStore } from './runs.ts';

const RUN_MODEL = /^([^:]+):([^:]+):(\d+)$/;

function integer(min: number, max: number) {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}, got "${value}"`);
    return n;
  };
}

/** The model arm `armName` of run `runId` had after `iteration`: its boosted model (0) or that iteration's trained one. */
async function runModel(runId: string, armName: string, iteration: number): Promise<RunnableModel> {
  return withStore(async (store) => {
    const run = await findRun(store, runId);
    const plan = planFromJson(run.plan);
    if (plan === null) throw new UsageError(`run ${run.id} has no plan in the store`);
    const arm = plan.arms.find((a) => a.name === armName);
    if (arm === undefined) throw new UsageError(`run ${run.id} has no arm "${armName}"; its arms: ${plan.arms.map((a) => a.name).join(', ')}`);
    const use = arm.steps.find((s) => (iteration === 0 ? s.kind === 'boost' && s.model === 'learner' : s.kind === 'train' && s.iteration === iteration));
    if (use === undefined) {
      const last = Math.max(0, ...arm.steps.map((s) => s.iteration));
      throw new UsageError(`arm ${armName} of run ${run.id} has iterations 0 (the boosted model) to ${last}; found ${iteration}`);
    }
    const kind = use.kind as 'boost' | 'train';
    const outputs = await doneOutputs(store, use.key, kind);
    if (outputs === undefined) {
      throw new UsageError(`the model of ${armName} after iteration ${iteration} is not in the store: its ${kind} step is ${(await getStep(store, use.key))?.status ?? 'not started'}`);
    }
    return loadCheckpointModel(await checkpointDir(store, outputs.model));
  });
}

async function loadServed(ref: string): Promise<RunnableModel> {
  const match = RUN_MODEL.exec(ref);
  if (match !== null && !(existsSync(ref) && statSync(ref).isDirectory())) return runModel(match[1], match[2], Number(match[3]));
  return loadModelForInference(ref);
}

interface ServeOptions {
  host: string;
  port: number;
  name?: string;
  batchSize: number;
  quiet?: boolean;
}

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('serve a model over an OpenAI-compatible HTTP API (chat completions, completions, models) until interrupted')
    .argument('<model>', 'a model store name or digest, a checkpoint directory, or RUN:ARM:ITERATION (0 = the boosted model)')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0 = any free port; the address is printed)', integer(0, 65535), 8000)
    .option('--name <name>', 'the model name clients send as `model` (default: MODEL as given)')
    .option('--batch-size <n>', 'most sequences decoded together; further requests wait their turn', integer(1, 1024), 32)
    .option('--quiet', 'no request log')
    .action(async (ref: string, options: ServeOptions) => {
      const model = await loadServed(ref);
      const { config, tokenizer } = model;
      const template = chatTemplateFor(tokenizer, model.stop);
      const batch = new Generator(config, model.params, tokenizer, { threads: defaultThreads() }).serve({ batchSize: options.batchSize });
      const id = options.name ?? ref;
      // Loaded here: the HTTP framework is this command's alone.
      const { createServer } = await import('../serve/server.ts');
      const app = createServer({ id, config, tokenizer, template, batch }, { logger: options.quiet ? false : { level: 'info' } });
      try {
        await app.listen({ host: options.host, port: options.port });
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EADDRINUSE' || code === 'EADDRNOTAVAIL' || code === 'EACCES') {
          throw new UsageError(`cannot listen on ${options.host}:${options.port}: ${(error as Error).message}`);
        }
        throw error;
      }
      const address = app.server.address();
      const port = typeof address === 'object' && address !== null ? address.port : options.port;
      process.stderr.write(`rise: serving "${id}" at http://${options.host}:${port}/v1 (context ${config.context}, batch ${options.batchSize}); Ctrl-C stops\n`);
      await new Promise<void>((done) => {
        const stop = () => done();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await app.close();
      await batch.close();
    });
}
