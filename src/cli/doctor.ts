/**
 * `rise doctor`: what this machine has for running models — ONNX Runtime, and each part CUDA needs (the
 * libraries `rise setup --gpu` installs, the provider's links, the NVIDIA driver, a device) — so a GPU
 * worker's set-up can be checked before it is started. Reports; exits 0 whatever it finds.
 */

import type { Command } from 'commander';

const out = (line: string) => process.stdout.write(`${line}\n`);

export async function doctor(): Promise<void> {
  const { CudaUnavailableError, ORT_VERSION, cudaInstallDir, cudaReport, enableCuda, ortLibraryDir } = await import('../engine/cuda.ts');
  const { defaultToolsDir } = await import('../temporal/binary.ts');
  const toolsDir = defaultToolsDir();
  out(`onnxruntime-node ${ORT_VERSION} in ${ortLibraryDir()}: CPU execution provider (bundled)`);
  out(`CUDA execution provider (\`rise setup --gpu\` installs it in ${cudaInstallDir(toolsDir)}):`);
  const parts = cudaReport(toolsDir);
  const width = Math.max(...parts.map((p) => p.name.length));
  for (const part of parts) out(`  ${part.ok ? 'present' : 'MISSING'}  ${part.name.padEnd(width)}  ${part.detail}`);
  try {
    await enableCuda(toolsDir);
    out('  CUDA works here: `rise worker --device cuda` runs models on the GPU');
  } catch (err) {
    if (!(err instanceof CudaUnavailableError)) throw err;
    out(`  CUDA does not work here: ${err.message}`);
  }
}

export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description('report what this machine has for running models: ONNX Runtime, and each part CUDA needs (`rise worker --device cuda`)')
    .action(doctor);
}
