/**
 * Keeps a GPU machine's CUDA set-up across `npm ci`, which recreates node_modules and with it drops the
 * CUDA provider's links beside onnxruntime-node's library: when `rise setup --gpu` has installed the
 * provider (src/engine/cuda.ts), this links it again; it downloads nothing (the CUDA wheels are ≈ 1.35 GB,
 * so only `rise setup --gpu` / `npm run setup:gpu` fetches them).
 *
 * onnxruntime-node's own install script never runs (package.json denies it in `allowScripts`): it would
 * fetch the CUDA provider from NuGet, which rise does not use. ONNXRUNTIME_NODE_INSTALL, which asks that
 * script for it, is answered here with where rise gets CUDA instead.
 */

import { linkProvider } from '../src/engine/cuda.ts';
import { defaultToolsDir } from '../src/temporal/binary.ts';

const flag = process.env.ONNXRUNTIME_NODE_INSTALL?.trim();
if (await linkProvider(defaultToolsDir())) {
  console.error('rise: linked the CUDA execution provider installed by `rise setup --gpu` into onnxruntime-node');
} else if (flag && flag !== 'skip') {
  console.error(`rise: ONNXRUNTIME_NODE_INSTALL=${flag} is not used (it would fetch CUDA from NuGet); \`npm run setup:gpu\` installs CUDA from PyPI`);
}
