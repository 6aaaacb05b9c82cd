/**
 * The request bodies `rise serve` accepts (OpenAI's chat completions and completions), as JSON Schemas
 * that Fastify validates before a handler runs, and how one body becomes the engine requests of its
 * choices. Fields the API defines that would change the result and that the engine does not do
 * (penalties, logit bias, tools, top log-probabilities) are refused with a 400 naming the field rather
 * than ignored; fields that change nothing (user, metadata) pass.
 *
 * Random streams: a choice's stream is named by the request's `seed`. Choice 0 of a request with a
 * seed in 0..2^32 - 1 samples from the stream whose key is that seed (`Rng.keyed`), so a client that
 * knows the engine's stream key of a sample (`requestRngKey`) gets exactly the in-process sample;
 * choice i > 0 samples from `hashSeed(key, 'choice', i)`. Other seeds are hashed to a key first. A
 * request without a seed gets a random one.
 */

import { randomInt } from 'node:crypto';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { hashSeed } from '../engine/random.ts';
import type { RequestSampling } from '../engine/sampling.ts';
import { ApiError, unsupported } from './errors.ts';

const orNull = <T extends TSchema>(schema: T) => Type.Optional(Type.Union([schema, Type.Null()]));

/** Up to 4 strings that end a response where they first appear (left out of it). */
const Stop = orNull(Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { maxItems: 4 })]));

const sampling = {
  model: Type.String({ minLength: 1 }),
  n: orNull(Type.Integer({ minimum: 1, maximum: 64 })),
  temperature: orNull(Type.Number({ minimum: 0, maximum: 2 })),
  top_p: orNull(Type.Number({ exclusiveMinimum: 0, maximum: 1 })),
  max_tokens: orNull(Type.Integer({ minimum: 1 })),
  stop: Stop,
  seed: orNull(Type.Integer()),
  stream: orNull(Type.Boolean()),
  stream_options: orNull(Type.Object({ include_usage: Type.Optional(Type.Boolean()) })),
  presence_penalty: orNull(Type.Number()),
  frequency_penalty: orNull(Type.Number()),
  logit_bias: orNull(Type.Record(Type.String(), Type.Number())),
};

const TextPart = Type.Object({ type: Type.Literal('text'), text: Type.String() });

const ROLES = ['system', 'user', 'assistant'] as const;

export const ChatMessageSchema = Type.Object({
  // An enum rather than a union of constants, so a wrong role's error lists the roles.
  role: Type.Unsafe<(typeof ROLES)[number]>({ type: 'string', enum: [...ROLES] }),
  content: Type.Union([Type.String(), Type.Array(TextPart, { minItems: 1 })]),
  name: Type.Optional(Type.String()),
});

export const ChatBodySchema = Type.Object({
  ...sampling,
  messages: Type.Array(ChatMessageSchema, { minItems: 1 }),
  max_completion_tokens: orNull(Type.Integer({ minimum: 1 })),
  logprobs: orNull(Type.Boolean()),
  top_logprobs: orNull(Type.Integer({ minimum: 0, maximum: 20 })),
});
export type ChatBody = Static<typeof ChatBodySchema>;

const TokenIds = Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1 });

export const CompletionBodySchema = Type.Object({
  ...sampling,
  prompt: Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1 }), TokenIds, Type.Array(TokenIds, { minItems: 1 })]),
  logprobs: orNull(Type.Integer({ minimum: 0, maximum: 5 })),
  echo: orNull(Type.Boolean()),
  suffix: orNull(Type.String()),
  best_of: orNull(Type.Integer({ minimum: 1 })),
});
export type CompletionBody = Static<typeof CompletionBodySchema>;

/** OpenAI's default for the legacy completions endpoint. */
const COMPLETION_MAX_TOKENS = 16;

