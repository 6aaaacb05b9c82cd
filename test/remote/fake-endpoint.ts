/**
 * A stand-in for an OpenAI-compatible endpoint, on 127.0.0.1, for the tests of how a remote policy handles
 * what endpoints do: answer, refuse, rate-limit, fail, hang. It records every call it receives. (The
 * real server, `rise serve`, is what the tests of results use.)
 */

import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedCall {
  body: { model: string; messages: { role: string; content: string }[]; n?: number; seed?: number; temperature?: number; max_tokens?: number; [k: string]: unknown };
  headers: IncomingHttpHeaders;
  /** When the call arrived, and when it was answered (ms since the epoch). */
  at: number;
  answeredAt?: number;
}

export interface FakeAnswer {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** Wait this long before answering. */
  delayMs?: number;
}

export interface FakeEndpoint {
  /** e.g. http://127.0.0.1:40123/v1 */
  baseUrl: string;
  calls: ReceivedCall[];
  /** Most calls in flight at once so far. */
  maxInFlight: number;
  close(): Promise<void>;
}

/** A completion whose choice i says `text(i)`, each character one token with log-probability -0.25. */
export function completion(call: ReceivedCall, text: (choice: number) => string): FakeAnswer {
  const n = call.body.n ?? 1;
  const choices = Array.from({ length: n }, (_, index) => {
    const content = text(index);
    return {
      index,
      message: { role: 'assistant', content },
      logprobs: { content: [...content].map((c) => ({ token: c, logprob: -0.25, bytes: null, top_logprobs: [] })) },
      finish_reason: 'stop',
    };
  });
  const completionTokens = choices.reduce((s, c) => s + c.message.content.length, 0);
  return { status: 200, body: { id: 'fake', object: 'chat.completion', created: 0, model: call.body.model, choices, usage: { prompt_tokens: 10, completion_tokens: completionTokens, total_tokens: 10 + completionTokens } } };
}

/** An OpenAI-style error answer. */
export function failure(status: number, message: string, headers: Record<string, string> = {}): FakeAnswer {
  return { status, headers, body: { error: { message, type: status === 429 ? 'rate_limit_error' : 'invalid_request_error', param: null, code: null } } };
}

export async function fakeEndpoint(answer: (call: ReceivedCall, index: number) => FakeAnswer): Promise<FakeEndpoint> {
  const calls: ReceivedCall[] = [];
  let inFlight = 0;
  const endpoint: FakeEndpoint = { baseUrl: '', calls, maxInFlight: 0, close: async () => undefined };
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', async () => {
      const call: ReceivedCall = { body: JSON.parse(raw || '{}'), headers: req.headers, at: Date.now() };
      const index = calls.push(call) - 1;
      endpoint.maxInFlight = Math.max(endpoint.maxInFlight, ++inFlight);
      const a = answer(call, index);
      if (a.delayMs) await new Promise((r) => setTimeout(r, a.delayMs));
      inFlight--;
      call.answeredAt = Date.now();
      if (res.destroyed) return;
      res.writeHead(a.status, { 'content-type': 'application/json', ...a.headers });
      res.end(JSON.stringify(a.body ?? {}));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  endpoint.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  endpoint.close = async () => {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  };
  return endpoint;
}
