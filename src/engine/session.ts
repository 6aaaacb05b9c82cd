/**
 * ONNX Runtime sessions for built graphs. A graph is named by the SHA-256 of its serialized bytes, so
 * whatever changes what a builder emits (an op, a gradient rule, a constant) changes the name, and no
 * cache can serve a stale graph. Building and serializing costs little (≈ 0.2 s for a 30-layer
 * training graph); creating the session, where ONNX Runtime optimises the graph, costs seconds, so
 * sessions are kept in memory by digest.
 */
import { createHash } from 'node:crypto';
import os from 'node:os';
import ort from 'onnxruntime-node';
import type { Graph } from './graph.ts';
import { buildGraph, type GraphRecipe } from './graphs.ts';
import { toModelProto } from './onnx.ts';

export interface SessionOptions {
  /** Intra-op threads; defaults to the machine's cores (RISE_THREADS overrides). */
  threads?: number;
  /** 'cpu' here; 'cuda' where onnxruntime-node was installed with CUDA. */
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

const sessions = new Map<string, Promise<ort.InferenceSession>>();

/** A session for the recipe's graph, shared by everything in the process that runs the same bytes. */
export function getSession(recipe: GraphRecipe, options: SessionOptions = {}): Promise<ort.InferenceSession> {
  const threads = options.threads ?? defaultThreads();
  const device = options.device ?? 'cpu';
  const graph = serializedRecipe(recipe);
  const cacheKey = `${graph.digest}:${threads}:${device}`;
  let session = sessions.get(cacheKey);
  if (!session) {
    session = ort.InferenceSession.create(graph.bytes, {
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
