/**
 * ONNX Runtime sessions for built graphs. A graph is named by the SHA-256 of its serialized bytes, so
 * whatever changes what a builder emits (an op, a gradient rule, a constant) changes the name, and no
 * cache can serve a stale graph. Building and serializing costs little (≈ 0.2 s for a 30-layer
 * training graph); creating the session, where ONNX Runtime optimises the graph, costs seconds, so
 * sessions are kept in memory by digest. They live on the process's compute thread (compute-thread.ts),
 * so a run never holds up the event loop.
 */
import { createHash } from 'node:crypto';
import os from 'node:os';
import ort from 'onnxruntime-node';
import type { Graph } from './graph.ts';
import { computeThread } from './compute-thread.ts';
import type { SessionNames, SessionSpec } from './compute-messages.ts';
import { buildGraph, type GraphRecipe } from './graphs.ts';
import { toModelProto } from './onnx.ts';

export interface SessionOptions {
  /** Intra-op threads; defaults to the machine's cores (RISE_THREADS overrides). */
  threads?: number;
  /** 'cuda' only after `enableCuda` (cuda.ts) succeeded in this process: ONNX Runtime then runs each node it can on the GPU, the rest on the CPU. */
  device?: 'cpu' | 'cuda';
}

export function defaultThreads(): number {
  const env = Number(process.env.RISE_THREADS);
  return Number.isInteger(env) && env > 0 ? env : os.availableParallelism();
}

export interface SerializedGraph {
  bytes: Uint8Array;
  /** SHA-256 of `bytes`, 64 hex digits. */
  digest: string;
}

export function serializeGraph(graph: Graph): SerializedGraph {
  const bytes = toModelProto(graph);
  return { bytes, digest: createHash('sha256').update(bytes).digest('hex') };
}

// Recipes are memoized only within the process: the code that builds them cannot change under it.
const serialized = new Map<string, SerializedGraph>();

function serializedRecipe(recipe: GraphRecipe): SerializedGraph {
  const id = JSON.stringify(recipe);
  let graph = serialized.get(id);
  if (graph === undefined) {
    graph = serializeGraph(buildGraph(recipe));
    serialized.set(id, graph);
  }
  return graph;
}

/**
 * How ONNX Runtime runs the engine's graphs: deterministic for a given thread count. Whether the
 * intra-op pool spins is left out: the compute thread decides it per run from the CPU other processes
 * leave (spin-session.ts).
 */
export function ortSessionOptions(threads: number, device: 'cpu' | 'cuda'): ort.InferenceSession.SessionOptions {
  return {
    graphOptimizationLevel: 'all',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    // The arena keeps every session's peak allocation for the session's life, and sessions live as long
    // as the process: a training step's activations (gigabytes with a real model) stayed held while
    // the worker went on to sample, and a GSM8K run on SmolLM2 ran out of 24 GB.
    enableCpuMemArena: false,
    executionProviders: device === 'cuda' ? ['cuda', 'cpu'] : ['cpu'],
  };
}

/** A session on the compute thread: feeds go in, outputs come back as the thread's own buffers. */
export interface Session extends SessionNames {
  /** What the compute thread knows the session by, for jobs that run it there (generate.ts). */
  spec: SessionSpec;
  run(feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>>;
}

const sessions = new Map<string, Promise<Session>>();

/** A session for the recipe's graph, shared by everything in the process that runs the same bytes. */
export function getSession(recipe: GraphRecipe, options: SessionOptions = {}): Promise<Session> {
  const threads = options.threads ?? defaultThreads();
  const device = options.device ?? 'cpu';
  const graph = serializedRecipe(recipe);
  const key = `${graph.digest}:${threads}:${device}`;
  let session = sessions.get(key);
  if (!session) {
    const spec: SessionSpec = { key, model: graph.bytes, options: ortSessionOptions(threads, device) };
    session = computeThread.open(spec).then((names) => ({ ...names, spec, run: (feeds) => computeThread.run(spec, feeds) }));
    sessions.set(key, session);
    session.catch(() => sessions.delete(key));
  }
  return session;
}

/** A one-off session (gradient checks, tests); not cached. */
export function createSession(g: Graph, threads = 1): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(toModelProto(g), { graphOptimizationLevel: 'all', intraOpNumThreads: threads });
}
