/**
 * `rise serve`'s HTTP side: an OpenAI-compatible API over one model, on Fastify.
 *
 *   POST /v1/chat/completions   messages rendered with the model's chat template, generation stopped at
 *                               its end of turn
 *   POST /v1/completions        prompts continued as plain text (the model's BOS, then the text), stopped
 *                               at its end-of-sequence token
 *   GET  /v1/models             the one model, by the name clients pass as `model`
 *   GET  /health                {status, model, active, dropped}: choices being sampled or queued, and
 *                               those dropped so far because their client went away
 *
 * Every choice of every request joins one continuous batch in the compute thread (`ServingBatch`), so
 * concurrent requests decode together; a client that disconnects drops its choices before the next
 * decode step. A prompt starts from the longest prefix the model's prefix cache holds (prompts prefilled
 * before, and every chat response), so a chat's next message prefills only what is new;
 * `usage.prompt_tokens_details.cached_tokens` counts the prompt tokens that came from it. With `stream: true` the response is server-sent events, one chunk per piece of text that
 * can no longer change (`TextStream`), then `data: [DONE]`.
 *
 * Log-probabilities are those of the sampled tokens under the model (before temperature), one entry per
 * generated token: the token that ended a response is the last entry, so the entries are exactly
 * `usage.completion_tokens` of them.
 */

import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import type { ModelConfig } from '../engine/config.ts';
import { RequestDroppedError, type Generation, type RequestSampling, type ServingBatch } from '../engine/generate.ts';
import type { Tokenizer } from '../engine/tokenizer.ts';
import type { ChatTemplate } from '../rise/template.ts';
import { ApiError } from './errors.ts';
import {
  ChatBodySchema,
  CompletionBodySchema,
  checkPrompt,
  choiceKey,
  completionMaxTokens,
  completionPrompts,
  messageText,
  refuseUnsupported,
  requestSampling,
  seedKey,
  type ChatBody,
  type CompletionBody,
} from './requests.ts';
import { TextStream } from './text-stream.ts';

export interface ServedModel {
  /** The name clients pass as `model`. */
  id: string;
  config: ModelConfig;
  tokenizer: Tokenizer;
  template: ChatTemplate;
  batch: ServingBatch;
}

export interface ServerOptions {
  /** Fastify's logger (pino): false for none. */
  logger?: boolean | { level: string };
}

type FinishReason = 'stop' | 'length';
const finishReason = (g: Generation): FinishReason => (g.finishReason === 'stop' ? 'stop' : 'length');

/** One choice to sample: its index in the response, its prompt and its random stream. */
interface Choice {
  index: number;
  /** Choices of one prompt share the array. */
  prompt: number[];
  rngKey: number;
  /** Keep the choice's keys and values for a next request that extends it (a chat's next message). */
  keepCache: boolean;
}

/** How one endpoint shapes its responses and chunks. */
interface Shape {
  idPrefix: string;
  object: string;
  chunkObject: string;
  /** The whole choice of a response. */
  choice(index: number, g: Generation, logprobs: boolean): object;
  /** A streamed piece of a choice: text and the log-probabilities of the tokens it covers (null when not asked for). */
  delta(index: number, text: string, tokens: TokenLogprob[] | null): object;
  /** Its last chunk. */
  finish(index: number, reason: FinishReason): object;
  /** Chunks before any text (the chat role). */
  opening(index: number): object | null;
}

interface TokenLogprob {
  token: number;
  logprob: number;
}

function sse(reply: FastifyReply, data: unknown): void {
  reply.raw.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
}

