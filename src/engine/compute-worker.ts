/**
 * The compute thread's side of compute-thread.ts: it owns the ONNX Runtime sessions and the resident
 * weights, runs the sessions, and runs generation jobs (sampling.ts's loop) next to them. ONNX Runtime
 * holds the calling thread for the whole run, so here it holds this thread, not the process's event
 * loop. A failure comes back as a reply with ONNX Runtime's message, so one bad feed does not take the
 * thread down.
 */
import { parentPort } from 'node:worker_threads';
import { setImmediate as nextTurn } from 'node:timers/promises';
import ort from 'onnxruntime-node';
import { packTensors, unpackTensors, type Reply, type Request, type ServeEvent, type SessionNames, type TokenizerRef, type WireTensors } from './compute-messages.ts';
import { externalData } from './onnx.ts';
import { KV_MEMORY_BYTES, KvMemory } from './kv-cache.ts';
import { PrefixCache, prefixCacheBudget } from './prefix-cache.ts';
import { sampleBatch, serveBatch, type DecodingModel, type RequestQueue } from './sampling.ts';
import { openSpinSession, type SpinSession } from './spin-session.ts';
import type { Tokenizer } from './tokenizer.ts';
import { tokenizerFromJSON } from './tokenizer-json.ts';

const port = parentPort;
if (port === null) throw new Error('compute-worker.ts: must be started as a worker thread (see compute-thread.ts)');

/** Promises, so a run that arrives while its session is still being created waits for it. */
const sessions = new Map<string, Promise<SpinSession>>();
const residents = new Map<number, ort.Tensor.DataType>();
/** The resident arrays each session with bound weights was made from: it goes when one of them goes. */
const boundTo = new Map<string, number[]>();
/**
 * What each decode session computed in earlier jobs, for prompts that extend it, and the arrays of its
 * jobs' KV caches, for the jobs after; they go with the session.
 */
const kept = new Map<string, { prefixes: PrefixCache; memory: KvMemory }>();
/** Tokenizers by the digest of their JSON, built on first use. */
const tokenizers = new Map<string, { json: unknown; built?: Tokenizer }>();
/** Set by 'close': nobody waits for replies any more. */
let closed = false;
/** The generation and serving jobs in progress, by request id, and whether each was asked to stop. */
const jobs = new Map<number, { cancelled: boolean }>();
/** The open queues of the serving jobs, and how to wake a job that waits for work. */
const queues = new Map<number, { queue: RequestQueue; wake: (more: boolean) => void }>();

function resident(id: number): ort.Tensor.DataType {
  const data = residents.get(id);
  if (data === undefined) throw new Error(`compute thread: no resident array ${id}`);
  return data;
}

function session(key: string): Promise<SpinSession> {
  const s = sessions.get(key);
  if (s === undefined) throw new Error(`compute thread: no open session ${key}`);
  return s;
}

function tokenizer(ref: TokenizerRef): Tokenizer {
  const held = tokenizers.get(ref.digest);
  if (held === undefined) throw new Error(`compute thread: no tokenizer ${ref.digest}`);
  held.built ??= tokenizerFromJSON(held.json);
  return held.built;
}

type Served = { value: SessionNames | WireTensors | null; transfer: ArrayBuffer[] };

async function serve(request: Extract<Request, { kind: 'open' | 'run' | 'generate' | 'serve' }>): Promise<Served> {
  switch (request.kind) {
    case 'open': {
      if (!sessions.has(request.key)) {
        const weights = Object.entries(request.weights).map(([name, w]) => ({ name, data: ('resident' in w ? resident(w.resident) : w.data) as ArrayBufferView }));
        const options = weights.length === 0 ? request.options : { ...request.options, externalData: externalData(weights) };
        const created = openSpinSession(request.model, options);
        if (weights.length > 0) boundTo.set(request.key, Object.values(request.weights).flatMap((w) => ('resident' in w ? [w.resident] : [])));
        sessions.set(request.key, created);
        created.catch(() => {
          sessions.delete(request.key);
          boundTo.delete(request.key);
        });
      }
      const s = await session(request.key);
      return { value: { inputNames: s.inputNames, outputNames: s.outputNames }, transfer: [] };
    }
    case 'run': {
      const outputs = await (await session(request.key)).run(unpackTensors(request.feeds, resident));
      // The outputs are this thread's own fresh buffers: handed over, not copied.
      const packed = packTensors(outputs, () => undefined, true);
      return { value: packed.tensors, transfer: packed.transfer };
    }
    case 'generate':
      await generate(request);
      return { value: null, transfer: [] };
    case 'serve':
      await serveQueue(request);
      return { value: null, transfer: [] };
  }
}

