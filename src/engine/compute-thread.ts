/**
 * The process's compute thread: one worker thread that owns the ONNX Runtime sessions
 * (compute-worker.ts). ONNX Runtime holds its calling thread for the whole of a run — seconds with a
 * real model — and on the main thread that would stall everything else the event loop serves:
 * Temporal heartbeats, lease renewal, workflow tasks. The thread starts on first use, keeps the process
 * alive only while a request is in flight, and is started afresh after it dies; requests in flight when
 * it dies are rejected, never left hanging.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import type ort from 'onnxruntime-node';
import {
  packTensors,
  unpackTensors,
  type GenerationJob,
  type Reply,
  type Request,
  type ResidentRef,
  type ServeEvent,
  type ServingJob,
  type SessionNames,
  type SessionSpec,
  type TokenizerRef,
  type WireTensors,
} from './compute-messages.ts';
import type { Generation, GenerationRequest } from './sampling.ts';
import { isShared } from './tensor.ts';
import type { Tokenizer } from './tokenizer.ts';

interface Pending {
  resolve: (value: SessionNames | WireTensors | null) => void;
  reject: (error: Error) => void;
  /** A generation job's results, as they arrive. */
  onResult?: (g: Generation, done: number, total: number) => void;
  /** A serving job's events, as they arrive. */
  onEvent?: (e: ServeEvent) => void;
}

/** A serving job in the compute thread (`ComputeThread.serve`). */
export interface ServingHandle {
  /** Settles when the job ends: rejected when it was stopped (its signal) or its thread died. */
  readonly done: Promise<void>;
  /** Queues checked requests; throws once the job has ended. */
  enqueue(requests: GenerationRequest[]): void;
  /** Frees a request's row; its `dropped` event follows (nothing, once the job has ended). */
  drop(request: string): void;
}

/**
 * Worker threads do not inherit the TypeScript loader: tsx registers its hooks on the main thread only,
 * whether it came in through `--import tsx`, the tsx CLI or bin/rise.js's `register()`. So the thread
 * starts from one line of JavaScript that registers tsx and then imports the TypeScript entry.
 */
function bootstrap(entry: URL): string {
  const tsx = import.meta.resolve('tsx/esm/api');
  return `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); });`;
}

/** How long a stopping thread may take to finish its run before it is terminated. */
const STOP_GRACE_MS = 60_000;

export class ComputeThread {
  private worker: Worker | null = null;
  private readonly pending = new Map<number, Pending>();
  /** Sessions opened in the current thread, by key; a fresh thread opens them again. */
  private opened = new Map<string, Promise<SessionNames>>();
  private nextId = 0;
  /** Numbers for the shared arrays (`shareTensors`) fed so far, and those the current thread holds. */
  private readonly residentIds = new WeakMap<ArrayBufferView, number>();
  /** The thread keys of the bound sessions opened with each resident array. */
  private readonly boundKeys = new Map<number, string[]>();
  private inThread = new Set<number>();
  private nextResident = 0;
  /** Tokenizers by the digest of their JSON, and the digests the current thread holds (kept for its life: a process uses few). */
  private readonly tokenizerDigests = new WeakMap<Tokenizer, string>();
  private tokenizersInThread = new Set<string>();
  /** When a shared array is collected here, the thread lets its copy go. */
  private readonly collected = new FinalizationRegistry<number>((id) => this.release(id));

  /** `entry` is the thread's module; tests swap in one that misbehaves. */
  constructor(private readonly entry = new URL('./compute-worker.ts', import.meta.url)) {}

  /**
   * Creates the session in the thread (once per thread) and names its inputs and outputs. A spec with
   * bound weights is a session per set of weight arrays: the thread keeps it until they are collected here.
   */
  open(spec: SessionSpec): Promise<SessionNames> {
    const key = this.threadKey(spec);
    let names = this.opened.get(key);
    if (names === undefined) {
      const opened = this.opened;
      const sent: number[] = [];
      const weights = packTensors(spec.weights ?? {}, (data) => this.resident(data, sent), false);
      try {
        names = this.call(
          (id) => ({ kind: 'open', id, key, model: spec.model, options: spec.options, weights: weights.tensors, adopt: weights.adopt }),
          weights.transfer,
        ) as Promise<SessionNames>;
      } catch (error) {
        for (const r of sent) this.inThread.delete(r);
        throw error;
      }
      opened.set(key, names);
      // A failed open is not remembered: the next call tries again (and reports the failure again).
      names.catch(() => opened.get(key) === names && opened.delete(key));
    }
    return names;
  }

