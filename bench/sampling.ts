/**
 * RISE's sampling workload, side by side in one run: rise's engine, PyTorch + transformers, and llama.cpp
 * (llama-cpp-python, built for this CPU), the same prompts, the same thread count, float32 everywhere.
 *
 * (1) Best-of-N, as relabeling and mk@t1 evaluation ask for it: N samples of each of P prompts, temperature 1,
 *     top-p 1, every row running its full T new tokens (no stop), R rows decoding at a time; tokens/s = P·N·T /
 *     wall. For the quickstart's model (its spec's config, random weights: speed does not depend on them;
 *     engine and PyTorch — llama.cpp cannot load rise's own model) and for SmolLM2-135M-Instruct (all three).
 *     The engine prefills each prompt once and copies its cache into the N rows; transformers' generate
 *     expands each prompt N times before its prefill; llama.cpp decodes each prompt once for its N sequences
 *     in a unified KV cache (its `batched` example's way). On SmolLM2 also at temperature 0.7 (the GSM8K
 *     spec's), over a quarter of the prompts: a draw at a temperature other than 1 walks a softmax the
 *     graph computes at that temperature.
 * (2) Decode tokens/s on SmolLM2 at batch 1, 32 and 128: distinct 64-token prompts, greedy, D new tokens,
 *     prefill included (bench:models' convention).
 * (3) Multi-turn, as rollout and evaluation run it on SmolLM2: P conversations for K turns, every turn's prompt
 *     the last turn's prompt, its response and a feedback message, greedy, all P rows at once. rise continues
 *     each conversation from the last turn's cache (its prefix cache); `rise_uncached` runs prompts of the
 *     same lengths that share nothing with what it computed, so every turn prefills its whole prompt, as
 *     PyTorch and llama.cpp do here (their `decode` part, turn by turn).
 * The sides run one after the other within each part (engine, PyTorch, llama.cpp), never at once; the load
 * average goes with every figure, since the machine's other work makes a figure say little.
 *
 *   npm run bench:sampling [-- --threads 2] [--prompts 64] [--decode-tokens 32] [--out bench/results/sampling.json]
 *
 * --prompts sets P for both workloads and --decode-tokens sets D: the defaults take about 8 minutes on an
 * idle 2-core machine; a loaded one needs smaller figures (the JSON records the ones used).
 *
 * Needs `rise model pull smollm2-135m-instruct`, bench/.venv (`bash bench/torch/setup.sh`) and, for the
 * llama.cpp side, `bash bench/llama/setup.sh` (without it that side is left out and the JSON says why).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { resolveModelConfig, type ModelConfig } from '../src/engine/config.ts';
import { Generator, type GenerationRequest } from '../src/engine/generate.ts';
import { initParameters } from '../src/engine/parameters.ts';
import { Rng } from '../src/engine/random.ts';
import { knownModel, sourcePath } from '../src/models/pull.ts';
import { loadPretrained } from '../src/models/load.ts';
import { findModel, modelsHome } from '../src/models/store.ts';
import { builtinTokenizer } from '../src/steps/models.ts';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : process.argv[i + 1];
}
const root = fileURLToPath(new URL('..', import.meta.url));
const threads = Number(flag('threads', '2'));
const out = flag('out', join(root, 'bench/results/sampling.json'));
const python = join(root, 'bench/.venv/bin/python');
const MODEL = 'smollm2-135m-instruct';
const F32_GGUF = join(root, 'bench/.venv/models/SmolLM2-135M-Instruct.F32.gguf');
const ROWS = 128;
const PROMPTS = Number(flag('prompts', '64'));
const WORKLOADS = {
  quickstart: { prompts: PROMPTS, samples: 16, promptTokens: 96, newTokens: 48 },
  smollm2: { prompts: PROMPTS, samples: 16, promptTokens: 128, newTokens: 16 },
};
const DECODE = { batches: [1, 32, 128], promptTokens: 64, newTokens: Number(flag('decode-tokens', '32')) };
const MULTI_TURN = { conversations: PROMPTS, turns: 4, promptTokens: 128, newTokens: 32, feedbackTokens: 24 };
/** Prompt lengths of turn t (from 1): each turn adds its response and the feedback. */
const turnLength = (t: number) => MULTI_TURN.promptTokens + (t - 1) * (MULTI_TURN.newTokens + MULTI_TURN.feedbackTokens);

