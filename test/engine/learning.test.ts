/**
 * The engine learns: a small model trained from scratch on two-number addition with worked digits
 * must solve held-out sums greedily. Untrained it scores ~0, so a broken gradient, optimizer,
 * schedule or decoder fails this test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveModelConfig } from '../../src/engine/config.ts';
import { Generator } from '../../src/engine/generate.ts';
import { initParameters } from '../../src/engine/parameters.ts';
import { Rng } from '../../src/engine/random.ts';
import { CharTokenizer } from '../../src/engine/tokenizer.ts';
import { Trainer, type Example } from '../../src/engine/trainer.ts';

const tokenizer = new CharTokenizer();
const { bos, eos, pad } = tokenizer.special;

/** "37+48=" → "7+8=15|3+4+1=8|85": each column's sum with its carry, then the answer. */
function workedSum(a: number, b: number): string {
  const steps: string[] = [];
  let carry = 0;
  let digits = '';
  for (let x = a, y = b; x > 0 || y > 0 || carry > 0; x = Math.floor(x / 10), y = Math.floor(y / 10)) {
    const s = (x % 10) + (y % 10) + carry;
    steps.push(`${x % 10}+${y % 10}${carry ? '+1' : ''}=${s}`);
    digits = String(s % 10) + digits;
    carry = s >= 10 ? 1 : 0;
  }
  return `${steps.join('|')}|${digits || '0'}`;
}

function example(a: number, b: number): Example {
  const prompt = [bos, ...tokenizer.encode(`${a}+${b}=`)];
  const target = [...tokenizer.encode(workedSum(a, b)), eos];
  return { tokens: [...prompt, ...target], weights: [...prompt.map(() => 0), ...target.map(() => 1)] };
}

test('a small transformer learns addition with worked digits', { timeout: 600_000 }, async (t) => {
  const rng = new Rng('addition');
  const pairs = [...Array(10_000).keys()].map((i) => [Math.floor(i / 100), i % 100] as const);
  for (let i = pairs.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [pairs[i], pairs[j]] = [pairs[j], pairs[i]];
  }
  const train = pairs.slice(0, 4000);
  const heldOut = pairs.slice(9800);
  const config = resolveModelConfig({ vocabSize: tokenizer.vocabSize, layers: 2, dim: 64, heads: 4, context: 48, seed: 1 });
  const trainer = new Trainer(config, initParameters(config), pad);
  const fit = await trainer.fit(train.map(([a, b]) => example(a, b)), { epochs: 8, batchSize: 32, lr: 5e-3, seed: 1 });
  const generator = new Generator(config, trainer.params, tokenizer);
  const outputs = await generator.generate(
    heldOut.map(([a, b]) => ({ id: `${a}+${b}`, prompt: [bos, ...tokenizer.encode(`${a}+${b}=`)] })),
    { temperature: 0, maxNewTokens: 36, stopTokens: [eos], batchSize: 50 },
  );
  const correct = outputs.filter((o, i) => o.text.split('|').at(-1) === String(heldOut[i][0] + heldOut[i][1])).length;
  const accuracy = correct / heldOut.length;
  const first = fit.steps[0].loss;
  const last = fit.steps.at(-1)!.loss;
  t.diagnostic(`held-out accuracy ${accuracy} after ${fit.steps.length} steps, loss ${first.toFixed(3)} → ${last.toFixed(3)}`);
  assert.ok(accuracy >= 0.9, `held-out accuracy ${accuracy} after ${fit.steps.length} steps (loss ${first.toFixed(3)} → ${last.toFixed(3)})`);
});