  /** What the thread knows a session by: its key, and for bound weights the numbers of their arrays. */
  private threadKey(spec: SessionSpec): string {
    if (spec.weights === undefined) return spec.key;
    const ids = Object.values(spec.weights).map((t) => this.residentId(t.data as ArrayBufferView));
    const key = `${spec.key}|${ids.join(',')}`;
    for (const id of ids) {
      const keys = this.boundKeys.get(id) ?? [];
      if (!keys.includes(key)) this.boundKeys.set(id, [...keys, key]);
    }
    return key;
  }

  /**
   * Runs the session in the thread; rejects with ONNX Runtime's message when the run fails. The run is
   * posted before this returns (after the session's `open`, which the thread serves first), so `stop`
   * rejects it rather than letting it start a fresh thread.
   */
  async run(spec: SessionSpec, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
    // Not awaited: the thread serves the open first, and a failed open fails the run with its message.
    void this.open(spec);
    const sent: number[] = [];
    const packed = packTensors(feeds, (data) => this.resident(data, sent), false);
    let outputs: Promise<SessionNames | WireTensors | null>;
    try {
      outputs = this.call((id) => ({ kind: 'run', id, key: this.threadKey(spec), feeds: packed.tensors, adopt: packed.adopt }), packed.transfer);
    } catch (error) {
      for (const id of sent) this.inThread.delete(id);
      throw error;
    }
    return unpackTensors((await outputs) as WireTensors);
  }

  /**
   * Samples in the thread with the decode session `spec`, its weights bound (sampling.ts's
   * `sampleBatch`): the KV cache and the logits stay there, and only the finished requests come back,
   * each passed to `onResult` as it arrives. Resolves after the last one; `signal` stops the job before
   * its next decode step, and the job then rejects.
   */
  generate(
    spec: SessionSpec,
    tokenizer: Tokenizer,
    job: GenerationJob,
    onResult: (g: Generation, done: number, total: number) => void,
    signal?: AbortSignal,
  ): Promise<void> {
    void this.open(spec);
    const key = this.threadKey(spec);
    const ref = this.tokenizerRef(tokenizer);
    let done: Promise<unknown>;
    try {
      done = this.call((id) => ({ kind: 'generate', id, key, tokenizer: ref, job }), [], { onResult, signal });
    } catch (error) {
      if (ref.json !== undefined) this.tokenizersInThread.delete(ref.digest);
      throw error;
    }
    return done.then(() => undefined);
  }

  /**
   * Serves an open queue in the thread with the decode session `spec`, its weights bound (sampling.ts's
   * `serveBatch`): requests are queued and dropped while it decodes, and every event (a finished
   * request, a streamed token, a freed row) is passed to `onEvent`. It runs until `signal` stops it.
   */
  serve(spec: SessionSpec, tokenizer: Tokenizer, job: ServingJob, onEvent: (e: ServeEvent) => void, signal: AbortSignal): ServingHandle {
    void this.open(spec);
    const key = this.threadKey(spec);
    const ref = this.tokenizerRef(tokenizer);
    let id = -1;
    let done: Promise<unknown>;
    try {
      done = this.call((n) => ({ kind: 'serve', id: (id = n), key, tokenizer: ref, job }), [], { onEvent, signal });
    } catch (error) {
      if (ref.json !== undefined) this.tokenizersInThread.delete(ref.digest);
      throw error;
    }
    const worker = this.worker!;
    const live = () => this.worker === worker && this.pending.has(id);
    return {
      done: done.then(() => undefined),
      enqueue: (requests) => {
        if (!live()) throw new Error('the serving job has ended');
        worker.postMessage({ kind: 'enqueue', id, requests } satisfies Request);
      },
      drop: (request) => {
        if (live()) worker.postMessage({ kind: 'drop', id, request } satisfies Request);
      },
    };
  }

  /**
   * Stops the thread; requests in flight are rejected at once. A later request starts a fresh thread.
   * Terminating a thread while ONNX Runtime runs in it aborts the whole process (a native exception in
   * the teardown), so the thread is asked to finish its run and exit by itself; only one that has not
   * done so after STOP_GRACE_MS is terminated.
   */
  async stop(): Promise<void> {
    const worker = this.worker;
    if (worker === null) return;
    this.lost(worker, new Error('compute thread stopped'));
    worker.ref();
    const exited = once(worker, 'exit');
    worker.postMessage({ kind: 'close' } satisfies Request);
    const grace = setTimeout(() => void worker.terminate(), STOP_GRACE_MS);
    await exited;
    clearTimeout(grace);
  }