/** Distinct prompts of random tokens (ids 3.. to stay clear of the special ones). */
function promptRows(vocab: number, rows: number, length: number, seed: number): number[][] {
  const rng = new Rng(seed, 'bench-sampling');
  return Array.from({ length: rows }, () => Array.from({ length }, () => 3 + Math.floor(rng.uniform() * (vocab - 3))));
}

interface Figure {
  wall_s: number;
  tokens: number;
  tokens_per_s: number;
  load: number[];
  [more: string]: unknown;
}

/** A Python side (bench/torch or bench/llama sampling_bench.py): one JSON command per line, one answer each. */
class Worker {
  private readonly lines: AsyncIterator<string>;
  private readonly child;
  constructor(script: string) {
    this.child = spawn(python, [script, '--threads', String(threads)], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.lines = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }
  async next(): Promise<Record<string, unknown>> {
    const line = await this.lines.next();
    if (line.done) throw new Error('a bench worker exited early (its stderr is above)');
    return JSON.parse(line.value) as Record<string, unknown>;
  }
  async ask(command: object): Promise<Figure> {
    this.child.stdin.write(`${JSON.stringify(command)}\n`);
    const answer = await this.next();
    return { ...answer, load: os.loadavg() } as Figure;
  }
  close(): void {
    this.child.stdin.end();
  }
}

async function timed(tokens: number, work: () => Promise<unknown>): Promise<Figure> {
  const t0 = performance.now();
  await work();
  const wall = (performance.now() - t0) / 1000;
  return { wall_s: wall, tokens, tokens_per_s: tokens / wall, load: os.loadavg() };
}

function bestOfRequests(prompts: number[][], samples: number): GenerationRequest[] {
  return prompts.flatMap((prompt, p) => Array.from({ length: samples }, (_, c) => ({ id: `p${p}|c${c}`, prompt })));
}

/**
 * A first run of the session, untimed, on prompts of its own: a prompt warmed up on would be in the prefix
 * cache when timed, and the other sides have nothing of the kind.
 */
async function warmUp(generator: Generator, length: number): Promise<void> {
  const prompts = promptRows(generator.config.vocabSize, 2, length, 999);
  await generator.generate(prompts.map((prompt, i) => ({ id: `warm${i}`, prompt })), { temperature: 1, maxNewTokens: 4, stopTokens: [], batchSize: 2 });
}

async function engineWorkload(generator: Generator, prompts: number[][], w: { samples: number; newTokens: number }, temperature = 1): Promise<Figure> {
  const requests = bestOfRequests(prompts, w.samples);
  await warmUp(generator, prompts[0].length);
  return timed(requests.length * w.newTokens, () =>
    generator.generate(requests, { temperature, topP: 1, topK: 0, maxNewTokens: w.newTokens, stopTokens: [], stopStrings: [], seed: 1, batchSize: ROWS }),
  );
}

async function engineDecode(generator: Generator, prompts: number[][]): Promise<Figure> {
  const requests = prompts.map((prompt, i) => ({ id: `r${i}`, prompt }));
  await warmUp(generator, prompts[0].length);
  let first: number[] = [];
  const figure = await timed(prompts.length * DECODE.newTokens, async () => {
    const generations = await generator.generate(requests, { temperature: 0, maxNewTokens: DECODE.newTokens, stopTokens: [], batchSize: prompts.length });
    first = generations[0].tokens;
  });
  return { ...figure, first_row: first };
}

/**
 * The multi-turn workload in rise: `fresh` gives turn t's prompts when the conversations are not continued
 * (the uncached side); otherwise each turn's prompt extends the last with its response and the feedback.
 */
async function engineMultiTurn(generator: Generator, first: number[][], fresh: ((turn: number) => number[][]) | null): Promise<Figure> {
  const feedback = promptRows(generator.config.vocabSize, 1, MULTI_TURN.feedbackTokens, 77)[0];
  await warmUp(generator, MULTI_TURN.promptTokens);
  let prompts = first;
  const turns: number[] = [];
  let cached = 0;
  let prompted = 0;
  for (let turn = 1; turn <= MULTI_TURN.turns; turn++) {
    if (turn > 1 && fresh !== null) prompts = fresh(turn);
    const requests = prompts.map((prompt, i) => ({ id: `c${i}|t${turn}`, prompt, keepCache: fresh === null }));
    const t0 = performance.now();
    const generations = await generator.generate(requests, { temperature: 0, maxNewTokens: MULTI_TURN.newTokens, stopTokens: [], batchSize: ROWS });
    turns.push((performance.now() - t0) / 1000);
    cached += generations.reduce((n, g) => n + g.cachedTokens, 0);
    prompted += prompts.reduce((n, p) => n + p.length, 0);
    if (fresh === null) prompts = prompts.map((p, i) => [...p, ...generations[i].tokens, ...feedback]);
  }
  const wall = turns.reduce((a, b) => a + b, 0);
  const tokens = first.length * MULTI_TURN.turns * MULTI_TURN.newTokens;
  return { wall_s: wall, tokens, tokens_per_s: tokens / wall, load: os.loadavg(), turns_s: turns, prompt_tokens: prompted, cached_prompt_tokens: cached };
}

/** The multi-turn workload on a Python side: each turn's prompts prefilled whole. */
async function referenceMultiTurn(side: Worker, fresh: (turn: number) => number[][]): Promise<Figure> {
  const turns: Figure[] = [];
  for (let turn = 1; turn <= MULTI_TURN.turns; turn++) turns.push(await side.ask({ part: 'decode', prompts: fresh(turn), new_tokens: MULTI_TURN.newTokens }));
  const wall = turns.reduce((n, f) => n + f.wall_s, 0);
  const tokens = turns.reduce((n, f) => n + f.tokens, 0);
  return { wall_s: wall, tokens, tokens_per_s: tokens / wall, load: os.loadavg(), turns_s: turns.map((f) => f.wall_s) };
}

/** How many leading greedy tokens of the first row every side agrees on: the sides run the same model. */
function agreement(f: Record<string, Figure>): number {
  const rows = Object.values(f).map((x) => x.first_row as number[]);
  let n = 0;
  while (n < rows[0].length && rows.every((r) => r[n] === rows[0][n])) n++;
  return n;
}

function llamaUnavailable(): string | null {
  const probe = spawnSync(python, ['-c', 'import llama_cpp'], { encoding: 'utf8' });
  if (probe.status !== 0) return `llama_cpp does not import from bench/.venv (bash bench/llama/setup.sh): ${probe.stderr.trim().split('\n').at(-1)}`;
  if (!existsSync(F32_GGUF)) return `no ${F32_GGUF} (bash bench/llama/setup.sh writes it)`;
  return null;
}

const ratio = (a: number, b: number | undefined) => (b === undefined ? null : Math.round((a / b) * 100) / 100);
const log = (what: string, f: Figure) => console.error(`${what}: ${f.tokens_per_s.toFixed(0)} tok/s, ${f.wall_s.toFixed(1)} s, load ${f.load.join(' ')}`);

const partial = {
  workload: {} as Record<string, Record<string, Figure>>,
  decode: {} as Record<string, Record<string, Figure>>,
  /** Per batch: leading greedy tokens of the first row on which all sides agree (of --decode-tokens). */
  greedy_tokens_agreeing: {} as Record<string, number>,
  multi_turn: {} as Record<string, Figure>,
};
/** Written after every part, so a run cut short still leaves the figures it measured. */
function save(extra: object = {}): void {
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ ...header(), ...partial, ...extra }, null, 2)}\n`);
}

process.env.RISE_THREADS = String(threads);
const loadStart = os.loadavg();
const started = performance.now();
const torch = new Worker(join(root, 'bench/torch/sampling_bench.py'));
const torchInfo = await torch.next();
const llamaMissing = llamaUnavailable();
const llama = llamaMissing === null ? new Worker(join(root, 'bench/llama/sampling_bench.py')) : null;
const llamaInfo = llama ? await llama.next() : { unavailable: llamaMissing };

// (1a) The quickstart's model: engine and PyTorch.
const spec = JSON.parse(readFileSync(join(root, 'experiments/quickstart.json'), 'utf8')) as { model: { config: Partial<ModelConfig> } };
const quickConfig = resolveModelConfig({ seed: 1, ...spec.model.config, vocabSize: builtinTokenizer().vocabSize });
const quick = new Generator(quickConfig, initParameters(quickConfig), builtinTokenizer());
const quickPrompts = promptRows(quickConfig.vocabSize, WORKLOADS.quickstart.prompts, WORKLOADS.quickstart.promptTokens, 1);
const quickstart: Record<string, Figure> = {};
partial.workload.quickstart = quickstart;
quickstart.rise = await engineWorkload(quick, quickPrompts, WORKLOADS.quickstart);
log('quickstart workload, rise', quickstart.rise);
save();
await torch.ask({ part: 'load', model: 'quickstart', config: quickConfig });
quickstart.torch = await torch.ask({ part: 'workload', prompts: quickPrompts, samples: WORKLOADS.quickstart.samples, new_tokens: WORKLOADS.quickstart.newTokens, rows: ROWS });
log('quickstart workload, torch', quickstart.torch);
save();

// (1b) SmolLM2: all three.
const smol = await loadPretrained(findModel(modelsHome(), MODEL).card.digest);
const generator = new Generator(smol.config, smol.params, smol.tokenizer);
const smolPrompts = promptRows(smol.config.vocabSize, WORKLOADS.smollm2.prompts, WORKLOADS.smollm2.promptTokens, 2);
await torch.ask({ part: 'load', model: 'smollm2', gguf: sourcePath(modelsHome(), knownModel(MODEL)) });
if (llama) await llama.ask({ part: 'load', model: 'smollm2', gguf: F32_GGUF });
const smollm2: Record<string, Figure> = {};
partial.workload.smollm2 = smollm2;
const smolWork = { prompts: smolPrompts, samples: WORKLOADS.smollm2.samples, new_tokens: WORKLOADS.smollm2.newTokens, rows: ROWS };
smollm2.rise = await engineWorkload(generator, smolPrompts, WORKLOADS.smollm2);
log('smollm2 workload, rise', smollm2.rise);
save();
smollm2.torch = await torch.ask({ part: 'workload', ...smolWork });
log('smollm2 workload, torch', smollm2.torch);
save();
if (llama) {
  smollm2.llama_cpp = await llama.ask({ part: 'workload', ...smolWork });
  log('smollm2 workload, llama.cpp', smollm2.llama_cpp);
  save();
}

// (1c) SmolLM2 at temperature 0.7, over a quarter of the prompts: all three.
const tempered: Record<string, Figure> = {};
partial.workload.smollm2_t07 = tempered;
// Prompts of their own: the engine's prefix cache still holds the ones above.
const fewer = promptRows(smol.config.vocabSize, Math.max(1, PROMPTS / 4), WORKLOADS.smollm2.promptTokens, 3);
tempered.rise = await engineWorkload(generator, fewer, WORKLOADS.smollm2, 0.7);
log('smollm2 workload at 0.7, rise', tempered.rise);
save();
tempered.torch = await torch.ask({ part: 'workload', ...smolWork, prompts: fewer, temperature: 0.7 });
log('smollm2 workload at 0.7, torch', tempered.torch);
save();
if (llama) {
  tempered.llama_cpp = await llama.ask({ part: 'workload', ...smolWork, prompts: fewer, temperature: 0.7 });
  log('smollm2 workload at 0.7, llama.cpp', tempered.llama_cpp);
  save();
}

// (2) Decode at batch 1 / 32 / 128 on SmolLM2.
const decode = partial.decode;
for (const B of DECODE.batches) {
  const prompts = promptRows(smol.config.vocabSize, B, DECODE.promptTokens, 10 + B);
  decode[B] = { rise: await engineDecode(generator, prompts) };
  log(`decode batch ${B}, rise`, decode[B].rise);
  save();
  decode[B].torch = await torch.ask({ part: 'decode', prompts, new_tokens: DECODE.newTokens });
  log(`decode batch ${B}, torch`, decode[B].torch);
  save();
  if (llama) {
    decode[B].llama_cpp = await llama.ask({ part: 'decode', prompts, new_tokens: DECODE.newTokens });
    log(`decode batch ${B}, llama.cpp`, decode[B].llama_cpp);
    save();
  }
  partial.greedy_tokens_agreeing[B] = agreement(decode[B]);
}

// (3) Multi-turn on SmolLM2.
const multiTurn: Record<string, Figure> = {};
partial.multi_turn = multiTurn;
const fresh = (turn: number) => promptRows(smol.config.vocabSize, MULTI_TURN.conversations, turnLength(turn), 300 + turn);
multiTurn.rise = await engineMultiTurn(generator, promptRows(smol.config.vocabSize, MULTI_TURN.conversations, turnLength(1), 200), null);
log('multi-turn, rise', multiTurn.rise);
save();
multiTurn.rise_uncached = await engineMultiTurn(generator, fresh(1), fresh);
log('multi-turn, rise uncached', multiTurn.rise_uncached);
save();
multiTurn.torch = await referenceMultiTurn(torch, fresh);
log('multi-turn, torch', multiTurn.torch);
save();
if (llama) {
  multiTurn.llama_cpp = await referenceMultiTurn(llama, fresh);
  log('multi-turn, llama.cpp', multiTurn.llama_cpp);
  save();
}
torch.close();
llama?.close();

function header() {
  return {
    date: new Date().toISOString(),
    command: `npm run bench:sampling -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine: { cpu: os.cpus()[0]?.model, cores: os.availableParallelism(), memory_gb: Math.round(os.totalmem() / 2 ** 30) },
    threads,
    seconds: (performance.now() - started) / 1000,
    loadavg_start: loadStart,
    loadavg_end: os.loadavg(),
    settings: {
      rows: ROWS,
      workloads: WORKLOADS,
      decode: DECODE,
      multi_turn: MULTI_TURN,
      sampling: 'workload: temperature 1 (smollm2_t07: 0.7), top-p 1, no top-k, no stop; decode and multi-turn: greedy, no stop',
      weights: `float32 everywhere: rise and PyTorch dequantize the store's Q4_1 GGUF, llama.cpp runs ${F32_GGUF} (the same tensors dequantized by bench/llama/f32_gguf.py); llama.cpp's KV cache in float32`,
    },
    versions: { torch: torchInfo, llama_cpp: llamaInfo },
  };
}

