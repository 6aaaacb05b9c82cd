/**
 * Batched sampling with a KV cache and continuous batching: up to `batchSize` sequences decode
 * together, and a row that finishes is refilled from the queue at once. Each request samples from its
 * own PRNG stream keyed by (seed, request id), so an output never depends on which other requests
 * shared its batch or in which order the queue was served.
 *
 * The queue is either a fixed list (`sampleBatch`: a step's samples) or open (`serveBatch`: a server's
 * requests, each with its own sampling knobs, arriving and going away while the batch decodes).
 *
 * The loop runs wherever the decode graph runs: on the compute thread (generate.ts sends it there as
 * one job), so the cache and the logits never cross threads.
 */
import ort from 'onnxruntime-node';
import { headDim, type ModelConfig } from './config.ts';
import { greedyFetches } from './graphs.ts';
import { hashSeed, Rng } from './random.ts';
import { decodedKv, joinSpans, KvCache, type KvMemory, type KvSpan } from './kv-cache.ts';
import type { PrefixCache, PrefixMatch } from './prefix-cache.ts';
import type { Tokenizer } from './tokenizer.ts';
import { MASKED } from './transformer.ts';

export interface GenerationRequest {
  /** Names the request's random stream; must be unique within a call. */
  id: string;
  prompt: number[];
  /** The request's own knobs over the call's (a server's requests each bring theirs). */
  sampling?: Partial<RequestSampling>;
  /** The key of the request's random stream (`Rng.keyed`); by default `requestRngKey(seed, id)`. */
  rngKey?: number;
  /** Report every token as it is sampled (`TokenHook`), not only the finished request. */
  streamTokens?: boolean;
  /**
   * Keep the finished request's keys and values in the model's prefix cache (`DecodingModel.kept`): its
   * caller means to send the conversation again with this response in it (a later turn).
   */
  keepCache?: boolean;
  /**
   * The prefix-cache scope the request's prompt is matched in and kept in (`PrefixCache`); '' (the
   * default) is shared by every request that names none.
   */
  cacheScope?: string;
}

export interface SamplingOptions {
  /** 0 = greedy. */
  temperature: number;
  topP: number;
  /** 0 = no top-k cut. */
  topK: number;
  maxNewTokens: number;
  stopTokens: number[];
  stopStrings: string[];
  seed: number;
  batchSize: number;
}

/** The key of the random stream a request samples from by default: named by the call's seed and the request's id. */
export function requestRngKey(seed: number, id: string): number {
  return hashSeed(seed, 'generate', id);
}

/** The knobs one request may set for itself. */
export type RequestSampling = Pick<SamplingOptions, 'temperature' | 'topP' | 'topK' | 'maxNewTokens' | 'stopTokens' | 'stopStrings'>;

export const DEFAULT_SAMPLING: SamplingOptions = {
  temperature: 1,
  topP: 1,
  topK: 0,
  maxNewTokens: 64,
  stopTokens: [],
  stopStrings: [],
  seed: 0,
  batchSize: 32,
};

export interface Generation {
  id: string;
  /** Generated token ids, including a stop token if one ended the sequence. */
  tokens: number[];
  /** Decoded text, cut before the stop token or stop string. */
  text: string;
  /** Log-probability of each generated token under the model (untempered softmax). */
  logprobs: number[];
  finishReason: 'stop' | 'length' | 'context';
  /** Prompt tokens whose keys and values came from the prefix cache rather than a prefill. */
  cachedTokens: number;
}

/** Called as each request finishes (in finishing order); a hook that throws stops the sampling. */
export type ResultHook = (g: Generation, done: number, total: number) => void | Promise<void>;

/** A sampled token of a request that asked for them (`streamTokens`), as it is drawn. */
export type TokenHook = (id: string, token: number, logprob: number) => void;

/**
 * An open queue: requests arrive while the batch decodes, and a request whose caller went away is
 * dropped, freeing its row before the next step.
 */
export interface RequestQueue {
  /** Requests not yet admitted, oldest first; the loop takes them from the front. */
  readonly waiting: GenerationRequest[];
  /** Ids of requests to drop, admitted or not; the loop removes each id it acts on. */
  readonly dropped: Set<string>;
  /** Resolves once `waiting` or `dropped` has something (true), or when the queue is closed (false). */
  next(): Promise<boolean>;
}

