import { Generator } from './src/engine/generate.ts';
import { loadModelForInference } from './src/models/load.ts';
import { chatTemplateFor } from './src/rise/chat-template.ts';
const m = await loadModelForInference('smollm2-135m-instruct', '/tmp/rmodels');
const config = { ...m.config, context: 1024 };
const t = chatTemplateFor(m.tokenizer, m.stop);
const g = new Generator(config, m.params, m.tokenizer, {});
const prompt = t.renderPrompt({ messages: [{ role: 'user', content: 'Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?' }] });
await g.generate([{ id: 'w', prompt }], { temperature: 0, maxNewTokens: 4, batchSize: 1 });
for (const B of [16, 64]) {
  const t0 = Date.now();
  const out = await g.generate(Array.from({ length: B }, (_, i) => ({ id: `r${i}`, prompt })), { temperature: 0.7, maxNewTokens: 64, stopTokens: [], seed: 1, batchSize: B });
  const n = out.reduce((a, o) => a + o.tokens.length, 0);
  console.log(`B=${B}: ${n} tokens in ${(Date.now() - t0) / 1000}s = ${(n / ((Date.now() - t0) / 1000)).toFixed(1)} tok/s`);
}
console.log(JSON.stringify((await g.generate([{ id: 'x', prompt }], { temperature: 0, maxNewTokens: 120, stopTokens: t.stopTokens as number[], batchSize: 1 }))[0].text));
