/**
 * Real-model speed, side by side in one run: rise's engine and PyTorch + transformers (+ PEFT) on the same
 * SmolLM2-135M-Instruct weights (both dequantize the same GGUF to float32), the same thread count, the
 * same settings (bench/torch/models_bench.py documents them): LoRA training tokens/s (rank 16, alpha 32,
 * all seven projections, AdamW on adapters only, 4 rows × 256 tokens, loss on every token), prefill
 * tokens/s (one 256-token prompt) and decode tokens/s with a KV cache at batch 1, 16 and 64 (64-token
 * prompts, 64 new tokens per row, prefill included, no early stop). Writes one JSON file.
 *
 *   npm run bench:models [-- --threads 2] [--out bench/results/models.json]
 *
 * Needs the model in the model store (`rise model pull smollm2-135m-instruct`) and bench/.venv
 * (`bash bench/torch/setup.sh`). The two sides run one after the other, never at once; the load average
 * is recorded with each, since other work on the machine makes a figure say little.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Generator } from '../src/engine/generate.ts';
import { LORA_TARGETS } from '../src/engine/lora.ts';
import { Rng } from '../src/engine/random.ts';
import { Trainer, type Example } from '../src/engine/trainer.ts';
import { knownModel, sourcePath } from '../src/models/pull.ts';
import { loadPretrained } from '../src/models/load.ts';
import { findModel, modelsHome } from '../src/models/store.ts';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : process.argv[i + 1];
}
const root = fileURLToPath(new URL('..', import.meta.url));
const threads = Number(flag('threads', '2'));
const out = flag('out', join(root, 'bench/results/models.json'));
const MODEL = 'smollm2-135m-instruct';

const NAMES = ['Natalia', 'Weng', 'Betty', 'Julie', 'James', 'Mark', 'Albert', 'Ken', 'Alexis', 'Tina'];
const ITEMS = ['clips', 'apples', 'books', 'stickers', 'cookies', 'marbles', 'pencils', 'cards'];

/** Word problems in GSM8K's layout, as the PyTorch side writes them (its own random draws). */
function gsm8kLikeText(rng: Rng, problems: number): string {
  const pick = <T>(xs: T[]) => xs[Math.floor(rng.uniform() * xs.length)];
  const int = (lo: number, hi: number) => lo + Math.floor(rng.uniform() * (hi - lo + 1));
  const out: string[] = [];
  for (let i = 0; i < problems; i++) {
    const [name, item, a, k, price] = [pick(NAMES), pick(ITEMS), int(12, 96), int(2, 6), int(2, 9)];
    const b = a * k;
    const total = a + b;
    out.push(
      `Question: ${name} has ${a} ${item}. Her friend has ${k} times as many ${item}. Each of the ${item} sells for $${price}. How much money do they make if they sell all of their ${item} together?\n` +
        `Answer: The friend has ${a}*${k} = <<${a}*${k}=${b}>>${b} ${item}.\nTogether they have ${a}+${b} = <<${a}+${b}=${total}>>${total} ${item}.\n` +
        `They make ${total}*${price} = <<${total}*${price}=${total * price}>>${total * price} dollars.\n#### ${total * price}\n`,
    );
  }
  return out.join('\n');
}

function tokenRows(encode: (text: string) => number[], rows: number, length: number, seed: number): number[][] {
  const rng = new Rng(seed, 'bench-text');
  const ids: number[] = [];
  while (ids.length < rows * length) ids.push(...encode(gsm8kLikeText(rng, 8)));
  return Array.from({ length: rows }, (_, r) => ids.slice(r * length, (r + 1) * length));
}

const seconds = async (work: () => Promise<unknown>) => {
  const t0 = performance.now();
  await work();
  return (performance.now() - t0) / 1000;
};

