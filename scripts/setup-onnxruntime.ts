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
  const dir = fileURLToPath(new URL('../node_modules/onnxruntime-node/', import.meta.url));
  console.error(`rise: ONNXRUNTIME_NODE_INSTALL=${flag}: running onnxruntime-node's install script`);
  // As npm runs a dependency's script: in its folder, with its package.json as npm_package_json. From
  // rise's own (the root's), the script takes itself for a development checkout of onnxruntime and quits.
  const { status, error } = spawnSync(process.execPath, ['script/install.js'], {
    cwd: dir,
    env: { ...process.env, npm_package_json: `${dir}package.json` },
    stdio: 'inherit',
  });
  if (error) throw error;
  process.exitCode = status ?? 1;
}
