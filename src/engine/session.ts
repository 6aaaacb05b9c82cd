/**
 * ONNX Runtime sessions for built graphs. Building and optimising a graph costs far more than a run,
 * so sessions are cached in memory by graph key, and serialized graphs are cached on disk by the same
 * key (a hash of the model config, the graph kind and the engine version).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import os from 'node:os';
import ort from 'onnxruntime-node';
import type { Graph } from './graph.ts';
import { toModelProto } from './onnx.ts';

/** Bumped whenever graph builders change what they emit, so stale cached graphs are never loaded. */
export const ENGINE_VERSION = 1;

export interface SessionOptions {
  /** Intra-op threads; defaults to the machine's cores (RISE_THREADS overrides). */
  threads?: number;
  /** 'cpu' here; 'cuda' where onnxruntime-node was installed with CUDA. */
  device?: 'cpu' | 'cuda';
  /** Directory of cached .onnx files (default `$RISE_HOME/graphs`, RISE_HOME defaulting to `.rise`). */
  cacheDir?: string;
}

export function defaultGraphCacheDir(): string {
  return join(process.env.RISE_HOME ?? '.rise', 'graphs');
}

export function defaultThreads(): number {
  const env = Number(process.env.RISE_THREADS);
  return Number.isInteger(env) && env > 0 ? env : os.availableParallelism();
}

export function graphKey(parts: unknown): string {
  return createHash('sha256').update(JSON.stringify({ engine: ENGINE_VERSION, ort: ort.env.versions.common, parts })).digest('hex').slice(0, 32);
}

const sessions = new Map<string, Promise<ort.InferenceSession>>();

function modelBytes(key: string, build: () => Graph, cacheDir: string): Uint8Array {
  const file = join(cacheDir, `${key}.onnx`);
  if (existsSync(file)) return readFileSync(file);
  const bytes = toModelProto(build());
  mkdirSync(cacheDir, { recursive: true });
  // Written under a temporary name then renamed, so a crash never leaves a truncated graph under the key.
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, file);
  return bytes;
}

/** A session for the graph named by `key`, built by `build` only when neither cache has it. */
export function getSession(key: string, build: () => Graph, options: SessionOptions = {}): Promise<ort.InferenceSession> {
  const threads = options.threads ?? defaultThreads();
  const device = options.device ?? 'cpu';
  const cacheKey = `${key}:${threads}:${device}`;
  let session = sessions.get(cacheKey);
  if (!session) {
    const bytes = modelBytes(key, build, options.cacheDir ?? defaultGraphCacheDir());
    session = ort.InferenceSession.create(bytes, {
      graphOptimizationLevel: 'all',
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      executionProviders: device === 'cuda' ? ['cuda', 'cpu'] : ['cpu'],
    });
    sessions.set(cacheKey, session);
    session.catch(() => sessions.delete(cacheKey));
  }
  return session;
}

/** A one-off session (gradient checks, tests); not cached. */
export function createSession(g: Graph, threads = 1): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(toModelProto(g), { graphOptimizationLevel: 'all', intraOpNumThreads: threads });
}