async function benchRise() {
  process.env.RISE_THREADS = String(threads);
  const model = await loadPretrained(findModel(modelsHome(), MODEL).card.digest);
  const { config, params, tokenizer } = model;
  const encode = (text: string) => tokenizer.encode(text);
  const load = os.loadavg();

  // (a) LoRA training: every token a target, as transformers' causal LM loss with labels = inputs.
  const rows = tokenRows(encode, 4, 256, 1);
  const examples: Example[] = rows.map((tokens) => ({ tokens, weights: tokens.map((_, t) => (t === 0 ? 0 : 1)) }));
  const trainer = Trainer.withLora(config, params, { rank: 16, alpha: 32, targets: [...LORA_TARGETS], dropout: 0 }, tokenizer.special.pad, {
    optimizer: { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, clipNorm: 1e9 },
    seed: 1,
  });
  await trainer.trainStep(examples, 1e-4);
  const stepSeconds: number[] = [];
  for (let i = 0; i < 3; i++) stepSeconds.push(await seconds(() => trainer.trainStep(examples, 1e-4)));
  const loraTokensPerS = (4 * 256 * 3) / stepSeconds.reduce((a, b) => a + b, 0);

  // (b) prefill: one 256-token prompt, logits of the last position (one generated token).
  const generator = new Generator(config, params, tokenizer);
  const [prompt] = tokenRows(encode, 1, 256, 2);
  const once = () => generator.generate([{ id: 'p', prompt }], { temperature: 0, maxNewTokens: 1, stopTokens: [], batchSize: 1 });
  await once();
  const prefillSeconds: number[] = [];
  for (let i = 0; i < 3; i++) prefillSeconds.push(await seconds(once));
  const prefillTokensPerS = (256 * 3) / prefillSeconds.reduce((a, b) => a + b, 0);

  // (c) decode: B distinct 64-token prompts, 64 new tokens each, no early stop; prefill included.
  const decode: Record<string, number> = {};
  const decodeSeconds: Record<string, number> = {};
  await generator.generate([{ id: 'w', prompt: prompt.slice(0, 64) }], { temperature: 0, maxNewTokens: 2, stopTokens: [], batchSize: 1 });
  for (const B of [1, 16, 64]) {
    const prompts = tokenRows(encode, B, 64, 3 + B).map((p, i) => ({ id: `r${i}`, prompt: p }));
    const s = await seconds(() => generator.generate(prompts, { temperature: 0, maxNewTokens: 64, stopTokens: [], batchSize: B }));
    decode[B] = (B * 64) / s;
    decodeSeconds[B] = s;
  }
  return {
    threads,
    lora_train_tokens_per_s: loraTokensPerS,
    lora_step_s: stepSeconds,
    prefill_tokens_per_s: prefillTokensPerS,
    prefill_s: prefillSeconds,
    decode_tokens_per_s: decode,
    decode_s: decodeSeconds,
    loadavg_start: load,
    loadavg_end: os.loadavg(),
  };
}

const rise = await benchRise();
console.error(`rise: ${JSON.stringify(rise)}`);
const python = join(root, 'bench/.venv/bin/python');
const gguf = sourcePath(modelsHome(), knownModel(MODEL));
const torch = JSON.parse(
  execFileSync(python, [join(root, 'bench/torch/models_bench.py'), '--gguf', gguf, '--threads', String(threads)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }),
) as { lora_train_tokens_per_s: number; prefill_tokens_per_s: number; decode_tokens_per_s: Record<string, number> };
const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
const result = {
  date: new Date().toISOString(),
  machine: { cpu: os.cpus()[0]?.model, cores: os.availableParallelism(), memory_gb: Math.round(os.totalmem() / 2 ** 30) },
  model: MODEL,
  rise,
  torch,
  speedup: {
    lora_train: ratio(rise.lora_train_tokens_per_s, torch.lora_train_tokens_per_s),
    prefill: ratio(rise.prefill_tokens_per_s, torch.prefill_tokens_per_s),
    decode: Object.fromEntries(Object.keys(rise.decode_tokens_per_s).map((b) => [b, ratio(rise.decode_tokens_per_s[b], torch.decode_tokens_per_s[b])])),
  },
};
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
console.log(JSON.stringify(result.speedup));
process.exit(0);
