/**
 * A policy behind an OpenAI-compatible chat-completions API (OpenAI, vLLM, SGLang, `rise serve`), called
 * through the `openai` npm client, that never pays twice for a response.
 *
 * Every request is keyed by what determines its answer: the endpoint, the model, the messages, the
 * sampling knobs and the seed of its sample — the engine's stream key for the request (`requestRngKey`:
 * the step's seed and the request id), sent as the call's `seed`. A response recorded under that key (by
 * this step's earlier attempt, a replay, another arm, a later run) is read back instead of calling.
 * Otherwise the call is made, and its responses are recorded in the store before any is used.
 *
 * With n = 1 each request is one call seeded with its own stream key, which `rise serve` samples exactly
 * as the engine does in process. With n > 1, requests for the same messages share calls of up to n
 * choices, seeded with the first one's key; each choice is recorded under its own request's key.
 *
 * Failures: 429 and 5xx answers, timeouts and lost connections are retried with exponential backoff and
 * jitter, never sooner than the server's Retry-After (which a 429 imposes on every caller of the
 * endpoint in this process); after `retries` the step fails (`RemoteUnavailableError`) and its retry reads
 * back what was recorded. Any other 4xx fails the step at once with the server's message
 * (`RemotePolicyError`, not retried). A budget fails the step before the call that could exceed it
 * (`CallBudgetError`, not retried). The API key is used for the calls and nothing else: it is redacted
 * from every message that leaves here.
 */

import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI from 'openai';
import { requestRngKey } from '../engine/sampling.ts';
import type { Message } from '../rise/conversation.ts';
import type { Policy, PolicyRequest, PolicyResponse, SamplingParams } from '../rise/policy.ts';
import type { ProgressHook } from '../rise/progress.ts';
import { recordCall, recordedResponses, recordReads, stepSpend, type RecordedResponse, type Store } from '../store/index.ts';
import { endpointLimiter, type EndpointLimiter } from './limiter.ts';

/** The endpoint refused a call (a 4xx other than 429), or cannot be called at all: retrying cannot help. */
export class RemotePolicyError extends Error {
  override name = 'RemotePolicyError';
}

/** The endpoint kept failing (429, 5xx, timeouts, connections) through every retry: a later attempt may succeed. */
export class RemoteUnavailableError extends Error {
  override name = 'RemoteUnavailableError';
}

/** The next call could exceed the step's budget. */
export class CallBudgetError extends Error {
  override name = 'CallBudgetError';
}

export interface OpenAIPolicyOptions {
  /** Who the samples are from, as the ledger records it (learner, expert). */
  name: string;
  /** The API root, without a trailing slash. */
  baseUrl: string;
  model: string;
  /** Choices per call. */
  n: number;
  /** null = none (a local server). */
  apiKey: string | null;
  concurrency: number;
  requestsPerMinute: number | null;
  timeoutSeconds: number;
  retries: number;
  budget: { maxCalls: number | null; maxTokens: number | null };
  /** Where responses are recorded, and the step (and run) that pays for the calls. */
  ledger: { store: Store; stepKey: string; runId: string | null };
  /** Aborts calls in flight and waiting (the activity was cancelled). */
  signal?: AbortSignal;
}

/** Tokens a chat template may add per message (role markers, separators), for the budget's bound on a prompt. */
const TEMPLATE_TOKENS_PER_MESSAGE = 16;
/** And once per prompt (BOS, a default system prompt). */
const TEMPLATE_TOKENS_PER_PROMPT = 64;

const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 30_000;

/** The key of a request in the ledger: everything that determines its answer, in a fixed order. */
export function requestKey(r: { endpoint: string; model: string; messages: readonly Message[]; temperature: number; topP: number; maxTokens: number; seed: number }): string {
  const canonical = [r.endpoint, r.model, r.messages.map((m) => [m.role, m.content]), r.temperature, r.topP, r.maxTokens, r.seed];
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
}

/**
 * An upper bound on a prompt's tokens before any call: a token of a byte-level tokenizer covers at
 * least one byte, and templates add a few per message. Templates that inject long default prompts can
 * exceed it; the reported usage, not this bound, is what counts once a call is made.
 */
function promptTokenBound(messages: readonly Message[]): number {
  return TEMPLATE_TOKENS_PER_PROMPT + messages.reduce((n, m) => n + Buffer.byteLength(m.content, 'utf8') + TEMPLATE_TOKENS_PER_MESSAGE, 0);
}

function retryAfterMs(headers: Headers | undefined): number | null {
  const ms = Number.parseFloat(headers?.get('retry-after-ms') ?? '');
  if (Number.isFinite(ms)) return ms;
  const value = headers?.get('retry-after');
  if (value === null || value === undefined) return null;
  const seconds = Number.parseFloat(value);
  if (Number.isFinite(seconds)) return seconds * 1000;
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : null;
}