export interface ServeHooks {
  onResult: (g: Generation) => void;
  onToken: TokenHook;
  /** A dropped request is gone: its row (or its place in the queue) is free. */
  onDropped: (id: string) => void;
}

/**
 * One run of the decode graph with the model's weights: the step's `tokens`, `positions`, `mask`,
 * `logit_rows`, `tempered_rows`, `inverse_temperature`, `greedy_rows` and `past_k.<l>` / `past_v.<l>` go in, `logits`,
 * `probs`, `tempered`, `greedy_token`, `greedy_logprob` and `k.<l>` / `v.<l>` come out — those named in
 * `fetches` when it is given.
 */
export type DecodeRun = (feeds: Record<string, ort.Tensor>, fetches?: readonly string[]) => Promise<Record<string, ort.Tensor>>;

export interface DecodingModel {
  config: ModelConfig;
  tokenizer: Tokenizer;
  decode: DecodeRun;
  /**
   * Sequences the decode session computed in earlier calls (every prefilled prompt, and the requests that
   * ask for it), which prompts extending them start from; none when absent.
   */
  kept?: PrefixCache;
  /** Where the KV caches' arrays come from and go back to between calls; fresh arrays when absent. */
  memory?: KvMemory;
}

interface Row {
  request: GenerationRequest;
  /** The call's knobs with the request's own over them. */
  o: RequestSampling;
  rng: Rng;
  /** Tokens in this row's cache. */
  length: number;
  /** The next token to feed (sampled, not yet in the cache). */
  next: number;
  tokens: number[];
  logprobs: number[];
  /** Prompt tokens that came from the prefix cache. */
  cached: number;
}

/**
 * A prefilled prompt: its keys and values (the part that came from the prefix cache, then a row of the
 * prefill's outputs) and the logits (and their softmax) after its last token — views, copied only into
 * the slots of the requests that start from it.
 */
interface Prefix {
  length: number;
  spans: KvSpan[];
  /** Positions that came from the prefix cache. */
  cached: number;
  logits: Float32Array;
  probs: Float32Array;
  /** The softmax at the temperature the prompt's requests sample at, when a draw walks it (`walksTempered`). */
  tempered: Float32Array | null;
}

/** Tempered weights of the sorted head of the row being sampled (top-k / top-p), reused between draws. */
let weights = new Float64Array(0);
/** The logits being sampled in descending order (top-k / top-p), and the radix sort's scratch. */
let descending = new Float32Array(0);
let keys = new Uint32Array(0);
let scratch = new Uint32Array(0);
const RADIX = 11;
const BUCKETS = 1 << RADIX;
const counts = new Uint32Array(3 * BUCKETS);

/**
 * `logits` in descending order, as `Float32Array.prototype.sort` then `reverse` order them (+0 before
 * -0), but in linear time: an LSD radix sort over keys that order like the floats. With a 49k
 * vocabulary the native sort was most of a top-p draw.
 */
function sortDescending(logits: Float32Array): Float32Array {
  const n = logits.length;
  if (descending.length < n) {
    descending = new Float32Array(n);
    keys = new Uint32Array(n);
    scratch = new Uint32Array(n);
  }
  const bits = new Uint32Array(logits.buffer, logits.byteOffset, n);
  // Descending keys: a negative float's bits grow as it falls; a positive's (sign bit clear) fall as it grows.
  counts.fill(0);
  for (let i = 0; i < n; i++) {
    const b = bits[i];
    const k = (b & 0x80000000 ? b : b ^ 0x7fffffff) >>> 0;
    keys[i] = k;
    counts[k & (BUCKETS - 1)]++;
    counts[BUCKETS + ((k >>> RADIX) & (BUCKETS - 1))]++;
    counts[2 * BUCKETS + (k >>> (2 * RADIX))]++;
  }
  let from = keys;
  let to = scratch;
  for (let pass = 0; pass < 3; pass++) {
    const base = pass * BUCKETS;
    const shift = pass * RADIX;
    let at = 0;
    for (let d = 0; d < BUCKETS; d++) {
      const c = counts[base + d];
      counts[base + d] = at;
      at += c;
    }
    for (let i = 0; i < n; i++) {
      const k = from[i];
      to[counts[base + ((k >>> shift) & (BUCKETS - 1))]++] = k;
    }
    [from, to] = [to, from];
  }
  const sorted = new Uint32Array(descending.buffer, 0, n);
  for (let i = 0; i < n; i++) {
    const k = from[i];
    sorted[i] = k & 0x80000000 ? k : k ^ 0x7fffffff;
  }
  return descending.subarray(0, n);
}