const best = (f: Record<string, Figure>) => Math.max(...Object.entries(f).filter(([side]) => side !== 'rise').map(([, x]) => x.tokens_per_s));
const result = {
  speedup: {
    workload_vs_torch: {
      quickstart: ratio(quickstart.rise.tokens_per_s, quickstart.torch.tokens_per_s),
      smollm2: ratio(smollm2.rise.tokens_per_s, smollm2.torch.tokens_per_s),
      smollm2_t07: ratio(tempered.rise.tokens_per_s, tempered.torch.tokens_per_s),
    },
    workload_vs_llama_cpp: { smollm2: ratio(smollm2.rise.tokens_per_s, smollm2.llama_cpp?.tokens_per_s), smollm2_t07: ratio(tempered.rise.tokens_per_s, tempered.llama_cpp?.tokens_per_s) },
    workload_vs_best: {
      quickstart: ratio(quickstart.rise.tokens_per_s, best(quickstart)),
      smollm2: ratio(smollm2.rise.tokens_per_s, best(smollm2)),
      smollm2_t07: ratio(tempered.rise.tokens_per_s, best(tempered)),
    },
    decode_vs_torch: Object.fromEntries(Object.entries(decode).map(([B, f]) => [B, ratio(f.rise.tokens_per_s, f.torch.tokens_per_s)])),
    decode_vs_llama_cpp: Object.fromEntries(Object.entries(decode).map(([B, f]) => [B, ratio(f.rise.tokens_per_s, f.llama_cpp?.tokens_per_s)])),
    multi_turn: {
      vs_uncached: ratio(multiTurn.rise.tokens_per_s, multiTurn.rise_uncached.tokens_per_s),
      vs_torch: ratio(multiTurn.rise.tokens_per_s, multiTurn.torch.tokens_per_s),
      vs_llama_cpp: ratio(multiTurn.rise.tokens_per_s, multiTurn.llama_cpp?.tokens_per_s),
    },
  },
};
save(result);
console.log(JSON.stringify(result.speedup));
process.exit(0);
