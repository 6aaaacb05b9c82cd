/**
 * ONNX Runtime sessions for built graphs. A graph is named by the SHA-256 of its serialized bytes, so
 * whatever changes what a builder emits (an op, a gradient rule, a constant) changes the name, and no
 * cache can serve a stale graph. Building and serializing costs little (≈ 0.2 s for a 30-layer
 * training graph); creating the session, where ONNX Runtime optimises the graph, costs seconds, so
 * sessions are kept in memory by digest. They live on the process's compute thread (compute-thread.ts),
 * so a run never holds up the event loop. A graph with bound weights (`Graph.weights`: the decode graph)
 * gets a session per set of weights, made when they are given and kept while they live.
 */
import { createHash } from 'node:crypto';
import os from 'node:os';
import ort from 'onnxruntime-node';
import type { Graph, Value } from './graph.ts';
import { computeThread } from './compute-thread.ts';
import type { SessionNames, SessionSpec } from './compute-messages.ts';
import { buildGraph, type GraphRecipe } from './graphs.ts';
import { externalData, toModelProto } from './onnx.ts';
import { shareTensors, sizeOf, type NamedTensor } from './tensor.ts';

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
  /** The weights a session of it binds (`Graph.weights`), by name. */
  weights: Map<string, readonly number[]>;
}

export function serializeGraph(graph: Graph): SerializedGraph {
  const bytes = toModelProto(graph);
  const weights = new Map(graph.weights.map((w: Value) => [w.name, w.shape as number[]]));
  return { bytes, digest: createHash('sha256').update(bytes).digest('hex'), weights };
}

/** Weights given for a graph's bound weights that are not exactly them: a caller's mistake, named. */
export class BoundWeightsError extends Error {
  override name = 'BoundWeightsError';
}

/** The given weights as the graph binds them: every one it names, with its shape, and nothing else. */
function boundWeights(graph: SerializedGraph, weights: readonly NamedTensor[] | undefined): NamedTensor[] {
  if (graph.weights.size === 0) {
    if (weights !== undefined) throw new BoundWeightsError('weights given for a graph that binds none: feed them as inputs');
    return [];
  }
  if (weights === undefined) throw new BoundWeightsError(`the graph binds ${graph.weights.size} weights at session creation; none were given`);
  const given = new Map(weights.map((w) => [w.name, w]));
  for (const [name, shape] of graph.weights) {
    const w = given.get(name);
    if (w === undefined) throw new BoundWeightsError(`weight ${name} is missing`);
    if (w.shape.length !== shape.length || w.shape.some((d, i) => d !== shape[i])) throw new BoundWeightsError(`weight ${name} has shape [${w.shape}], the graph's is [${shape}]`);
    if (w.data.length !== sizeOf(shape)) throw new BoundWeightsError(`weight ${name} holds ${w.data.length} values, its shape [${shape}] ${sizeOf(shape)}`);
  }
  for (const name of given.keys()) if (!graph.weights.has(name)) throw new BoundWeightsError(`weight ${name} is not one the graph binds`);
  return weights.slice();
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
export function ortSessionOptions(threads: number, device: 'cpu' | 'cuda', recipe?: GraphRecipe['kind']): ort.InferenceSession.SessionOptions {
  return {
    graphOptimizationLevel: 'all',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    // The arena keeps a session's peak allocation for the session's life, and sessions live as long as
    // the process: a training step's activations (gigabytes with a real model) stayed held while the
    // worker went on to sample, and a GSM8K run on SmolLM2 ran out of 24 GB. The decode graph keeps it:
    // its peak is bounded (a prefill group of PREFILL_TOKENS positions: about a gigabyte on SmolLM2), and
    // without the arena the first such prefill of a session took 10 to 19 s where later ones took 3 s,
    // faulting its memory in page by page.
    enableCpuMemArena: recipe === 'decode',
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

/**
 * A session for the recipe's graph, shared by everything in the process that runs the same bytes. A graph
 * with bound weights takes them here (exactly its weights, by name; their arrays must not change after):
 * its session is the compute thread's for those arrays, made once and let go when they are collected.
 */
export async function getSession(recipe: GraphRecipe, options: SessionOptions = {}, weights?: readonly NamedTensor[]): Promise<Session> {
  const threads = options.threads ?? defaultThreads();
  const device = options.device ?? 'cpu';
  const graph = serializedRecipe(recipe);
  const bound = boundWeights(graph, weights);
  const key = `${graph.digest}:${threads}:${device}`;
  const open = (spec: SessionSpec) => computeThread.open(spec).then((names): Session => ({ ...names, spec, run: (feeds) => computeThread.run(spec, feeds) }));
  // Not cached here: the spec holds the weights, and the thread already keeps one session per set.
  if (bound.length > 0) {
    const tensors = shareTensors(bound).map((w) => [w.name, new ort.Tensor('float32', w.data, w.shape)] as const);
    return open({ key, model: graph.bytes, options: ortSessionOptions(threads, device, recipe.kind), weights: Object.fromEntries(tensors) });
  }
  let session = sessions.get(key);
  if (!session) {
    session = open({ key, model: graph.bytes, options: ortSessionOptions(threads, device, recipe.kind) });
    sessions.set(key, session);
    session.catch(() => sessions.delete(key));
  }
  return session;
}

/** A one-off session (gradient checks, tests); not cached. A graph with bound weights takes them here. */
export function createSession(g: Graph, threads = 1, weights?: readonly NamedTensor[]): Promise<ort.InferenceSession> {
  const graph = serializeGraph(g);
  const bound = boundWeights(graph, weights);
  return ort.InferenceSession.create(graph.bytes, {
    graphOptimizationLevel: 'all',
    intraOpNumThreads: threads,
    ...(bound.length > 0 ? { externalData: externalData(bound) } : {}),
  });
}