type DrawKnobs = Pick<SamplingOptions, 'temperature' | 'topK' | 'topP'>;

/**
 * Whether a draw under these knobs walks the softmax at a temperature other than 1 (the decode graph's
 * `tempered` output): a plain draw, neither greedy nor at temperature 1 (whose softmax is `probs`). Top-k
 * and top-p weigh the sorted head of the distribution themselves.
 */
export function walksTempered(o: DrawKnobs): boolean {
  return o.temperature !== 0 && o.temperature !== 1 && o.topK <= 0 && o.topP >= 1;
}

/**
 * Samples one token from a row of logits and their softmax (`probs`, as the decode graph gives it), and,
 * for a draw that walks it (`walksTempered`), the softmax at the draw's temperature (`tempered`); returns
 * the token with its log-probability under the raw model.
 */
export function sampleToken(logits: Float32Array, probs: Float32Array, tempered: Float32Array | null, o: DrawKnobs, rng: Rng): { token: number; logprob: number } {
  const n = logits.length;
  const T = o.temperature;
  if (T === 0) {
    let argmax = 0;
    for (let i = 1; i < n; i++) if (logits[i] > logits[argmax]) argmax = i;
    return { token: argmax, logprob: logProbability(logits, probs, argmax) };
  }
  if (o.topK <= 0 && o.topP >= 1) {
    // Plain sampling needs no sorted order: one pass for the total, one for the draw, over the softmax at
    // the draw's temperature — computed in the graph, where JavaScript took one exponential per token.
    const weighed = T === 1 ? probs : tempered;
    if (weighed === null) throw new Error(`sampleToken: a plain draw at temperature ${T} needs the softmax at that temperature`);
    let total = 0;
    for (let i = 0; i < n; i++) total += weighed[i];
    let u = rng.uniform() * total;
    // What rounding leaves over goes to the last token with any weight.
    let choice = -1;
    for (let i = 0; i < n; i++) {
      if (weighed[i] === 0) continue;
      choice = i;
      u -= weighed[i];
      if (u < 0) break;
    }
    if (choice < 0) throw new Error('sampleToken: no token has any weight (NaN logits?)');
    return { token: choice, logprob: logProbability(logits, probs, choice) };
  }

  // The distribution in descending order, as values. Equal logits give equal weights, so their order does
  // not change a sum.
  const sorted = sortDescending(logits);
  const maxLogit = sorted[0];
  const limit = o.topK > 0 ? Math.min(o.topK, n) : n;
  if (weights.length < limit) weights = new Float64Array(limit);
  let total = 0;
  for (let i = 0; i < limit; i++) total += weights[i] = Math.exp((sorted[i] - maxLogit) / T);
  // Nucleus: the smallest prefix of the sorted distribution whose mass reaches topP.
  let kept = limit;
  let keptMass = total;
  if (o.topP < 1) {
    let mass = 0;
    let sum = 0;
    for (let i = 0; i < limit; i++) {
      mass += weights[i] / total;
      sum += weights[i];
      if (mass >= o.topP) {
        kept = i + 1;
        keptMass = sum;
        break;
      }
    }
  }
  let u = rng.uniform() * keptMass;
  let rank = kept - 1;
  for (let i = 0; i < kept; i++) {
    u -= weights[i];
    if (u < 0) {
      rank = i;
      break;
    }
  }
  const choice = tokenAtRank(logits, sorted, rank);
  return { token: choice, logprob: logProbability(logits, probs, choice) };
}

/** The smallest normal float32: a probability below it has lost digits to the format. */
const MIN_NORMAL = 2 ** -126;

