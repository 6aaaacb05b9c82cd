/**
 * Pacing calls to one endpoint from one process: at most `concurrency` in flight, starts at least
 * 60 / requestsPerMinute seconds apart, and none while a rate-limit answer's Retry-After lasts. One
 * limiter per endpoint per process (`endpointLimiter`), so the steps a worker runs at once share the
 * endpoint's limits instead of each spending them in full.
 */

import { setTimeout as sleep } from 'node:timers/promises';

export interface EndpointLimits {
  concurrency: number;
  /** null = no limit. */
  requestsPerMinute: number | null;
}

export class EndpointLimiter {
  private active = 0;
  private readonly queue: (() => void)[] = [];
  /** When the next call may start, by the rate. */
  private nextStart = 0;
  /** No call starts before this (a 429's Retry-After). */
  private heldUntil = 0;

  constructor(private limits: EndpointLimits) {}

  /** Steps that name the same endpoint with other limits: each limit becomes the stricter of the two. */
  adopt(limits: EndpointLimits): void {
    const rate = [this.limits.requestsPerMinute, limits.requestsPerMinute].filter((r): r is number => r !== null);
    this.limits = { concurrency: Math.min(this.limits.concurrency, limits.concurrency), requestsPerMinute: rate.length > 0 ? Math.min(...rate) : null };
    this.wake();
  }

  /** Starts no call before `at` (ms since the epoch). */
  holdUntil(at: number): void {
    this.heldUntil = Math.max(this.heldUntil, at);
  }

  /** Runs `call` once a slot is free and its start is due. */
  async run<T>(call: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.acquire(signal);
    try {
      const spacing = this.limits.requestsPerMinute === null ? 0 : 60_000 / this.limits.requestsPerMinute;
      const now = Date.now();
      const start = Math.max(now, this.nextStart, this.heldUntil);
      this.nextStart = start + spacing;
      if (start > now) await sleep(start - now, undefined, { signal });
      return await call();
    } finally {
      this.active--;
      this.wake();
    }
  }

  private acquire(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (this.active < this.limits.concurrency) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const admit = () => {
        signal?.removeEventListener('abort', abort);
        this.active++;
        resolve();
      };
      const abort = () => {
        const at = this.queue.indexOf(admit);
        if (at >= 0) this.queue.splice(at, 1);
        reject(signal!.reason);
      };
      this.queue.push(admit);
      signal?.addEventListener('abort', abort, { once: true });
    });
  }

  private wake(): void {
    while (this.active < this.limits.concurrency && this.queue.length > 0) this.queue.shift()!();
  }
}

const limiters = new Map<string, EndpointLimiter>();

/** The process's limiter for `endpoint`, made stricter by `limits` if they are. */
export function endpointLimiter(endpoint: string, limits: EndpointLimits): EndpointLimiter {
  let limiter = limiters.get(endpoint);
  if (limiter === undefined) limiters.set(endpoint, (limiter = new EndpointLimiter(limits)));
  else limiter.adopt(limits);
  return limiter;
}
