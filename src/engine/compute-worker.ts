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
import { packTensors, unpackTensors, type Reply, type Request, type SessionNames, type TokenizerRef, type WireTensors } from './compute-messages.ts';
import { sampleBatch } from './sampling.ts';
import type { Tokenizer } from './tokenizer.ts';
import { tokenizerFromJSON } from './tokenizer-json.ts';

const port = parentPort;
if (port === null) throw new Error('compute-worker.ts: must be started as a worker thread (see compute-thread.ts)');

/** Promises, so a run that arrives while its session is still being created waits for it. */
const sessions = new Map<string, Promise<ort.InferenceSession>>();
const residents = new Map<number, ort.Tensor.DataType>();
/** Tokenizers by the digest of their JSON, built on first use. */
const tokenizers = new Map<string, { json: unknown; built?: Tokenizer }>();
/** Set by 'close': nobody waits for replies any more. */
let closed = false;
/** The generation jobs in progress, by request id, and whether each was asked to stop. */
const jobs = new Map<number, { cancelled: boolean }>();

function resident(id: number): ort.Tensor.DataType {
  const data = residents.get(id);
  if (data === undefined) throw new Error(`compute thread: no resident array ${id}`);
  return data;
}

function session(key: string): Promise<ort.InferenceSession> {
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

async function serve(request: Exclude<Request, { kind: 'release' | 'cancel' | 'close' }>): Promise<Served> {
  switch (request.kind) {
    case 'open': {
      if (!sessions.has(request.key)) {
        const created = ort.InferenceSession.create(request.model, request.options);
        sessions.set(request.key, created);
        created.catch(() => sessions.delete(request.key));
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
  }
}

async function generate(request: Extract<Request, { kind: 'generate' }>): Promise<void> {
  const { id, job } = request;
  const state = { cancelled: false };
  jobs.set(id, state);
  try {
    const s = await session(request.key);
    const params = unpackTensors(request.params, resident);
    const decode = async (feeds: Record<string, ort.Tensor>) => {
      // A turn of the event loop between steps lets a cancel (and other callers' runs) in.
      await nextTurn();
      if (state.cancelled) throw new Error('generation cancelled');
      return s.run({ ...params, ...feeds });
    };
    await sampleBatch({ config: job.config, tokenizer: tokenizer(request.tokenizer), decode }, job.requests, job.options, (result, done, total) => {
      port!.postMessage({ id, result, done, total } satisfies Reply);
    });
  } finally {
    jobs.delete(id);
  }
}

port.on('message', async (request: Request) => {
  // Taken in at once, in arrival order: a later request may name these without sending them again.
  if (request.kind === 'release') {
    for (const id of request.residents) residents.delete(id);
    return;
  }
  if (request.kind === 'cancel') {
    const state = jobs.get(request.id);
    if (state !== undefined) state.cancelled = true;
    return;
  }
  if (request.kind === 'close') {
    // With the port closed and the jobs stopping, the thread exits once the run in progress returns.
    for (const state of jobs.values()) state.cancelled = true;
    closed = true;
    port.close();
    return;
  }
  if (request.kind === 'run' || request.kind === 'generate') for (const [id, data] of request.adopt) residents.set(id, data);
  if (request.kind === 'generate' && request.tokenizer.json !== undefined) tokenizers.set(request.tokenizer.digest, { json: request.tokenizer.json });
  try {
    const { value, transfer } = await serve(request);
    if (!closed) port.postMessage({ id: request.id, ok: true, value } satisfies Reply, transfer);
  } catch (error) {
    if (!closed) port.postMessage({ id: request.id, ok: false, message: error instanceof Error ? error.message : String(error) } satisfies Reply);
  }
});