/** Fields of either body that ask for what the engine does not do. */
export function refuseUnsupported(body: Record<string, unknown>): void {
  for (const param of ['presence_penalty', 'frequency_penalty'] as const) {
    const value = body[param];
    if (typeof value === 'number' && value !== 0) throw unsupported(param, 'penalties are not supported; send 0 or leave it out');
  }
  const bias = body.logit_bias;
  if (bias !== null && typeof bias === 'object' && Object.keys(bias).length > 0) throw unsupported('logit_bias', 'not supported; send {} or leave it out');
  for (const param of ['tools', 'functions', 'tool_choice', 'function_call']) {
    if (body[param] !== undefined && body[param] !== null && !(Array.isArray(body[param]) && body[param].length === 0)) {
      throw unsupported(param, 'tool calls are not supported');
    }
  }
  const format = body.response_format as { type?: unknown } | null | undefined;
  if (format !== undefined && format !== null && format.type !== 'text') throw unsupported('response_format', 'only {"type": "text"} is supported');
  if (typeof body.top_logprobs === 'number' && body.top_logprobs > 0) {
    throw unsupported('top_logprobs', 'only the sampled token\'s log-probability is returned; send 0 or leave it out');
  }
}

/** The text of a message: a string, or its text parts joined. */
export function messageText(content: ChatBody['messages'][number]['content']): string {
  return typeof content === 'string' ? content : content.map((p) => p.text).join('');
}

/** A request's random-stream key (see the module comment). */
export function seedKey(seed: number | null | undefined): number {
  if (seed === null || seed === undefined) return randomInt(2 ** 32);
  return seed >= 0 && seed <= 0xffffffff ? seed : hashSeed('seed', seed);
}

/** The stream key of choice `index` of a request whose seed has key `key`. */
export function choiceKey(key: number, index: number): number {
  return index === 0 ? key : hashSeed(key, 'choice', index);
}

export function stopStrings(stop: string | string[] | null | undefined): string[] {
  return stop === null || stop === undefined ? [] : typeof stop === 'string' ? [stop] : stop;
}

/**
 * The engine knobs of a body; `stopTokens` end every response. Without `max_tokens` a chat response may
 * use the rest of the context; a response that reaches the context ends with finish reason "length".
 */
export function requestSampling(
  body: { temperature?: number | null; top_p?: number | null; stop?: string | string[] | null },
  maxNewTokens: number,
  stopTokens: readonly number[],
): RequestSampling {
  return {
    temperature: body.temperature ?? 1,
    topP: body.top_p ?? 1,
    topK: 0,
    maxNewTokens,
    stopTokens: [...stopTokens],
    stopStrings: stopStrings(body.stop),
  };
}

export function completionMaxTokens(body: CompletionBody): number {
  return body.max_tokens ?? COMPLETION_MAX_TOKENS;
}

/** The prompts of a completions body, as token ids (`encode` for text prompts). */
export function completionPrompts(body: CompletionBody, encode: (text: string) => number[]): number[][] {
  if (body.echo === true) throw unsupported('echo', 'not supported');
  if (body.suffix !== undefined && body.suffix !== null) throw unsupported('suffix', 'not supported');
  if (body.best_of !== undefined && body.best_of !== null && body.best_of !== (body.n ?? 1)) throw unsupported('best_of', 'not supported; use n');
  if (typeof body.logprobs === 'number' && body.logprobs > 0) {
    throw unsupported('logprobs', 'only the sampled token\'s log-probability is returned (logprobs 0); alternatives are not');
  }
  const { prompt } = body;
  if (typeof prompt === 'string') return [encode(prompt)];
  if (prompt.every((p) => typeof p === 'string')) return (prompt as string[]).map(encode);
  if (prompt.every((p) => typeof p === 'number')) return [prompt as number[]];
  return prompt as number[][];
}

/** A prompt that is empty, names tokens the vocabulary lacks, or leaves no room to respond in the context. */
export function checkPrompt(prompt: number[], model: { context: number; vocabSize: number }, param: string): void {
  const { context, vocabSize } = model;
  if (prompt.length === 0) throw new ApiError(400, `${param}: the prompt is empty`, param);
  const unknown = prompt.find((t) => t >= vocabSize);
  if (unknown !== undefined) throw new ApiError(400, `${param}: token ${unknown} is not in the vocabulary (${vocabSize} tokens)`, param);
  if (prompt.length >= context) {
    throw new ApiError(400, `This model's maximum context length is ${context} tokens; the prompt has ${prompt.length}, which leaves no room for a response.`, param, 'context_length_exceeded');
  }
}
