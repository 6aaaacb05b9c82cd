/** `rise serve` as a user starts it (the CLI, in its own process), for the tests that talk to it over HTTP. */

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveCheckpoint } from '../../src/engine/checkpoint.ts';
import { resolveModelConfig, type ModelConfig } from '../../src/engine/config.ts';
import { initParameters } from '../../src/engine/parameters.ts';
import type { NamedTensor } from '../../src/engine/tensor.ts';
import { CharTokenizer } from '../../src/engine/tokenizer.ts';
import { BIN, ROOT } from '../workflows/helpers.ts';

export interface RunningServer {
  /** e.g. http://127.0.0.1:41234/v1 */
  baseUrl: string;
  process: ChildProcess;
  /** Everything the server printed so far (stdout and stderr). */
  output(): string;
  /** SIGKILL: no chance to finish anything. */
  kill(): Promise<void>;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<number | null>;
}

/** Whoever cleans up: a test's context (`t`), or `{ after }` of node:test for a whole suite. */
export interface Cleanup {
  after(fn: () => unknown): void;
}

/**
 * Starts `rise serve ARGS --port PORT` (0 = a free one) and waits for the address it prints; killed
 * at cleanup if still running. `env` is added to this process's environment.
 */
export async function startServe(t: Cleanup, args: string[], env: Record<string, string> = {}, port = 0): Promise<RunningServer> {
  const child = spawn(process.execPath, [BIN, 'serve', ...args, '--port', String(port)], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = once(child, 'exit');
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  const baseUrl = await new Promise<string>((resolve, reject) => {
    const look = () => {
      const m = /serving "[^"]*" at (http:\/\/\S+\/v1)/.exec(output);
      if (m) resolve(m[1]);
    };
    child.stdout.on('data', look);
    child.stderr.on('data', look);
    child.on('exit', (code) => reject(new Error(`rise serve exited with ${code} before listening:\n${output}`)));
  });
  return {
    baseUrl,
    process: child,
    output: () => output,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    },
    async stop() {
      child.kill('SIGTERM');
      const [code] = await exited;
      return code as number | null;
    },
  };
}

/** A built-in character model with random weights scaled up, so its samples vary: fast, and a real model to the engine. */
export function tinyCharModel(context = 144): { config: ModelConfig; params: NamedTensor[]; tokenizer: CharTokenizer } {
  const tokenizer = new CharTokenizer();
  const config = resolveModelConfig({ vocabSize: tokenizer.vocabSize, layers: 2, dim: 32, heads: 4, kvHeads: 2, context, seed: 5 });
  const params = initParameters(config);
  for (const p of params) if (p.shape.length === 2) p.data = p.data.map((x) => x * 8);
  return { config, params, tokenizer };
}

/** `tinyCharModel` saved as a checkpoint directory (removed after the test). */
export async function tinyCheckpoint(t: Cleanup, context?: number): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'rise-serve-model-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const model = join(dir, 'model');
  await saveCheckpoint(model, tinyCharModel(context));
  return model;
}
