/**
 * A policy answers conversations. Rollout, relabeling and evaluation talk to this interface only, so the
 * learner, an expert model, and (in tests) a scripted stand-in are interchangeable.
 *
 * Context length, decided here: a conversation whose rendered prompt does not fit the model's context
 * is an error (`ContextOverflowError`, naming the request and both lengths), not a silent truncation —
 * cutting the front of a RISE state would drop the question, and cutting the back drops the latest attempt,
 * so either would quietly change the experiment. Callers that need long histories pass a sliding window
 * (`contextWindow`) when building the conversation. A response that runs into the context while being
 * generated is returned with `finishReason: 'context'` so callers can count it.
 */

import type { ModelConfig } from '../engine/config.ts';
import { Generator } from '../engine/generate.ts';
import type { SessionOptions } from '../engine/session.ts';
import type { NamedTensor } from '../engine/tensor.ts';
import type { Tokenizer } from '../engine/tokenizer.ts';
import type { Conversation } from './conversation.ts';
import type { ProgressHook } from './progress.ts';
import { chatTemplateFor } from './chat-template.ts';
import type { ChatTemplate } from './template.ts';

export interface SamplingParams {
  /** 0 = greedy. */
  temperature: number;
  topP: number;
  /** Generated tokens per response, the stop token included. */
  maxTokens: number;
  /** With the request id, names each request's random stream. */
  seed: number;
}

export interface PolicyRequest {
  /** Unique within a call; names the request's random stream, so equal (seed, id) give equal samples. */
  id: string;
  conversation: Conversation;
  /**
   * The caller will send this conversation again with the response in it (a later turn): a policy may keep
   * what it computed for this one, so the next prompt starts where this response ended.
   */
  continued?: boolean;
  /**
   * A policy may start this request from what it computed for earlier requests of the same scope, and
   * only those (`freshCacheScope`); none names the scope every other unnamed request shares.
   */
  cacheScope?: string;
}

let scopes = 0;

/**
 * A cache scope no other call in this process names. A collection or an evaluation takes one, so what it
 * computes never depends on what the process computed before it: what a prompt finds in the prefix cache
 * decides its prefill's shapes and so the last bits of its log-probabilities, and a sharded or resumed
 * step must repeat the unsharded one bit for bit. Within the call the turns still continue each other.
 */
export function freshCacheScope(): string {
  return `scope ${++scopes}`;
}

export type FinishReason = 'stop' | 'length' | 'context';

export interface PolicyResponse {
  id: string;
  /** The response text, without the stop token. */
  text: string;
  /** Tokens generated, the stop token included when one ended the response (as a remote endpoint lists them). */
  tokens: number;
  /** Their log-probability under the policy: the sum over the generated tokens. */
  logprob: number;
  finishReason: FinishReason;
}

export interface Policy {
  readonly name: string;
  /** One response per request, in request order. */
  respond(requests: PolicyRequest[], sampling: SamplingParams, hooks?: { onProgress?: ProgressHook }): Promise<PolicyResponse[]>;
}

export class ContextOverflowError extends Error {
  constructor(
    readonly requestId: string,
    readonly promptTokens: number,
    readonly context: number,
  ) {
    super(
      `request "${requestId}": the rendered conversation has ${promptTokens} tokens, which leaves no room to respond ` +
        `in the model context of ${context}; use a smaller contextWindow, fewer turns, or a model with a longer context`,
    );
    this.name = 'ContextOverflowError';
  }
}

export interface EnginePolicyOptions {
  name?: string;
  config: ModelConfig;
  params: NamedTensor[];
  tokenizer: Tokenizer;
  /** Defaults to the compact template, the built-in model's format. */
  template?: ChatTemplate;
  /** Rows decoded together. */
  batchSize?: number;
  session?: SessionOptions;
}

/** The built-in engine's model as a policy: template-rendered prompts, generation stopped at `<|end|>`. */
export class EnginePolicy implements Policy {
  readonly name: string;
  readonly template: ChatTemplate;
  private readonly generator: Generator;
  private readonly batchSize: number;

  constructor(private readonly o: EnginePolicyOptions) {
    this.name = o.name ?? 'engine';
    this.template = o.template ?? chatTemplateFor(o.tokenizer);
    this.generator = new Generator(o.config, o.params, o.tokenizer, o.session);
    this.batchSize = o.batchSize ?? 64;
  }

  async respond(requests: PolicyRequest[], sampling: SamplingParams, hooks: { onProgress?: ProgressHook } = {}): Promise<PolicyResponse[]> {
    if (requests.length === 0) return [];
    const context = this.o.config.context;
    const prompts = requests.map((r) => {
      const prompt = this.template.renderPrompt(r.conversation);
      if (prompt.length >= context) throw new ContextOverflowError(r.id, prompt.length, context);
      return { id: r.id, prompt, keepCache: r.continued, cacheScope: r.cacheScope };
    });
    const generations = await this.generator.generate(
      prompts,
      {
        temperature: sampling.temperature,
        topP: sampling.topP,
        topK: 0,
        maxNewTokens: sampling.maxTokens,
        stopTokens: [...this.template.stopTokens],
        stopStrings: [],
        seed: sampling.seed,
        batchSize: this.batchSize,
      },
      { onResult: hooks.onProgress && ((_g, done, total) => hooks.onProgress!({ done, total, unit: 'samples' })) },
    );
    return generations.map((g) => ({ id: g.id, text: g.text, tokens: g.tokens.length, logprob: g.logprobs.reduce((a, b) => a + b, 0), finishReason: g.finishReason }));
  }
}