/**
 * log p(token) under the raw model: the log of its softmax entry, which float32 holds to a relative 6e-8
 * (so the log to 6e-8). A probability too small for that — a token no draw at a sane temperature picks —
 * gets the exact log-sum-exp over the row in float64 instead.
 */
function logProbability(logits: Float32Array, probs: Float32Array, token: number): number {
  if (probs[token] >= MIN_NORMAL) return Math.log(probs[token]);
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let z = 0;
  for (let i = 0; i < logits.length; i++) z += Math.exp(logits[i] - max);
  return logits[token] - max - Math.log(z);
}

/**
 * The token at `rank` of the logits in descending order, ties broken by the lower token id: among the
 * logits equal to the value at that rank, the one as many places along as the rank is past the value's
 * first rank.
 */
function tokenAtRank(logits: Float32Array, sorted: Float32Array, rank: number): number {
  const value = sorted[rank];
  let first = rank;
  while (first > 0 && sorted[first - 1] === value) first--;
  let skip = rank - first;
  for (let i = 0; i < logits.length; i++) if (logits[i] === value && skip-- === 0) return i;
  throw new Error(`sampleToken: no logit equals the sorted value ${value} (NaN logits?)`);
}

/** Where each logit row's softmax at its draw's temperature is in the graph's `tempered` output, or -1 for a row that needs none. */
function temperedIndex(draws: readonly DrawKnobs[]): Int32Array {
  let t = 0;
  return Int32Array.from(draws, (d) => (walksTempered(d) ? t++ : -1));
}

/** A prompt waiting for its prefill, with the longest prefix the prefix cache holds for it. */
interface Unseen {
  request: GenerationRequest;
  match: PrefixMatch | null;
}

/** Rejects a call whose requests cannot be sampled, naming the request. */
export function checkRequests(requests: readonly GenerationRequest[], context: number): void {
  const ids = new Set<string>();
  for (const r of requests) {
    if (ids.has(r.id)) throw new Error(`generate: duplicate request id "${r.id}"`);
    ids.add(r.id);
    if (r.prompt.length === 0) throw new Error(`generate: request "${r.id}" has an empty prompt`);
    if (r.prompt.length >= context) {
      throw new Error(`generate: request "${r.id}" prompt has ${r.prompt.length} tokens; the model context is ${context}`);
    }
  }
}

/**
 * Padded tokens per prefill run. A prefill returns logits only at each prompt's last token, but its
 * activations and attention scores still grow with the padded tokens (the scores as rows × length²), so
 * admitting a full batch of long prompts at once would be one very large run. Rows are independent, so the
 * grouping changes no result.
 */
const PREFILL_TOKENS = 4096;

/** Samples a response to every request (checked by `checkRequests`); the results are in request order. */
export async function sampleBatch(model: DecodingModel, requests: GenerationRequest[], o: SamplingOptions, onResult?: ResultHook): Promise<Generation[]> {
  const results = new Map<string, Generation>();
  const queue: RequestQueue = { waiting: requests.slice(), dropped: new Set(), next: async () => false };
  await decodeQueue(model, queue, Math.min(o.batchSize, requests.length), o, {
    async onResult(g) {
      results.set(g.id, g);
      await onResult?.(g, results.size, requests.length);
    },
  });
  return requests.map((r) => results.get(r.id)!);
}

/**
 * Serves an open queue until it closes: every request is sampled with its own knobs (over `o`) and
 * reported as it finishes, its tokens as they are drawn when it asks for them; dropped requests free
 * their rows. Requests must be checked (`checkRequests`) before they are queued.
 */
export function serveBatch(model: DecodingModel, queue: RequestQueue, o: SamplingOptions, hooks: ServeHooks): Promise<void> {
  return decodeQueue(model, queue, o.batchSize, o, hooks);
}

