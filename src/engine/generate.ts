/**
 * Sampling from a model: sampling.ts's batched loop, run as one job on the process's compute thread.
 * Every decode step feeds the whole KV cache and returns a logits row per sequence; in the thread that
 * owns the session neither crosses threads, and the sampling arithmetic leaves the main thread free.
 * Only finished requests come back, passed to `onResult` as they arrive.
 */
import ort from 'onnxruntime-node';
import { computeThread } from './compute-thread.ts';
import type { ModelConfig } from './config.ts';
import { checkRequests, DEFAULT_SAMPLING, type Generation, type GenerationRequest, type ResultHook, type SamplingOptions } from './sampling.ts';
import { getSession, type SessionOptions } from './session.ts';
import { shareTensors, type NamedTensor } from './tensor.ts';
import type { Tokenizer } from './tokenizer.ts';

export { DEFAULT_SAMPLING, sampleToken, type Generation, type GenerationRequest, type SamplingOptions } from './sampling.ts';

export interface GenerateHooks {
  /**
   * Called as each request finishes (in finishing order), e.g. to record it in a ledger; one call at a
   * time, each awaited before the next. One that throws stops the sampling, and `generate` rejects with
   * its error.
   */
  onResult?: ResultHook;
}

export class Generator {
  private readonly paramFeeds: Record<string, ort.Tensor>;

  constructor(
    readonly config: ModelConfig,
    params: NamedTensor[],
    readonly tokenizer: Tokenizer,
    readonly session: SessionOptions = {},
  ) {
    // Shared, the weights go to the compute thread once, not with every job.
    this.paramFeeds = Object.fromEntries(shareTensors(params).map((p) => [p.name, new ort.Tensor('float32', p.data, p.shape)]));
  }

  async generate(requests: GenerationRequest[], options: Partial<SamplingOptions> = {}, hooks: GenerateHooks = {}): Promise<Generation[]> {
    const o = { ...DEFAULT_SAMPLING, ...options };
    checkRequests(requests, this.config.context);
    const session = await getSession({ kind: 'decode', config: this.config }, this.session);
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
      await computeThread.generate(session.spec, this.paramFeeds, this.tokenizer, { config: this.config, requests, options: o }, onResult, stop.signal);
    } catch (error) {
      jobFailure = { error };
    }
    // Results that came before a failure were reported before it, as when the loop awaited each hook.
    await reported;
    const failure = hookFailure ?? jobFailure;
    if (failure !== null) throw failure.error;
    return requests.map((r) => results.get(r.id)!);
  }
}
