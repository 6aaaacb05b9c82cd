/**
 * ONNX Runtime's CUDA execution provider, from the Python registry instead of NuGet. onnxruntime-node
 * bundles the CPU build only; the provider is two libraries of the `onnxruntime-gpu` wheel of the same
 * version (built from the same commit, for CUDA 13), and the CUDA libraries it needs are NVIDIA's wheels.
 * `rise setup --gpu` pip-installs them into `<repo>/.tools/onnxruntime-cuda-<version>` (≈ 1.35 GB of
 * downloads) and links the provider beside onnxruntime-node's `libonnxruntime.so.1`, where ONNX Runtime
 * looks for it. The provider has no RUNPATH, so the CUDA libraries are loaded into the process first
 * (`loadCuda`), globally, by absolute path: its own dlopen of them then finds them by soname.
 *
 * Asking ONNX Runtime for `['cuda', 'cpu']` where CUDA cannot run throws a bare "Failed to load shared
 * library" (the cause goes to its log). So rise decides explicitly, once, before any CUDA session:
 * `enableCuda` loads and probes each part in order and throws `CudaUnavailableError` naming the first one
 * missing (no driver, a library not installed, no device); `cudaReport` says what is present for `rise doctor`.
 */

import { existsSync, lstatSync, readlinkSync } from 'node:fs';
import { mkdir, rename, rm, symlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import ort from 'onnxruntime-node';
import { pipInstallTarget } from '../util/pip.ts';
import { Graph } from './graph.ts';
import { toModelProto } from './onnx.ts';

/** CUDA cannot be used here; the message says what is missing and how to get it. */
export class CudaUnavailableError extends Error {
  override name = 'CudaUnavailableError';
}

const require = createRequire(import.meta.url);

/** onnxruntime-node's version: the `onnxruntime-gpu` wheel must be the same build. */
export const ORT_VERSION: string = (require('onnxruntime-node/package.json') as { version: string }).version;

/**
 * What `rise setup --gpu` installs, pinned: the provider's wheel at onnxruntime-node's version, and the
 * CUDA 13 libraries onnxruntime-gpu 1.30's `cuda` and `cudnn` extras name (plus cuBLAS and nvJitLink,
 * which those need), at the versions current when this was pinned.
 */
export const CUDA_REQUIREMENTS: readonly string[] = [
  `onnxruntime-gpu==${ORT_VERSION}`,
  'nvidia-cuda-runtime==13.5.37',
  'nvidia-cublas==13.10.0.20',
  'nvidia-curand==10.4.5.25',
  'nvidia-cuda-nvrtc==13.5.37',
  'nvidia-cudnn-cu13==9.28.1.4',
  'nvidia-cufft==12.5.0.14',
  'nvidia-nvjitlink==13.5.37',
];

/** The wheels are built for these platforms; pip picks them whatever Python runs it (nothing Python is used). */
export const CUDA_PIP_PLATFORM_ARGS: readonly string[] = [
  '--only-binary=:all:',
  '--python-version=3.12',
  ...['manylinux_2_28_x86_64', 'manylinux_2_27_x86_64', 'manylinux_2_17_x86_64', 'manylinux2014_x86_64'].map((p) => `--platform=${p}`),
];

/** The CUDA libraries, in load order (each after what it needs), relative to the install folder. */
export const CUDA_LIBRARIES: readonly string[] = [
  'nvidia/cu13/lib/libcudart.so.13',
  'nvidia/cu13/lib/libnvrtc.so.13',
  'nvidia/cu13/lib/libnvJitLink.so.13',
  'nvidia/cu13/lib/libcublasLt.so.13',
  'nvidia/cu13/lib/libcublas.so.13',
  'nvidia/cu13/lib/libcurand.so.10',
  'nvidia/cu13/lib/libcufft.so.12',
  // cuDNN finds its own sub-libraries through its RPATH ($ORIGIN).
  'nvidia/cudnn/lib/libcudnn.so.9',
];

/** The provider's libraries in the onnxruntime-gpu wheel; ONNX Runtime loads them from its own folder. */
export const PROVIDER_LIBRARIES: readonly string[] = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'];
const PROVIDER_DIR = 'onnxruntime/capi';

/** The NVIDIA driver's library: not in any wheel, it comes with the driver. */
const DRIVER_LIBRARY = 'libcuda.so.1';

/** Where `rise setup --gpu` installs the wheels: `<toolsDir>/onnxruntime-cuda-<onnxruntime-node's version>`. */
export function cudaInstallDir(toolsDir: string): string {
  return join(toolsDir, `onnxruntime-cuda-${ORT_VERSION}`);
}

/** The folder of onnxruntime-node's `libonnxruntime.so.1`, where ONNX Runtime looks for its providers. */
export function ortLibraryDir(): string {
  return join(dirname(require.resolve('onnxruntime-node/package.json')), 'bin', 'napi-v6', process.platform, process.arch);
}

/** Where each provider library is linked from (beside libonnxruntime.so.1) and to (the install). */
export function providerLinks(toolsDir: string): { link: string; target: string }[] {
  return PROVIDER_LIBRARIES.map((name) => ({ link: join(ortLibraryDir(), name), target: join(cudaInstallDir(toolsDir), PROVIDER_DIR, name) }));
}

/** RTLD_NODELETE: Node unloads a library that is no addon; this keeps it loaded (glibc's value). */
const RTLD_NODELETE = 0x1000;

/**
 * dlopen(path, RTLD_NOW | RTLD_GLOBAL | RTLD_NODELETE); null when loaded, else the loader's message.
 * Node's `process.dlopen` expects an addon, so a plain library "did not self-register": loaded all the same.
 */
function dlopen(path: string): string | null {
  try {
    process.dlopen({ exports: {} }, path, constants.dlopen.RTLD_NOW | constants.dlopen.RTLD_GLOBAL | RTLD_NODELETE);
    return null;
  } catch (err) {
    const message = (err as Error).message;
    return message.startsWith('Module did not self-register') ? null : message;
  }
}

export interface CudaPart {
  /** What it is: a library's file name, or `device`. */
  name: string;
  ok: boolean;
  /** Where it is, or why not. */
  detail: string;
}

/** A loader message as the part that is missing: `libcuda.so.1: cannot open …` → `libcuda.so.1 not found`. */
function loaderCause(message: string): string {
  const missing = /([^\s:/]+\.so[.\d]*): cannot open shared object file/.exec(message);
  return missing !== null ? `${missing[1]} not found` : message;
}

const NOT_INSTALLED = 'not installed';

/** The provider's links: present and pointing at this install, else why not. */
function providerParts(toolsDir: string): CudaPart[] {
  return providerLinks(toolsDir).map(({ link, target }) => {
    const name = link.slice(ortLibraryDir().length + 1);
    if (!existsSync(target)) return { name, ok: false, detail: NOT_INSTALLED };
    let linked: string | null = null;
    try {
      linked = lstatSync(link).isSymbolicLink() ? resolve(dirname(link), readlinkSync(link)) : link;
    } catch {
      return { name, ok: false, detail: `installed, but not linked beside libonnxruntime.so.1 (${link} is missing: npm ci removes it)` };
    }
    return linked === link || linked === target
      ? { name, ok: true, detail: link }
      : { name, ok: false, detail: `${link} points at ${linked}, not this install` };
  });
}

/**
 * What is present for CUDA, without loading anything: the driver, each CUDA library and the provider
 * (for `rise doctor`). Loading is `enableCuda`'s, which also finds a missing device.
 */
export function cudaReport(toolsDir: string): CudaPart[] {
  const install = cudaInstallDir(toolsDir);
  return [
    ...CUDA_LIBRARIES.map((lib) => {
      const path = join(install, lib);
      return { name: lib.slice(lib.lastIndexOf('/') + 1), ok: existsSync(path), detail: existsSync(path) ? path : NOT_INSTALLED };
    }),
    ...providerParts(toolsDir),
  ];
}

/**
 * Links the installed provider beside libonnxruntime.so.1, replacing what is there; false when the
 * wheels are not installed. Cheap: `npm ci` (which recreates node_modules) runs it to keep a set-up GPU machine set up.
 */
export async function linkProvider(toolsDir: string): Promise<boolean> {
  const links = providerLinks(toolsDir);
  if (!links.every(({ target }) => existsSync(target))) return false;
  for (const { link, target } of links) {
    const staging = `${link}.tmp-${process.pid}`;
    await rm(staging, { force: true });
    await symlink(target, staging);
    await rename(staging, link);
  }
  return true;
}

/**
 * Installs the pinned wheels (CUDA_REQUIREMENTS) with pip into `cudaInstallDir`, unless they are there,
 * and links the provider. Installs into a temporary sibling renamed into place, so an interrupted install
 * never passes for a finished one.
 */
export async function installCuda(toolsDir: string, log: (line: string) => void): Promise<void> {
  const target = cudaInstallDir(toolsDir);
  if (!cudaReport(toolsDir).some((part) => part.detail === NOT_INSTALLED)) {
    log(`rise: the CUDA libraries are installed in ${target}`);
  } else {
    await mkdir(toolsDir, { recursive: true });
    const staging = `${target}.tmp-${process.pid}-${Date.now()}`;
    log(`rise: installing ONNX Runtime's CUDA provider and the CUDA 13 libraries from PyPI (≈ 1.35 GB to download, 2.4 GB installed) into ${target}:\n  ${CUDA_REQUIREMENTS.join(' ')}`);
    const started = Date.now();
    try {
      const failures = await pipInstallTarget(CUDA_REQUIREMENTS, staging, { pipArgs: CUDA_PIP_PLATFORM_ARGS });
      if (failures !== null) throw new CudaUnavailableError(`could not install the CUDA wheels from PyPI:\n  ${failures.join('\n  ')}`);
      await rm(target, { recursive: true, force: true });
      await rename(staging, target);
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
    log(`rise: installed in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
  await linkProvider(toolsDir);
  log(`rise: linked ${PROVIDER_LIBRARIES.join(' and ')} into ${ortLibraryDir()}`);
}

const SETUP_HINT = 'run `rise setup --gpu` (or `npm run setup:gpu`)';

let enabled: Promise<void> | null = null;

/**
 * Makes CUDA sessions possible in this process, or throws `CudaUnavailableError` naming the first part
 * missing: the installed libraries and the provider's links, the NVIDIA driver, each library loading, and
 * finally a device (a one-node session on CUDA alone). Once per process; a failure is not cached.
 */
export function enableCuda(toolsDir: string): Promise<void> {
  enabled ??= probe(toolsDir).catch((err: unknown) => {
    enabled = null;
    throw err;
  });
  return enabled;
}

async function probe(toolsDir: string): Promise<void> {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new CudaUnavailableError(`CUDA is set up for linux/x64 only; this is ${process.platform}/${process.arch}`);
  }
  const parts = cudaReport(toolsDir);
  const missing = parts.filter((part) => !part.ok);
  if (missing.length === parts.length) {
    throw new CudaUnavailableError(`CUDA is not set up: its libraries are not installed in ${cudaInstallDir(toolsDir)}. To install them, ${SETUP_HINT}.`);
  }
  if (missing.length > 0) {
    throw new CudaUnavailableError(`CUDA is not set up: ${missing.map((p) => `${p.name} ${p.detail}`).join('; ')}. To install it, ${SETUP_HINT}.`);
  }
  const driver = dlopen(DRIVER_LIBRARY);
  if (driver !== null) {
    throw new CudaUnavailableError(`no NVIDIA driver: ${loaderCause(driver)} (this machine has no CUDA-capable device, or its driver is not installed)`);
  }
  const install = cudaInstallDir(toolsDir);
  for (const lib of [...CUDA_LIBRARIES.map((l) => join(install, l)), ...providerLinks(toolsDir).map((p) => p.link)]) {
    const error = dlopen(lib);
    if (error !== null) throw new CudaUnavailableError(`cannot load ${lib}: ${loaderCause(error)}. To reinstall, ${SETUP_HINT}.`);
  }
  const g = new Graph('cuda-probe');
  g.output('y', g.add(g.input('x', 'float32', [1]), g.input('z', 'float32', [1])));
  try {
    await ort.InferenceSession.create(toModelProto(g), { executionProviders: ['cuda'] });
  } catch (err) {
    const message = (err as Error).message;
    throw new CudaUnavailableError(`ONNX Runtime cannot run on CUDA: ${/no CUDA-capable device/i.test(message) ? 'no CUDA-capable device' : message}`);
  }
}