async function decodeQueue(
  model: DecodingModel,
  queue: RequestQueue,
  batchSize: number,
  o: SamplingOptions,
  hooks: { onResult: (g: Generation) => void | Promise<void>; onToken?: TokenHook; onDropped?: (id: string) => void },
): Promise<void> {
  const { config, tokenizer, decode, kept } = model;
  const memory = model.memory ?? null;
  /** A request's knobs: the call's, with the request's own over them. */
  const knobs = (r: GenerationRequest): RequestSampling => ({ ...o, ...r.sampling });
  const kvHeads = config.kvHeads;
  const hd = headDim(config);
  const C = config.context;
  const V = config.vocabSize;
  const capacity = Math.max(1, batchSize);
  /** What a step whose rows all decode greedily fetches. */
  const greedyOutputs = greedyFetches(config);
  const newCache = () => new KvCache(config.layers, capacity, kvHeads, hd, C, memory);
  let cache = newCache();
  const initialLength = cache.capacity;

  const { waiting } = queue;
  const rows: Row[] = [];
  /** A cached step's logit rows: all of them, 0..n-1. */
  const everyRow = BigInt64Array.from({ length: capacity }, (_, i) => BigInt(i));

  const finish = async (row: Row, reason: Generation['finishReason'], text: string) => {
    const { prompt } = row.request;
    // The last sampled token was never fed, so the row's cache ends before it.
    if (row.request.keepCache && kept) {
      // The slot is written again by the next row: the prefix cache keeps a copy.
      const own = joinSpans([cache.span(rows.indexOf(row), row.length)], kvHeads, hd);
      kept.keep(row.request.cacheScope ?? '', [...prompt, ...row.tokens.slice(0, row.length - prompt.length)], [{ kv: own, row: 0, stride: row.length, count: row.length }]);
    }
    await hooks.onResult({ id: row.request.id, tokens: row.tokens, text, logprobs: row.logprobs, finishReason: reason, cachedTokens: row.cached });
  };

  /** Accepts a sampled token for a row; returns true if the row is finished. */
  const accept = async (row: Row, token: number, logprob: number): Promise<boolean> => {
    row.tokens.push(token);
    row.logprobs.push(logprob);
    if (row.request.streamTokens) hooks.onToken?.(row.request.id, token, logprob);
    const ro = row.o;
    if (ro.stopTokens.includes(token)) {
      await finish(row, 'stop', tokenizer.decode(row.tokens.slice(0, -1)));
      return true;
    }
    // Decoding the text every step is only needed to look for stop strings.
    const text = ro.stopStrings.length > 0 ? tokenizer.decode(row.tokens) : null;
    const hit = text === null ? -1 : firstStop(text, ro.stopStrings);
    if (hit >= 0) {
      await finish(row, 'stop', text!.slice(0, hit));
      return true;
    }
    if (row.tokens.length >= ro.maxNewTokens) {
      await finish(row, 'length', text ?? tokenizer.decode(row.tokens));
      return true;
    }
    if (row.length + 1 > C) {
      await finish(row, 'context', text ?? tokenizer.decode(row.tokens));
      return true;
    }
    row.next = token;
    return false;
  };

  /**
   * `logitRows`: the tokens (flat over n·s) whose logits the step returns, one row of `logits` each; `past`:
   * the keys and values the tokens attend to before their own (none for a plain prefill); `draws`: the
   * knobs of the draw from each of the first logit rows, so the rows drawn at another temperature than 1
   * get their tempered softmax (at `temperedIndex`); `greedyRows`: the logit rows whose greedy draw the graph
   * makes (`greedy_token`), none unless every row of the step decodes greedily.
   */
  const feedsFor = (tokens: BigInt64Array, positions: BigInt64Array, mask: Float32Array, logitRows: BigInt64Array, n: number, s: number, past: KvCache | null, draws: readonly DrawKnobs[], greedyRows: BigInt64Array | null = null) => {
    const tempered = draws.flatMap((d, i) => (walksTempered(d) ? [i] : []));
    const feeds: Record<string, ort.Tensor> = {
      tokens: new ort.Tensor('int64', tokens, [n, s]),
      positions: new ort.Tensor('int64', positions, [n, s]),
      mask: new ort.Tensor('float32', mask, [n, 1, s, (past?.capacity ?? 0) + s]),
      logit_rows: new ort.Tensor('int64', logitRows, [logitRows.length]),
      tempered_rows: new ort.Tensor('int64', BigInt64Array.from(tempered, BigInt), [tempered.length]),
      inverse_temperature: new ort.Tensor('float32', Float32Array.from(tempered, (i) => 1 / draws[i].temperature), [tempered.length]),
      greedy_rows: greedyRows === null ? new ort.Tensor('int64', new BigInt64Array(0), [0]) : new ort.Tensor('int64', greedyRows, [greedyRows.length]),
    };
    if (past !== null) return { ...feeds, ...past.feeds(n) };
    for (let l = 0; l < config.layers; l++) {
      feeds[`past_k.${l}`] = new ort.Tensor('float32', new Float32Array(0), [n, kvHeads, 0, hd]);
      feeds[`past_v.${l}`] = new ort.Tensor('float32', new Float32Array(0), [n, kvHeads, 0, hd]);
    }
    return feeds;
  };

  /** Frees a slot by moving the last active row into it, so active rows stay packed at the front. */
  const release = (slot: number) => {
    const last = rows.length - 1;
    if (slot !== last) {
      cache.move(last, slot);
      rows[slot] = rows[last];
    }
    rows.pop();
  };

  /** Frees the rows and queue places of dropped requests. */
  const drop = () => {
    if (queue.dropped.size === 0) return;
    for (let i = rows.length - 1; i >= 0; i--) {
      const id = rows[i].request.id;
      if (queue.dropped.delete(id)) {
        release(i);
        hooks.onDropped?.(id);
      }
    }
    for (let i = waiting.length - 1; i >= 0; i--) {
      const id = waiting[i].id;
      if (queue.dropped.delete(id)) {
        uncount(waiting[i]);
        waiting.splice(i, 1);
        hooks.onDropped?.(id);
      }
    }
    // Ids of requests that had finished before their drop arrived: nothing is left to free.
    queue.dropped.clear();
  };

  /**
   * Prompts prefilled once for every request that asks for them (best-of-N draws N continuations of one
   * prompt): their keys and values and their last logits, kept while a waiting request has the same prompt
   * (at most `capacity` of them).
   * Rows are independent, so a prompt prefilled beside others gets the cache it gets alone (up to rounding
   * that depends on the run's shape, as with any batching): a request samples the same tokens whether its
   * prompt was prefilled for it or for another.
   */
  const prefixes = new Map<string, Prefix>();
  /** Waiting requests per prompt, counted as they join the queue (at its back) and uncounted as they leave it. */
  const pending = new Map<string, number>();
  const counted = new WeakSet<GenerationRequest>();
  const promptKeys = new WeakMap<GenerationRequest, string>();
  /**
   * The prompt, its cache scope (whose kept sequences its prefill starts from), and the temperature its
   * first token is drawn at where the draw walks the tempered softmax.
   */
  const promptKey = (r: GenerationRequest) => {
    let key = promptKeys.get(r);
    if (key === undefined) {
      const k = knobs(r);
      promptKeys.set(r, (key = JSON.stringify([r.cacheScope ?? '', walksTempered(k) ? k.temperature : null, r.prompt])));
    }
    return key;
  };
  const uncount = (r: GenerationRequest) => {
    if (!counted.has(r)) return;
    const key = promptKey(r);
    const left = pending.get(key)! - 1;
    if (left > 0) pending.set(key, left);
    else pending.delete(key);
  };
  const countArrivals = () => {
    for (let i = waiting.length - 1; i >= 0 && !counted.has(waiting[i]); i--) {
      counted.add(waiting[i]);
      const key = promptKey(waiting[i]);
      pending.set(key, (pending.get(key) ?? 0) + 1);
    }
  };

  /**
   * Admits queued requests into free slots. Prompts not yet prefilled are prefilled in groups of at most
   * PREFILL_TOKENS padded positions (the cached part included), each distinct prompt once, from the
   * longest prefix the prefix cache holds.
   */
  const admit = async () => {
    countArrivals();
    while (rows.length < capacity && waiting.length > 0) {
      const fresh: GenerationRequest[] = [];
      const unseen = new Map<string, Unseen>();
      let longestPast = 0;
      let longestNew = 0;
      while (rows.length + fresh.length < capacity && waiting.length > 0) {
        const r = waiting[0];
        const key = promptKey(r);
        if (!prefixes.has(key) && !unseen.has(key)) {
          const match = kept?.match(r.cacheScope ?? '', r.prompt) ?? null;
          const past = Math.max(longestPast, match?.length ?? 0);
          const fed = Math.max(longestNew, r.prompt.length - (match?.length ?? 0));
          if (unseen.size > 0 && (past + fed) * (unseen.size + 1) > PREFILL_TOKENS) break;
          longestPast = past;
          longestNew = fed;
          unseen.set(key, { request: r, match });
        }
        uncount(r);
        fresh.push(waiting.shift()!);
      }
      if (unseen.size > 0) await prefill([...unseen.entries()]);
      for (const r of fresh) await start(r, prefixes.get(promptKey(r))!);
      for (const key of prefixes.keys()) if (!pending.has(key)) prefixes.delete(key);
      // Copies far apart in the queue would keep every prompt's cache alive: hold at most a batch's worth,
      // the oldest going first (a prompt evicted is prefilled again when its turn comes, to the same result).
      for (const key of prefixes.keys()) if (prefixes.size > capacity) prefixes.delete(key);
    }
  };

  /**
   * Prefills distinct prompts together (right-padded; causality hides the padding), each after the part
   * the prefix cache gave it (the cached parts left-aligned in one past, padded with masked positions),
   * and keeps each as a prefix, and in the prefix cache.
   */
  const prefill = async (prompts: [string, Unseen][]) => {
    const n = prompts.length;
    const cachedOf = prompts.map(([, u]) => u.match?.length ?? 0);
    const fed = prompts.map(([, u], i) => u.request.prompt.length - cachedOf[i]);
    const s = Math.max(...fed);
    const tokens = new BigInt64Array(n * s);
    const positions = new BigInt64Array(n * s);
    prompts.forEach(([, u], i) => {
      for (let j = 0; j < fed[i]; j++) tokens[i * s + j] = BigInt(u.request.prompt[cachedOf[i] + j]);
      // Padding repeats the last position: past it a row with a long cached part would run off the model's
      // positions (its padding's outputs are never read, and causality hides it from the real tokens).
      for (let j = 0; j < s; j++) positions[i * s + j] = BigInt(cachedOf[i] + Math.min(j, fed[i] - 1));
    });
    let past: KvCache | null = null;
    if (cachedOf.some((c) => c > 0)) {
      past = new KvCache(config.layers, n, kvHeads, hd, C, memory);
      past.ensure(Math.max(...cachedOf));
      prompts.forEach(([, u], i) => u.match && past!.fill(i, u.match.spans));
    }
    const P = past?.capacity ?? 0;
    const mask = new Float32Array(n * s * (P + s));
    for (let i = 0; i < n; i++) {
      for (let q = 0; q < s; q++) {
        const at = (i * s + q) * (P + s);
        mask.fill(MASKED, at + cachedOf[i], at + P);
        mask.fill(MASKED, at + P + q + 1, at + P + s);
      }
    }
    // Only each prompt's last token needs its logits: the first token is sampled from them. One row alone
    // would go through ONNX Runtime's matrix-vector kernel, which rounds unlike the matrix kernel that
    // computed every token's logits (as this graph did before): the row twice keeps that rounding.
    const rows = prompts.map((_, i) => i * s + fed[i] - 1);
    if (rows.length === 1 && s > 1) rows.push(rows[0]);
    const last = BigInt64Array.from(rows, BigInt);
    const draws = prompts.map(([, u]) => knobs(u.request));
    let out: Record<string, ort.Tensor>;
    try {
      out = await decode(feedsFor(tokens, positions, mask, last, n, s, past, draws));
    } finally {
      past?.release();
    }
    const logits = out.logits.data as Float32Array;
    const probs = out.probs.data as Float32Array;
    const tempered = out.tempered.data as Float32Array;
    const kv = decodedKv(out, config.layers);
    const temperedAt = temperedIndex(draws);
    prompts.forEach(([key, u], i) => {
      const row = (x: Float32Array, at: number) => x.subarray(at * V, (at + 1) * V);
      const spans = [...(u.match?.spans ?? []), { kv, row: i, stride: s, count: fed[i] }];
      const temperedRow = temperedAt[i] < 0 ? null : row(tempered, temperedAt[i]);
      prefixes.set(key, { length: u.request.prompt.length, spans, cached: cachedOf[i], logits: row(logits, i), probs: row(probs, i), tempered: temperedRow });
      kept?.keep(u.request.cacheScope ?? '', u.request.prompt, spans);
    });
  };

  /** Starts a request in the next free slot from its prompt's prefix, sampling its first token. */
  const start = async (r: GenerationRequest, prefix: Prefix) => {
    const rng = Rng.keyed(r.rngKey ?? requestRngKey(o.seed, r.id));
    const row: Row = { request: r, o: knobs(r), rng, length: prefix.length, next: 0, tokens: [], logprobs: [], cached: prefix.cached };
    const slot = rows.length;
    // Room for the position the row's next step writes too: a prompt ending on a chunk's edge would otherwise
    // grow the cache (moving every slot) at the first step.
    cache.ensure(prefix.length + 1);
    cache.fill(slot, prefix.spans);
    const { token, logprob } = sampleToken(prefix.logits, prefix.probs, prefix.tempered, row.o, row.rng);
    rows.push(row);
    if (await accept(row, token, logprob)) release(slot);
  };

  try {
    for (;;) {
      drop();
      await admit();
      if (rows.length === 0) {
        if (waiting.length > 0) continue;
        // Idle: a long request made the cache's time axis long, and every later step would scan it.
        if (cache.capacity > initialLength) {
          cache.release();
          cache = newCache();
        }
        if (!(await queue.next())) return;
        continue;
      }
      const n = rows.length;
      const tokens = BigInt64Array.from(rows.map((r) => BigInt(r.next)));
      const positions = BigInt64Array.from(rows.map((r) => BigInt(r.length)));
      // This step writes position `length` of each row: the cache must hold it.
      cache.ensure(Math.max(...rows.map((r) => r.length)) + 1);
      const P = cache.capacity;
      const mask = new Float32Array(n * (P + 1));
      rows.forEach((r, i) => mask.fill(MASKED, i * (P + 1) + r.length, i * (P + 1) + P));
      const draws = rows.map((r) => r.o);
      // Rows that all decode greedily take their tokens from the graph, and their logit rows stay there.
      const greedy = draws.every((d) => d.temperature === 0);
      const logitRows = everyRow.subarray(0, n);
      const out = await decode(feedsFor(tokens, positions, mask, logitRows, n, 1, cache, draws, greedy ? logitRows : null), greedy ? greedyOutputs : undefined);
      cache.append(decodedKv(out, config.layers), rows.map((r) => r.length));
      const draw = greedy ? greedyDraws(out) : hostDraws(out, draws, V);
      // Walk backwards so releasing a slot (which moves the last row into it) never skips a row.
      for (let i = n - 1; i >= 0; i--) {
        const row = rows[i];
        row.length++;
        const { token, logprob } = draw(i, row);
        if (await accept(row, token, logprob)) release(i);
      }
    }
  } finally {
    cache.release();
  }
}

type Draw = (i: number, row: Row) => { token: number; logprob: number };

/** Each row's token and log-probability as the graph drew them (`greedy_token`, `greedy_logprob`). */
function greedyDraws(out: Record<string, ort.Tensor>): Draw {
  const tokens = out.greedy_token.data as BigInt64Array;
  const logprobs = out.greedy_logprob.data as Float64Array;
  return (i) => ({ token: Number(tokens[i]), logprob: logprobs[i] });
}

/** Each row drawn here from its logit row (`sampleToken`), under its own knobs and random stream. */
function hostDraws(out: Record<string, ort.Tensor>, draws: readonly DrawKnobs[], V: number): Draw {
  const logits = out.logits.data as Float32Array;
  const probs = out.probs.data as Float32Array;
  const tempered = out.tempered.data as Float32Array;
  const temperedAt = temperedIndex(draws);
  const row = (x: Float32Array, at: number) => x.subarray(at * V, (at + 1) * V);
  return (i, r) => sampleToken(row(logits, i), row(probs, i), temperedAt[i] < 0 ? null : row(tempered, temperedAt[i]), r.o, r.rng);
}

function firstStop(text: string, stops: string[]): number {
  let best = -1;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (best < 0 || i < best)) best = i;
  }
  return best;
}