export class OpenAIPolicy implements Policy {
  readonly name: string;
  private readonly client: OpenAI;
  private readonly limiter: EndpointLimiter;
  /** Calls started and not yet recorded, and the tokens they may cost, against the budget. */
  private inFlight = { calls: 0, tokens: 0 };

  constructor(private readonly o: OpenAIPolicyOptions) {
    this.name = o.name;
    this.client = new OpenAI({
      baseURL: o.baseUrl,
      // The client insists on a credential; without a key none is sent (the header is removed).
      apiKey: o.apiKey ?? 'none',
      ...(o.apiKey === null ? { defaultHeaders: { Authorization: null } } : {}),
      // Nothing from this process's environment: no OPENAI_* variable reaches another endpoint.
      organization: null,
      project: null,
      adminAPIKey: null,
      maxRetries: 0,
      timeout: o.timeoutSeconds * 1000,
      logLevel: 'off',
    });
    this.limiter = endpointLimiter(o.baseUrl, { concurrency: o.concurrency, requestsPerMinute: o.requestsPerMinute });
  }

  async respond(requests: PolicyRequest[], sampling: SamplingParams, hooks: { onProgress?: ProgressHook } = {}): Promise<PolicyResponse[]> {
    const { store, stepKey, runId } = this.o.ledger;
    const seeds = requests.map((r) => requestRngKey(sampling.seed, r.id));
    const keys = requests.map((r, i) =>
      requestKey({ endpoint: this.o.baseUrl, model: this.o.model, messages: r.conversation.messages, temperature: sampling.temperature, topP: sampling.topP, maxTokens: sampling.maxTokens, seed: seeds[i] }),
    );
    const answers = new Map(await recordedResponses(store, keys));
    const served = keys.filter((k) => answers.has(k));
    await recordReads(store, stepKey, runId, served);
    let done = served.length;
    await hooks.onProgress?.({ done, total: requests.length, unit: 'samples' });

    // Requests with the same messages share calls of up to n choices, in request order.
    const byMessages = new Map<string, number[]>();
    requests.forEach((r, i) => {
      if (answers.has(keys[i])) return;
      const group = JSON.stringify(r.conversation.messages.map((m) => [m.role, m.content]));
      byMessages.set(group, [...(byMessages.get(group) ?? []), i]);
    });
    const calls: number[][] = [];
    for (const group of byMessages.values()) for (let i = 0; i < group.length; i += this.o.n) calls.push(group.slice(i, i + this.o.n));

    // After a failure no further call starts, and the calls in flight finish and are recorded (they may
    // be paid for) before the failure is raised: a failed attempt leaves nothing running behind it.
    const halt = new AbortController();
    const settled = await Promise.allSettled(
      calls.map(async (call) => {
        try {
          const messages = requests[call[0]].conversation.messages;
          const recorded = await this.call(messages, sampling, seeds[call[0]], call.map((i) => keys[i]), halt);
          for (const [key, response] of recorded) answers.set(key, response);
          done += call.length;
          await hooks.onProgress?.({ done, total: requests.length, unit: 'samples' });
        } catch (error) {
          halt.abort(error);
          throw error;
        }
      }),
    );
    if (halt.signal.aborted) throw halt.signal.reason;
    for (const s of settled) if (s.status === 'rejected') throw s.reason;
    return requests.map((r, i) => {
      const a = answers.get(keys[i])!;
      return { id: r.id, text: a.text, tokens: a.tokens, logprob: a.logprob, finishReason: a.finishReason === 'length' ? 'length' : 'stop' };
    });
  }

  /**
   * One paid call answering the requests `keys` (as its choices), recorded before it returns. `halt`
   * keeps it from starting (or retrying) once another call has failed the step; once started, only the
   * activity's cancellation aborts it.
   */
  private async call(messages: readonly Message[], sampling: SamplingParams, seed: number, keys: string[], halt: AbortController): Promise<Map<string, RecordedResponse>> {
    halt.signal.throwIfAborted();
    const n = keys.length;
    const cost = promptTokenBound(messages) + n * sampling.maxTokens;
    try {
      await this.checkBudget(cost);
    } catch (error) {
      halt.abort(error);
      throw error;
    }
    this.inFlight.calls++;
    this.inFlight.tokens += cost;
    try {
      const completion = await this.withRetries(halt, () =>
        this.client.chat.completions.create(
          {
            model: this.o.model,
            messages: messages.map((m) => ({ role: m.role, content: m.content })),
            temperature: sampling.temperature,
            top_p: sampling.topP,
            max_tokens: sampling.maxTokens,
            seed,
            logprobs: true,
            ...(n > 1 ? { n } : {}),
          },
          { signal: this.o.signal },
        ),
      );
      const choices = [...completion.choices].sort((a, b) => a.index - b.index);
      if (choices.length !== n) throw new RemotePolicyError(this.redact(`${this.where()}: asked for ${n} choices, got ${choices.length}`));
      const { store, stepKey, runId } = this.o.ledger;
      return recordCall(store, {
        stepKey,
        runId,
        endpoint: this.o.baseUrl,
        model: this.o.model,
        promptTokens: completion.usage?.prompt_tokens ?? 0,
        completionTokens: completion.usage?.completion_tokens ?? 0,
        responses: choices.map((c, j) => {
          const logprobs = c.logprobs?.content ?? null;
          return {
            key: keys[j],
            text: c.message.content ?? '',
            finishReason: c.finish_reason,
            // Without log-probabilities, a single choice's count is the call's.
            tokens: logprobs?.length ?? (n === 1 ? (completion.usage?.completion_tokens ?? 0) : 0),
            logprob: logprobs?.reduce((sum, t) => sum + t.logprob, 0) ?? 0,
          };
        }),
      });
    } finally {
      this.inFlight.calls--;
      this.inFlight.tokens -= cost;
    }
  }

