/**
 * What the main thread and the compute thread (compute-thread.ts, compute-worker.ts) say to each other,
 * and how tensors cross between them. Structured clone would copy an ArrayBuffer whole, even under a
 * small view, and onnxruntime-node refuses SharedArrayBuffer-backed feeds; so a feed crosses as a copy
 * of just its view's bytes, whose buffer is then transferred rather than copied again, and constant
 * weights (`shareTensors`) cross once and stay in the thread ("resident"), named by a number.
 */
import ort from 'onnxruntime-node';
import type { ModelConfig } from './config.ts';
import type { Generation, GenerationRequest, SamplingOptions } from './sampling.ts';
import type { TokenizerJSON } from './tokenizer.ts';

/** A tensor as it crosses threads: an ort.Tensor's prototype would not survive structured clone. */
export type WireTensor =
  | { type: ort.Tensor.Type; dims: readonly number[]; data: ort.Tensor.DataType }
  | { type: ort.Tensor.Type; dims: readonly number[]; resident: number };

export type WireTensors = Record<string, WireTensor>;

/** A session the compute thread can (re)create: after a crash a fresh thread opens it again. */
export interface SessionSpec {
  /** Names the session in the thread: the graph digest with the options that differ between sessions. */
  key: string;
  /** The serialized ONNX model. */
  model: Uint8Array;
  options: ort.InferenceSession.SessionOptions;
  /** The model's bound weights (`Graph.weights`), shared arrays: the thread keeps one session per set of them. */
  weights?: Record<string, ort.Tensor>;
}

export interface SessionNames {
  inputNames: readonly string[];
  outputNames: readonly string[];
}

/**
 * A tokenizer as a generation job names it: by the SHA-256 of its JSON, which comes along only when the
 * thread has not been sent it yet (building a Hugging Face tokenizer from it takes a quarter second).
 */
export interface TokenizerRef {
  digest: string;
  json?: TokenizerJSON;
}

/** What a generation job samples: sampling.ts's `sampleBatch` over the decode session. */
export interface GenerationJob {
  config: ModelConfig;
  requests: GenerationRequest[];
  options: SamplingOptions;
}

/** What a serving job decodes: an open queue (sampling.ts's `serveBatch`), requests' knobs over `options`. */
export interface ServingJob {
  config: ModelConfig;
  options: SamplingOptions;
}

/** What a serving job reports, as it happens. */
export type ServeEvent =
  | { kind: 'result'; generation: Generation }
  | { kind: 'token'; request: string; token: number; logprob: number }
  /** The dropped request's row (or queue place) is free. */
  | { kind: 'dropped'; request: string };

export type Request =
  /** `weights`: the bound weights, all resident (`adopt` brings those the thread has not seen yet). */
  | { kind: 'open'; id: number; key: string; model: Uint8Array; options: ort.InferenceSession.SessionOptions; weights: WireTensors; adopt: [number, ort.Tensor.DataType][] }
  /** `adopt`: resident arrays the thread has not seen yet, to keep before running. */
  | { kind: 'run'; id: number; key: string; feeds: WireTensors; adopt: [number, ort.Tensor.DataType][] }
  /** Samples with the decode session `key` (its weights bound); results stream back as they finish. */
  | { kind: 'generate'; id: number; key: string; tokenizer: TokenizerRef; job: GenerationJob }
  /** Serves an open queue with the decode session `key`; events stream back until the job is cancelled. */
  | { kind: 'serve'; id: number; key: string; tokenizer: TokenizerRef; job: ServingJob }
  /** Requests for the serving job `id` (checked by the caller). Not answered. */
  | { kind: 'enqueue'; id: number; requests: GenerationRequest[] }
  /** Drops a request of the serving job `id`; answered by its `dropped` event. */
  | { kind: 'drop'; id: number; request: string }
  /** Stops the generation or serving job `id` before its next decode step; the job then fails. Not answered. */
  | { kind: 'cancel'; id: number }
  /** Resident arrays the main thread no longer holds (and the sessions bound to them); not answered. */
  | { kind: 'release'; residents: number[] }
  /** Cancel the generation jobs, finish the run in progress and exit, unanswered (see ComputeThread.stop). */
  | { kind: 'close' };

export type Reply =
  /** A generation job answers `null` once all its results are sent. */
  | { id: number; ok: true; value: SessionNames | WireTensors | null }
  | { id: number; ok: false; message: string }
  /** One finished request of a generation job, in finishing order, before the job's answer. */
  | { id: number; result: Generation; done: number; total: number }
  | { id: number; event: ServeEvent };

/** How a run names a resident array: `send` when the thread does not hold it yet. */
export interface ResidentRef {
  id: number;
  send: boolean;
}

export interface Packed {
  tensors: WireTensors;
  adopt: [number, ort.Tensor.DataType][];
  transfer: ArrayBuffer[];
}

/**
 * Tensors ready to post. `resident` names the arrays the thread keeps (undefined for the others).
 * `owned` says the tensors' buffers may be handed over as they are (the thread's own outputs); otherwise
 * the callers' arrays are copied and left untouched.
 */
export function packTensors(
  tensors: Record<string, ort.Tensor>,
  resident: (data: ArrayBufferView) => ResidentRef | undefined,
  owned: boolean,
): Packed {
  const packed: Packed = { tensors: {}, adopt: [], transfer: [] };
  const transfer = new Set<ArrayBuffer>();
  const own = (data: ort.Tensor.DataType): ort.Tensor.DataType => {
    if (!ArrayBuffer.isView(data)) return data;
    const mine = owned ? data : data.slice();
    transfer.add(mine.buffer as ArrayBuffer);
    return mine;
  };
  for (const [name, t] of Object.entries(tensors)) {
    const data = t.data;
    const ref = ArrayBuffer.isView(data) ? resident(data) : undefined;
    if (ref === undefined) {
      packed.tensors[name] = { type: t.type, dims: t.dims, data: own(data) };
    } else {
      if (ref.send) packed.adopt.push([ref.id, own(data)]);
      packed.tensors[name] = { type: t.type, dims: t.dims, resident: ref.id };
    }
  }
  packed.transfer = [...transfer];
  return packed;
}

/** ort.Tensors over the wire tensors' data; `resident` looks up the arrays the thread keeps. */
export function unpackTensors(wire: WireTensors, resident: (id: number) => ort.Tensor.DataType = noResidents): Record<string, ort.Tensor> {
  return Object.fromEntries(
    Object.entries(wire).map(([name, w]) => [name, new ort.Tensor(w.type, 'data' in w ? w.data : resident(w.resident), w.dims)]),
  );
}

function noResidents(id: number): never {
  throw new Error(`compute thread: resident array ${id} in a reply`);
}