  /** Posts the request (throwing if it cannot be cloned) and promises its reply. */
  private call(
    request: (id: number) => Request,
    transfer: ArrayBuffer[],
    job?: { onResult?: Pending['onResult']; onEvent?: Pending['onEvent']; signal?: AbortSignal },
  ): Promise<SessionNames | WireTensors | null> {
    const worker = this.start();
    const id = this.nextId++;
    worker.postMessage(request(id), transfer);
    // Referenced only while something waits on it, so an idle thread never keeps the process alive.
    if (this.pending.size === 0) worker.ref();
    const reply = new Promise<SessionNames | WireTensors | null>((resolve, reject) =>
      this.pending.set(id, { resolve, reject, onResult: job?.onResult, onEvent: job?.onEvent }),
    );
    const signal = job?.signal;
    if (signal !== undefined) {
      // Only the thread that took the job is told; a job whose thread died has been rejected already.
      const cancel = () => this.pending.has(id) && this.worker === worker && worker.postMessage({ kind: 'cancel', id } satisfies Request);
      if (signal.aborted) cancel();
      else signal.addEventListener('abort', cancel, { once: true });
      void reply.then(
        () => signal.removeEventListener('abort', cancel),
        () => signal.removeEventListener('abort', cancel),
      );
    }
    return reply;
  }

  /** How a job names the tokenizer: its JSON goes along only when the current thread has not got it. */
  private tokenizerRef(tokenizer: Tokenizer): TokenizerRef {
    let digest = this.tokenizerDigests.get(tokenizer);
    if (digest === undefined) {
      digest = createHash('sha256').update(JSON.stringify(tokenizer.toJSON())).digest('hex');
      this.tokenizerDigests.set(tokenizer, digest);
    }
    if (this.tokenizersInThread.has(digest)) return { digest };
    this.tokenizersInThread.add(digest);
    return { digest, json: tokenizer.toJSON() };
  }

  /** The number a shared array goes by, and whether this run must send it; undefined for other arrays. */
  private resident(data: ArrayBufferView, sent: number[]): ResidentRef | undefined {
    if (!isShared(data)) return undefined;
    const id = this.residentId(data);
    if (this.inThread.has(id)) return { id, send: false };
    this.inThread.add(id);
    sent.push(id);
    return { id, send: true };
  }

  private residentId(data: ArrayBufferView): number {
    let id = this.residentIds.get(data);
    if (id === undefined) {
      id = this.nextResident++;
      this.residentIds.set(data, id);
      this.collected.register(data, id);
    }
    return id;
  }

  private release(id: number): void {
    // The thread lets the sessions bound to the array go with it; no spec can name their keys again.
    for (const key of this.boundKeys.get(id) ?? []) this.opened.delete(key);
    this.boundKeys.delete(id);
    if (this.inThread.delete(id)) this.worker?.postMessage({ kind: 'release', residents: [id] } satisfies Request);
  }

  private start(): Worker {
    if (this.worker !== null) return this.worker;
    const worker = new Worker(bootstrap(this.entry), { eval: true, name: 'rise compute' });
    worker.unref();
    worker.on('message', (reply: Reply) => this.receive(reply));
    worker.on('error', (error) => this.lost(worker, new Error(`compute thread failed: ${error.message}`, { cause: error })));
    worker.on('exit', (code) => this.lost(worker, new Error(`compute thread exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }

  private receive(reply: Reply): void {
    const pending = this.pending.get(reply.id);
    if (pending === undefined) return;
    if ('result' in reply) {
      pending.onResult?.(reply.result, reply.done, reply.total);
      return;
    }
    if ('event' in reply) {
      pending.onEvent?.(reply.event);
      return;
    }
    this.settle(reply.id);
    if (reply.ok) pending.resolve(reply.value);
    else pending.reject(new Error(reply.message));
  }

  private settle(id: number): void {
    this.pending.delete(id);
    if (this.pending.size === 0) this.worker?.unref();
  }

  /** Forgets a thread that died or was stopped, rejecting what waited on it. */
  private lost(worker: Worker, error: Error): void {
    if (this.worker !== worker) return;
    this.worker = null;
    this.opened = new Map();
    this.inThread = new Set();
    this.tokenizersInThread = new Set();
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const p of waiting) p.reject(error);
  }
}

/** The one compute thread of this process, shared by every session. */
export const computeThread = new ComputeThread();