export function createServer(model: ServedModel, options: ServerOptions = {}): FastifyInstance {
  const { tokenizer, template, batch, config } = model;
  const app = Fastify({
    logger: options.logger ?? false,
    // OpenAI's API is strict about types: "0.5" is not a number, and unknown fields are kept (and ignored).
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false } },
    bodyLimit: 32 * 2 ** 20,
  });
  const created = Math.floor(Date.now() / 1000);
  const tokenText = (token: number) => tokenizer.decode([token]);

  const chatLogprobs = (tokens: TokenLogprob[]) => ({
    content: tokens.map((t) => {
      const text = tokenText(t.token);
      return { token: text, logprob: t.logprob, bytes: [...Buffer.from(text, 'utf8')], top_logprobs: [] };
    }),
  });
  const completionLogprobs = (tokens: TokenLogprob[]) => {
    const texts = tokens.map((t) => tokenText(t.token));
    const offsets: number[] = [];
    texts.reduce((at, text) => (offsets.push(at), at + text.length), 0);
    return { tokens: texts, token_logprobs: tokens.map((t) => t.logprob), top_logprobs: null, text_offset: offsets };
  };
  const pairs = (g: Generation): TokenLogprob[] => g.tokens.map((token, i) => ({ token, logprob: g.logprobs[i] }));

  const chat: Shape = {
    idPrefix: 'chatcmpl',
    object: 'chat.completion',
    chunkObject: 'chat.completion.chunk',
    choice: (index, g, logprobs) => ({
      index,
      message: { role: 'assistant', content: g.text },
      logprobs: logprobs ? chatLogprobs(pairs(g)) : null,
      finish_reason: finishReason(g),
    }),
    delta: (index, text, tokens) => ({ index, delta: { content: text }, logprobs: tokens === null ? null : chatLogprobs(tokens), finish_reason: null }),
    finish: (index, reason) => ({ index, delta: {}, logprobs: null, finish_reason: reason }),
    opening: (index) => ({ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }),
  };
  const completion: Shape = {
    idPrefix: 'cmpl',
    object: 'text_completion',
    chunkObject: 'text_completion',
    choice: (index, g, logprobs) => ({ index, text: g.text, logprobs: logprobs ? completionLogprobs(pairs(g)) : null, finish_reason: finishReason(g) }),
    delta: (index, text, tokens) => ({ index, text, logprobs: tokens === null ? null : completionLogprobs(tokens), finish_reason: null }),
    finish: (index, reason) => ({ index, text: '', logprobs: null, finish_reason: reason }),
    opening: () => null,
  };

  const checkModel = (name: string) => {
    if (name !== model.id) throw new ApiError(404, `The model \`${name}\` does not exist; this server serves \`${model.id}\`.`, 'model', 'model_not_found');
  };

  /** Samples every choice and answers with the whole response, or streams it. */
  async function respond(
    reply: FastifyReply,
    shape: Shape,
    choices: Choice[],
    sampling: RequestSampling,
    o: { stream: boolean; logprobs: boolean; includeUsage: boolean; promptTokens: number },
  ) {
    const id = `${shape.idPrefix}-${randomUUID()}`;
    const head = { id, created: Math.floor(Date.now() / 1000), model: model.id, system_fingerprint: `rise-${model.id}` };
    // A client that goes away takes its choices out of the batch.
    const gone = new AbortController();
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) gone.abort();
    });
    const usage = (generations: Generation[]) => {
      const completionTokens = generations.reduce((n, g) => n + g.tokens.length, 0);
      // Per prompt, as prompt_tokens counts them. Its first choice prefilled it; choices admitted after
      // found it in the cache, so the fewest cached is what the prompt cost.
      const cached = new Map<number[], number>();
      choices.forEach((c, i) => cached.set(c.prompt, Math.min(cached.get(c.prompt) ?? Infinity, generations[i].cachedTokens)));
      return {
        prompt_tokens: o.promptTokens,
        completion_tokens: completionTokens,
        total_tokens: o.promptTokens + completionTokens,
        prompt_tokens_details: { cached_tokens: [...cached.values()].reduce((a, b) => a + b, 0) },
      };
    };

    if (!o.stream) {
      const generations = await Promise.all(choices.map((c) => batch.submit({ prompt: c.prompt, sampling, rngKey: c.rngKey, keepCache: c.keepCache }, { signal: gone.signal })));
      return { ...head, object: shape.object, choices: choices.map((c, i) => shape.choice(c.index, generations[i], o.logprobs)), usage: usage(generations) };
    }

    reply.hijack();
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const chunk = (choice: object | null, extra: object = {}) => sse(reply, { ...head, object: shape.chunkObject, choices: choice === null ? [] : [choice], ...extra });
    for (const c of choices) {
      const opening = shape.opening(c.index);
      if (opening !== null) chunk(opening);
    }
    try {
      const generations = await Promise.all(
        choices.map(async (c) => {
          const text = new TextStream(tokenizer, sampling.stopTokens, sampling.stopStrings);
          let unsent: TokenLogprob[] = [];
          const take = () => {
            const tokens = unsent;
            unsent = [];
            return o.logprobs ? tokens : null;
          };
          const onToken = (token: number, logprob: number) => {
            unsent.push({ token, logprob });
            const delta = text.push(token);
            if (delta !== '') chunk(shape.delta(c.index, delta, take()));
          };
          const g = await batch.submit({ prompt: c.prompt, sampling, rngKey: c.rngKey, keepCache: c.keepCache }, { onToken, signal: gone.signal });
          const rest = text.rest(g.text);
          if (rest !== '' || (o.logprobs && unsent.length > 0)) chunk(shape.delta(c.index, rest, take()));
          chunk(shape.finish(c.index, finishReason(g)));
          return g;
        }),
      );
      if (o.includeUsage) chunk(null, { usage: usage(generations) });
      sse(reply, '[DONE]');
    } catch (error) {
      if (!(error instanceof RequestDroppedError)) {
        reply.log.error(error);
        sse(reply, new ApiError(500, error instanceof Error ? error.message : String(error)).body());
      }
    } finally {
      reply.raw.end();
    }
    return reply;
  }

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof RequestDroppedError) return reply; // nobody is listening
    if (error instanceof ApiError) return reply.code(error.status).send(error.body());
    if (error.validation !== undefined) {
      const first = error.validation[0];
      const missing = first.keyword === 'required' ? (first.params as { missingProperty: string }).missingProperty : null;
      const path = [...first.instancePath.split('/').filter((p) => p !== ''), ...(missing !== null ? [missing] : [])];
      const param = path.map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : i === 0 ? p : `.${p}`)).join('') || null;
      const allowed = (first.params as { allowedValues?: unknown[] }).allowedValues;
      const message = `${param ?? 'body'}: ${missing !== null ? 'is required' : first.message}${allowed ? ` (${allowed.map((v) => JSON.stringify(v)).join(', ')})` : ''}`;
      return reply.code(400).send(new ApiError(400, message, param).body());
    }
    // Fastify's own client errors: bad JSON, a wrong content type, a body too large.
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      return reply.code(error.statusCode).send(new ApiError(error.statusCode, error.message, null, error.code ?? null).body());
    }
    request.log.error(error);
    return reply.code(500).send(new ApiError(500, error.message).body());
  });
  app.setNotFoundHandler((request, reply) => reply.code(404).send(new ApiError(404, `Unknown request URL: ${request.method} ${request.url}`, null, 'unknown_url').body()));

  app.get('/health', async () => ({ status: 'ok', model: model.id, active: batch.active, dropped: batch.dropped }));

  const modelCard = () => ({ id: model.id, object: 'model', created, owned_by: 'rise' });
  app.get('/v1/models', async () => ({ object: 'list', data: [modelCard()] }));
  app.get<{ Params: { id: string } }>('/v1/models/:id', async (request) => {
    checkModel(request.params.id);
    return modelCard();
  });

  app.post<{ Body: ChatBody }>('/v1/chat/completions', { schema: { body: ChatBodySchema } }, async (request, reply) => {
    const body = request.body;
    refuseUnsupported(body);
    checkModel(body.model);
    let prompt: number[];
    try {
      prompt = template.renderPrompt({ messages: body.messages.map((m) => ({ role: m.role, content: messageText(m.content) })) });
    } catch (error) {
      throw new ApiError(400, `messages: ${(error as Error).message}`, 'messages');
    }
    checkPrompt(prompt, config, 'messages');
    const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? config.context - prompt.length;
    const key = seedKey(body.seed);
    // A chat goes on with one of its choices, in a request that sends the conversation again.
    const choices = Array.from({ length: body.n ?? 1 }, (_, index) => ({ index, prompt, rngKey: choiceKey(key, index), keepCache: true }));
    return respond(reply, chat, choices, requestSampling(body, maxTokens, template.stopTokens), {
      stream: body.stream === true,
      logprobs: body.logprobs === true,
      includeUsage: body.stream_options?.include_usage === true,
      promptTokens: prompt.length,
    });
  });

  app.post<{ Body: CompletionBody }>('/v1/completions', { schema: { body: CompletionBodySchema } }, async (request, reply) => {
    const body = request.body;
    refuseUnsupported(body);
    checkModel(body.model);
    const bos = tokenizer.special.bos;
    const prompts = completionPrompts(body, (text) => [...(bos !== null ? [bos] : []), ...tokenizer.encode(text)]);
    prompts.forEach((p, i) => checkPrompt(p, config, prompts.length > 1 ? `prompt[${i}]` : 'prompt'));
    const n = body.n ?? 1;
    const key = seedKey(body.seed);
    const choices = prompts.flatMap((prompt, p) => Array.from({ length: n }, (_, j) => ({ index: p * n + j, prompt, rngKey: choiceKey(key, p * n + j), keepCache: false })));
    return respond(reply, completion, choices, requestSampling(body, completionMaxTokens(body), [tokenizer.special.eos]), {
      stream: body.stream === true,
      logprobs: typeof body.logprobs === 'number',
      includeUsage: body.stream_options?.include_usage === true,
      promptTokens: prompts.reduce((n, p) => n + p.length, 0),
    });
  });

  return app;
}
