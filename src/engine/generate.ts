/**
 * Sampling from a model: sampling.ts's batched loop, run as one job on the process's compute thread.
 * Every decode step feeds the whole KV cache and returns a logits row per sequence; in the thread that
 * owns the session neither crosses threads, and the sampling arithmetic leaves the main thread free.
 * Only finished requests come back, passed to `onResult` as they arrive. A `ServingBatch` is the open
 * form, for a server: requests join the running batch as they come and leave it when their caller goes.
 */
import type { ServeEvent, ServingJob } from './compute-messages.ts';
import { computeThread, type ServingHandle } from './compute-thread.ts';
import type { ModelConfig } from './config.ts';
import { checkRequests, DEFAULT_SAMPLING, type Generation, type GenerationRequest, type ResultHook, type SamplingOptions } from './sampling.ts';
import { getSession, type Session, type SessionOptions } from './session.ts';
import type { NamedTensor } from './tensor.ts';
import type { Tokenizer } from './tokenizer.ts';

export { DEFAULT_SAMPLING, requestRngKey, sampleToken, type Generation, type GenerationRequest, type RequestSampling, type SamplingOptions } from './sampling.ts';

export interface GenerateHooks {
  /**
   * Called as each request finishes (in finishing order), e.g. to record it in a ledger; one call at a
   * time, each awaited before the next. One that throws stops the sampling, and `generate` rejects with
   * its error.
   */
  onResult?: ResultHook;
}

export class Generator {
  constructor(
    readonly config: ModelConfig,
    /** Bound to the decode session, which the compute thread keeps while these arrays live: they must not change. */
    readonly params: readonly NamedTensor[],
    readonly tokenizer: Tokenizer,
    readonly session: SessionOptions = {},
  ) {}

  /** The decode session with this model's weights bound (made on first use, shared with every job after). */
  decodeSession(): Promise<Session> {
    return getSession({ kind: 'decode', config: this.config }, this.session, this.params);
  }

  async generate(requests: GenerationRequest[], options: Partial<SamplingOptions> = {}, hooks: GenerateHooks = {}): Promise<Generation[]> {
    const o = { ...DEFAULT_SAMPLING, ...options };
    checkRequests(requests, this.config.context);
    const session = await this.decodeSession();
    const results = new Map<string, Generation>();
    // The hook runs here while the thread samples on: its calls are chained, so they stay one at a time
    // and in finishing order; the first that fails cancels the job and skips the calls after it.
    let reported: Promise<void> = Promise.resolve();
    let hookFailure: { error: unknown } | null = null;
    const stop = new AbortController();
    const onResult = (g: Generation, done: number, total: number) => {
      results.set(g.id, g);
      const hook = hooks.onResult;
      if (hook === undefined) return;
      reported = reported
        .then(() => (hookFailure === null ? hook(g, done, total) : undefined))
        .catch((error: unknown) => {
          hookFailure ??= { error };
          stop.abort();
        });
    };
    let jobFailure: { error: unknown } | null = null;
    try {
      await computeThread.generate(session.spec, this.tokenizer, { config: this.config, requests, options: o }, onResult, stop.signal);
    } catch (error) {
      jobFailure = { error };
    }
    // Results that came before a failure were reported before it, as when the loop awaited each hook.
    await reported;
    const failure = hookFailure ?? jobFailure;
    if (failure !== null) throw failure.error;
    return requests.map((r) => results.get(r.id)!);
  }

  /** An open batch over this model (see `ServingBatch`); `options` are the defaults each request may override. */
  serve(options: Partial<SamplingOptions> = {}): ServingBatch {
    return new ServingBatch(this, { ...DEFAULT_SAMPLING, ...options });
  }
}

/** A request of a serving batch whose caller went away before it finished. */
export class RequestDroppedError extends Error {
  override name = 'RequestDroppedError';
}