/**
 * The job's model: its decode session (its weights bound), checking between steps whether the job was
 * cancelled, and the session's prefix cache.
 */
async function decodingModel(request: Extract<Request, { kind: 'generate' | 'serve' }>, state: { cancelled: boolean }): Promise<DecodingModel> {
  const s = await session(request.key);
  let held = kept.get(request.key);
  if (held === undefined) kept.set(request.key, (held = { prefixes: new PrefixCache(prefixCacheBudget()), memory: new KvMemory(KV_MEMORY_BYTES) }));
  return {
    config: request.job.config,
    tokenizer: tokenizer(request.tokenizer),
    kept: held.prefixes,
    memory: held.memory,
    decode: async (feeds, fetches) => {
      // A turn of the event loop between steps lets a cancel (and other callers' runs) in.
      await nextTurn();
      if (state.cancelled) throw new Error('generation cancelled');
      return s.run(feeds, fetches);
    },
  };
}

/**
 * Lets go of the arrays and of the sessions bound to them: the main thread has collected its copies, so
 * no job can name them again, and a bound session holds its own copy of the weights, laid out for its
 * kernels — hundreds of megabytes for a real model.
 */
function release(ids: number[]): void {
  for (const id of ids) residents.delete(id);
  const gone = new Set(ids);
  for (const [key, bound] of boundTo) {
    if (!bound.some((id) => gone.has(id))) continue;
    boundTo.delete(key);
    kept.delete(key);
    const s = sessions.get(key);
    sessions.delete(key);
    s?.then((opened) => opened.release(), () => undefined);
  }
}

async function generate(request: Extract<Request, { kind: 'generate' }>): Promise<void> {
  const { id, job } = request;
  const state = { cancelled: false };
  jobs.set(id, state);
  try {
    await sampleBatch(await decodingModel(request, state), job.requests, job.options, (result, done, total) => {
      port!.postMessage({ id, result, done, total } satisfies Reply);
    });
  } finally {
    jobs.delete(id);
  }
}

async function serveQueue(request: Extract<Request, { kind: 'serve' }>): Promise<void> {
  const { id, job } = request;
  const state = { cancelled: false };
  let wake: (more: boolean) => void = () => undefined;
  const queue: RequestQueue = {
    waiting: [],
    dropped: new Set(),
    next: () => {
      if (state.cancelled) return Promise.resolve(false);
      if (queue.waiting.length > 0 || queue.dropped.size > 0) return Promise.resolve(true);
      return new Promise((resolve) => (wake = resolve));
    },
  };
  jobs.set(id, state);
  queues.set(id, { queue, wake: (more) => wake(more) });
  const post = (event: ServeEvent) => port!.postMessage({ id, event } satisfies Reply);
  try {
    await serveBatch(await decodingModel(request, state), queue, job.options, {
      onResult: (generation) => post({ kind: 'result', generation }),
      onToken: (request, token, logprob) => post({ kind: 'token', request, token, logprob }),
      onDropped: (request) => post({ kind: 'dropped', request }),
    });
    if (state.cancelled) throw new Error('generation cancelled');
  } finally {
    jobs.delete(id);
    queues.delete(id);
  }
}

port.on('message', async (request: Request) => {
  // Taken in at once, in arrival order: a later request may name these without sending them again.
  if (request.kind === 'release') {
    release(request.residents);
    return;
  }
  if (request.kind === 'cancel') {
    const state = jobs.get(request.id);
    if (state !== undefined) state.cancelled = true;
    queues.get(request.id)?.wake(false);
    return;
  }
  if (request.kind === 'enqueue' || request.kind === 'drop') {
    const open = queues.get(request.id);
    if (open === undefined) return; // the job has ended, and its caller has been told
    if (request.kind === 'enqueue') open.queue.waiting.push(...request.requests);
    else open.queue.dropped.add(request.request);
    open.wake(true);
    return;
  }
  if (request.kind === 'close') {
    // With the port closed and the jobs stopping, the thread exits once the run in progress returns.
    for (const state of jobs.values()) state.cancelled = true;
    for (const open of queues.values()) open.wake(false);
    closed = true;
    port.close();
    return;
  }
  if ('adopt' in request) for (const [id, data] of request.adopt) residents.set(id, data);
  if ((request.kind === 'generate' || request.kind === 'serve') && request.tokenizer.json !== undefined) {
    tokenizers.set(request.tokenizer.digest, { json: request.tokenizer.json });
  }
  try {
    const { value, transfer } = await serve(request);
    if (!closed) port.postMessage({ id: request.id, ok: true, value } satisfies Reply, transfer);
  } catch (error) {
    if (!closed) port.postMessage({ id: request.id, ok: false, message: error instanceof Error ? error.message : String(error) } satisfies Reply);
  }
});
