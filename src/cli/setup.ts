/**
 * `rise setup --gpu`: the set-up `npm ci` leaves out because of its size — ONNX Runtime's CUDA provider
 * and the CUDA 13 libraries from PyPI (≈ 1.35 GB; src/engine/cuda.ts). Idempotent: a second run finds
 * them and only links the provider again. Says afterwards whether CUDA works on this machine (an image
 * may be set up on a machine without a GPU: that is no failure).
 */

import type { Command } from 'commander';
import { UsageError } from './errors.ts';

const log = (line: string) => process.stderr.write(`${line}\n`);

interface SetupOptions {
  gpu?: boolean;
}

async function setup(options: SetupOptions): Promise<void> {
  if (!options.gpu) throw new UsageError('say what to set up: --gpu (everything else is set up by npm ci)');
  const { CudaUnavailableError, enableCuda, installCuda } = await import('../engine/cuda.ts');
  const { defaultToolsDir } = await import('../temporal/binary.ts');
  await installCuda(defaultToolsDir(), log);
  try {
    await enableCuda(defaultToolsDir());
    log('rise: CUDA works here: `rise worker --device cuda` runs models on the GPU');
  } catch (err) {
    if (!(err instanceof CudaUnavailableError)) throw err;
    log(`rise: installed, but CUDA does not work on this machine: ${err.message}`);
  }
}

export function registerSetupCommand(program: Command): void {
  program
    .command('setup')
    .description('install what npm ci leaves out: --gpu, ONNX Runtime\'s CUDA provider and the CUDA libraries from PyPI (≈ 1.35 GB)')
    .option('--gpu', 'the CUDA execution provider (onnxruntime-gpu) and NVIDIA\'s CUDA 13 wheels, into .tools/')
    .action(setup);
}