interface Submitted {
  resolve: (g: Generation) => void;
  reject: (error: Error) => void;
  onToken?: (token: number, logprob: number) => void;
}

/**
 * Continuous batching across callers: every submitted request joins the one decode loop in the compute
 * thread, at most `batchSize` rows at a time, the rest queued in arrival order; a request whose signal
 * aborts leaves the batch before the next step (its promise rejects with `RequestDroppedError` once its
 * row is free). The job starts with the first request and again after a failure, which rejects every
 * request in flight.
 */
export class ServingBatch {
  private job: { handle: ServingHandle; stop: AbortController } | null = null;
  private readonly submitted = new Map<string, Submitted>();
  private nextId = 0;
  private droppedCount = 0;

  constructor(
    private readonly generator: Generator,
    private readonly options: SamplingOptions,
  ) {}

  /** Requests submitted and not yet finished or dropped. */
  get active(): number {
    return this.submitted.size;
  }

  /** Requests dropped so far, their rows freed. */
  get dropped(): number {
    return this.droppedCount;
  }

  /**
   * Samples one response. `request.id` is replaced by one unique in the batch; the request's random stream
   * is its `rngKey`, so give one for reproducible output. `onToken` sees each token as it is drawn.
   */
  async submit(request: Omit<GenerationRequest, 'id' | 'streamTokens'>, hooks: { onToken?: (token: number, logprob: number) => void; signal?: AbortSignal } = {}): Promise<Generation> {
    const id = `r${this.nextId++}`;
    const queued: GenerationRequest = { ...request, id, ...(hooks.onToken ? { streamTokens: true } : {}) };
    checkRequests([queued], this.generator.config.context);
    const job = await this.start();
    const result = new Promise<Generation>((resolve, reject) => this.submitted.set(id, { resolve, reject, onToken: hooks.onToken }));
    job.handle.enqueue([queued]);
    const { signal } = hooks;
    if (signal !== undefined) {
      const drop = () => job.handle.drop(id);
      if (signal.aborted) drop();
      else signal.addEventListener('abort', drop, { once: true });
      const forget = () => signal.removeEventListener('abort', drop);
      result.then(forget, forget);
    }
    return result;
  }

  /** Stops the decode loop; requests in flight are rejected. */
  async close(): Promise<void> {
    const job = this.job;
    if (job === null) return;
    job.stop.abort();
    await job.handle.done.catch(() => undefined);
  }

  private async start(): Promise<{ handle: ServingHandle; stop: AbortController }> {
    if (this.job !== null) return this.job;
    const { config, tokenizer } = this.generator;
    const decode = await this.generator.decodeSession();
    if (this.job !== null) return this.job; // another request started it while the session was built
    const stop = new AbortController();
    const servingJob: ServingJob = { config, options: this.options };
    const handle = computeThread.serve(decode.spec, tokenizer, servingJob, (e) => this.event(e), stop.signal);
    const job = { handle, stop };
    this.job = job;
    handle.done.then(
      () => this.ended(job, new Error('the serving job ended')),
      (error: unknown) => this.ended(job, error instanceof Error ? error : new Error(String(error))),
    );
    return job;
  }

  private event(e: ServeEvent): void {
    if (e.kind === 'token') {
      this.submitted.get(e.request)?.onToken?.(e.token, e.logprob);
      return;
    }
    const id = e.kind === 'result' ? e.generation.id : e.request;
    const waiting = this.submitted.get(id);
    if (waiting === undefined) return;
    this.submitted.delete(id);
    if (e.kind === 'result') {
      waiting.resolve(e.generation);
      return;
    }
    this.droppedCount++;
    waiting.reject(new RequestDroppedError(`request ${id} was dropped: its caller went away`));
  }

  private ended(job: { handle: ServingHandle }, error: Error): void {
    if (this.job !== job) return;
    this.job = null;
    const waiting = [...this.submitted.values()];
    this.submitted.clear();
    for (const w of waiting) w.reject(error);
  }
}