  /** Refuses a call that, with those in flight, could take the step past its budget. */
  private async checkBudget(cost: number): Promise<void> {
    const { maxCalls, maxTokens } = this.o.budget;
    if (maxCalls === null && maxTokens === null) return;
    const spent = await stepSpend(this.o.ledger.store, this.o.ledger.stepKey);
    if (maxCalls !== null && spent.calls + this.inFlight.calls + 1 > maxCalls) {
      throw new CallBudgetError(`${this.where()}: the step's budget of ${maxCalls} calls is spent (${spent.calls} made, ${this.inFlight.calls} in flight); raise budget.maxCalls to go on`);
    }
    if (maxTokens !== null && spent.tokens + this.inFlight.tokens + cost > maxTokens) {
      throw new CallBudgetError(
        `${this.where()}: the next call could take the step past its budget of ${maxTokens} tokens (${spent.tokens} paid, up to ${this.inFlight.tokens} in flight, up to ${cost} for this call); raise budget.maxTokens to go on`,
      );
    }
  }

  /**
   * Makes the call, retrying what may pass. A failure that ends the step halts the other calls while
   * it still holds its slot, so no waiting call starts after it.
   */
  private async withRetries<T>(halt: AbortController, call: () => Promise<T>): Promise<T> {
    const waiting = this.o.signal === undefined ? halt.signal : AbortSignal.any([halt.signal, this.o.signal]);
    for (let attempt = 0; ; attempt++) {
      const outcome = await this.limiter.run(async (): Promise<{ value: T } | { wait: number }> => {
        halt.signal.throwIfAborted();
        try {
          return { value: await call() };
        } catch (error) {
          const verdict = this.verdict(error, attempt);
          if ('final' in verdict) {
            halt.abort(verdict.final);
            throw verdict.final;
          }
          // A 429's Retry-After holds the endpoint before this call's slot is free for the next caller.
          if (verdict.rateLimited) this.limiter.holdUntil(Date.now() + verdict.wait);
          return { wait: verdict.wait };
        }
      }, waiting);
      if ('value' in outcome) return outcome.value;
      const backoff = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** attempt) * (0.5 + Math.random() / 2);
      await sleep(Math.max(outcome.wait, backoff), undefined, { signal: waiting });
    }
  }

  /** What a failed call means: the end of the step, or a retry no sooner than `wait` ms. */
  private verdict(error: unknown, attempt: number): { final: unknown } | { wait: number; rateLimited: boolean } {
    if (error instanceof OpenAI.APIUserAbortError || this.o.signal?.aborted) return { final: error };
    let why: string;
    let wait = 0;
    let rateLimited = false;
    if (error instanceof OpenAI.APIConnectionError) {
      // Timeouts included (APIConnectionTimeoutError).
      why = error instanceof OpenAI.APIConnectionTimeoutError ? `no answer within ${this.o.timeoutSeconds} s` : `connection failed (${error.message})`;
    } else if (error instanceof OpenAI.APIError && error.status !== undefined) {
      const message = (error.error as { message?: unknown } | undefined)?.message;
      why = `HTTP ${error.status}: ${typeof message === 'string' ? message : error.message}`;
      if (error.status !== 429 && error.status < 500) return { final: new RemotePolicyError(this.redact(`${this.where()} refused the call: ${why}`)) };
      const after = retryAfterMs(error.headers);
      if (after !== null) [wait, rateLimited] = [after, error.status === 429];
    } else {
      return { final: error };
    }
    if (attempt >= this.o.retries) return { final: new RemoteUnavailableError(this.redact(`${this.where()}: ${why}, after ${this.o.retries} retries`)) };
    return { wait, rateLimited };
  }

  private where(): string {
    return `remote policy ${this.o.model} at ${this.o.baseUrl}`;
  }

  private redact(message: string): string {
    return this.o.apiKey === null ? message : message.replaceAll(this.o.apiKey, '[API key]');
  }
}
