/**
 * onnxruntime-node's own install script never runs on `npm ci` (package.json denies it in `allowScripts`):
 * on linux/x64 it would download the CUDA execution provider from NuGet on every clean install, and rise
 * runs on the CPU build the package bundles. A GPU machine asks for CUDA as onnxruntime-node documents it,
 *
 *   ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci
 *
 * and rise's postinstall runs this, which then runs that install script (it reads the variable itself).
 */

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const flag = process.env.ONNXRUNTIME_NODE_INSTALL?.trim();
if (flag && flag !== 'skip') {
  const script = fileURLToPath(new URL('../node_modules/onnxruntime-node/script/install.js', import.meta.url));
  console.error(`rise: ONNXRUNTIME_NODE_INSTALL=${flag}: running onnxruntime-node's install script`);
  const { status, error } = spawnSync(process.execPath, [script], { stdio: 'inherit' });
  if (error) throw error;
  process.exitCode = status ?? 1;
}
