import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveModelConfig } from '../../src/engine/config.ts';
import { Generator } from '../../src/engine/generate.ts';
import { initParameters } from '../../src/engine/parameters.ts';
import { CharTokenizer } from '../../src/engine/tokenizer.ts';
import { createTask } from '../../src/tasks/index.ts';
import {
  CompactTemplate,
  ContextOverflowError,
  EnginePolicy,
  buildExamples,
  collectEpisodes,
  evaluatePolicy,
  filterEpisodes,
  retryMessage,
  stateConversation,
  windowAttempts,
  withResponse,
} from '../../src/rise/index.ts';
import { FILTER_DEFAULTS, PROMPTING, ScriptedPolicy, answer, evaluationKnobs, problems, relabeler, rolloutOptions } from './helpers.ts';

const tokenizer = new CharTokenizer();
const template = new CompactTemplate(tokenizer);
const ctx = { instruction: null, problem: 'Start with 2, plus 3.', feedback: 'The answer is incorrect. Please try again.' };

test('the compact template renders the documented format', () => {
  const state = stateConversation({ ...ctx, instruction: 'Be brief.' }, ['2+3=6\n#### 6']);
  const text = tokenizer.decode(template.renderPrompt(state));
  assert.equal(
    text,
    '<|bos|><|system|>Be brief.<|end|><|user|>Start with 2, plus 3.<|end|><|assistant|>2+3=6\n#### 6<|end|>' +
      '<|user|>The answer is incorrect. Please try again.\nStart with 2, plus 3.<|end|><|assistant|>',
  );
  // Role markers and <|end|> are single special tokens.
  const tokens = template.renderPrompt(state);
  assert.equal(tokens.filter((t) => t === tokenizer.special.end).length, 4);
  assert.equal(tokens[0], tokenizer.special.bos);
  assert.equal(tokens.at(-1), tokenizer.special.assistant);
  assert.deepEqual(template.stopTokens, [tokenizer.special.end]);
});

test('spans locate each message; an assistant span is its content plus the closing stop token', () => {
  const conversation = withResponse(stateConversation(ctx, ['first']), 'second');
  const { tokens, spans } = template.render(conversation);
  assert.deepEqual(spans.map((s) => s.role), ['user', 'assistant', 'user', 'assistant']);
  for (const s of spans) {
    assert.equal(tokens[s.start], tokenizer.special[s.role]);
    assert.equal(s.contentStart, s.start + 1);
    assert.equal(tokens[s.end - 1], tokenizer.special.end);
    assert.equal(tokenizer.decode(tokens.slice(s.contentStart, s.end - 1)), conversation.messages[s.message].content);
  }
  assert.equal(spans.at(-1)!.end, tokens.length);
  assert.throws(() => template.render({ messages: [{ role: 'user', content: 'x' }, { role: 'system', content: 'y' }] }), /system message must come first/);
});

test('the retry message is the feedback, then the question on its own line', () => {
  assert.equal(retryMessage('Wrong.', 'Q?'), 'Wrong.\nQ?');
  const c = stateConversation(ctx, ['a']);
  assert.deepEqual(c.messages.at(-1), { role: 'user', content: `${ctx.feedback}\n${ctx.problem}` });
});

test('the sliding window keeps the instruction, the first question and the most recent attempts', () => {
  const withInstruction = { ...ctx, instruction: 'sys' };
  const roles = (w: number | null) => stateConversation(withInstruction, ['a1', 'a2', 'a3'], w).messages.map((m) => `${m.role}:${m.content.split('\n')[0]}`);
  assert.deepEqual(roles(null), ['system:sys', `user:${ctx.problem}`, 'assistant:a1', `user:${ctx.feedback}`, 'assistant:a2', `user:${ctx.feedback}`, 'assistant:a3', `user:${ctx.feedback}`]);
  assert.deepEqual(roles(1), ['system:sys', `user:${ctx.problem}`, 'assistant:a3', `user:${ctx.feedback}`]);
  assert.deepEqual(roles(2), ['system:sys', `user:${ctx.problem}`, 'assistant:a2', `user:${ctx.feedback}`, 'assistant:a3', `user:${ctx.feedback}`]);
  assert.deepEqual(roles(0), ['system:sys', `user:${ctx.problem}`]);
  assert.deepEqual(roles(5), roles(null));
  assert.deepEqual(windowAttempts(['a', 'b', 'c'], 2), { kept: ['b', 'c'], from: 1 });
  assert.throws(() => windowAttempts([], -1), /non-negative/);
});

for (const prompting of [PROMPTING, { ...PROMPTING, instruction: 'Answer after ####.' }]) {
  test(`rollout, training and evaluation render the same state identically (instruction ${JSON.stringify(prompting.instruction)})`, async () => {
    const task = createTask('arithmetic');
    const ps = problems(2);
    // Always wrong, deterministic per (problem, turn), so rollout and evaluation produce the same attempts.
    const script = (id: { problemId: string; turn: number }) => answer(`${id.problemId.slice(1)}${id.turn}`);
    const learner = new ScriptedPolicy('learner', script);
    const rollout = rolloutOptions({ turns: 3 });
    const { episodes } = await collectEpisodes(ps, { task, learner, relabeler: relabeler(learner, { samples: 2 }), rollout, prompting, seed: 1 });
    const evaluator = new ScriptedPolicy('learner', script);
    await evaluatePolicy(evaluator, ps, { task, evaluate: evaluationKnobs({ turns: 3, parallelK: 1, contextWindow: null }), prompting, seed: 1 });
    const { kept } = filterEpisodes(episodes, FILTER_DEFAULTS);
    const { examples } = buildExamples(kept, { template, prompting, weighting: 'rwr', tau: 0.4, format: 'multiTurn', normalize: 'token', contextWindow: rollout.contextWindow, maxLength: 10_000 });
    assert.equal(examples.length, 6);
    for (const ex of examples) {
      const prefixEnd = ex.weights.findIndex((w) => w > 0);
      const prompt = ex.tokens.slice(0, prefixEnd);
      // The policy was asked exactly this prompt, in rollout and in evaluation.
      const asked = (p: ScriptedPolicy, evalRun: boolean) =>
        p.requests.filter((r) => r.id.startsWith(`${ex.problemId}|${evalRun ? 'eval|' : ''}t${ex.turn}|c0|`)).map((r) => template.renderPrompt(r.conversation));
      assert.deepEqual(asked(learner, false)[0], prompt);
      assert.deepEqual(asked(evaluator, true)[0], prompt);
      // The trained tokens are what a generator would emit: the attempt's tokens, then the stop token.
      const target = ex.tokens.slice(prefixEnd);
      const attempt = kept.find((k) => k.problemId === ex.problemId && k.turn === ex.turn)!.attempt;
      assert.deepEqual(target, [...tokenizer.encode(attempt), tokenizer.special.end]);
      assert.ok(ex.weights.slice(prefixEnd).every((w) => w > 0));
      // Every rendering starts with the instruction when there is one.
      assert.equal(tokenizer.decode(prompt).startsWith(`<|bos|><|system|>${prompting.instruction}<|end|>`), prompting.instruction !== null);
    }
  });
}

test('EnginePolicy refuses a conversation that does not fit the model context', async () => {
  const model = resolveModelConfig({ vocabSize: tokenizer.vocabSize, layers: 1, dim: 16, heads: 2, context: 24, seed: 1 });
  const policy = new EnginePolicy({ config: model, params: initParameters(model), tokenizer });
  const conversation = stateConversation(ctx, []);
  await assert.rejects(
    policy.respond([{ id: 'long', conversation }], { temperature: 1, topP: 1, maxTokens: 4, seed: 1 }),
    (err: unknown) => err instanceof ContextOverflowError && err.requestId === 'long' && /contextWindow/.test(err.message),
  );
});

test('EnginePolicy stops at <|end|> and returns the count and log-probability of the tokens it sampled', async () => {
  const model = resolveModelConfig({ vocabSize: tokenizer.vocabSize, layers: 1, dim: 16, heads: 2, context: 64, seed: 1 });
  const params = initParameters(model);
  // A large <|end|> embedding makes the stop token all but certain after the first sampled token.
  const emb = params.find((p) => p.name === 'tok_emb')!;
  for (let d = 0; d < model.dim; d++) emb.data[tokenizer.special.end * model.dim + d] = 5;
  const policy = new EnginePolicy({ config: model, params, tokenizer });
  const requests = ['a', 'b', 'c'].map((id) => ({ id, conversation: stateConversation(ctx, []) }));
  const responses = await policy.respond(requests, { temperature: 1, topP: 1, maxTokens: 8, seed: 1 });
  assert.deepEqual(responses.map((r) => r.id), ['a', 'b', 'c']);
  // What the policy sampled, token by token: the same streams through the generator directly.
  const sampled = await new Generator(model, params, tokenizer).generate(
    requests.map((r) => ({ id: r.id, prompt: template.renderPrompt(r.conversation) })),
    { temperature: 1, topP: 1, maxNewTokens: 8, stopTokens: [tokenizer.special.end], seed: 1, batchSize: 64 },
  );
  for (const [i, r] of responses.entries()) {
    const g = sampled[i];
    assert.equal(r.finishReason, 'stop');
    assert.equal(g.tokens.at(-1), tokenizer.special.end);
    assert.equal(r.tokens, g.tokens.length, 'the count includes the stop token');
    assert.equal(r.logprob, g.logprobs.reduce((a, b) => a + b, 0));
    assert.equal(r.text, tokenizer.decode(g.tokens.slice(0, -1)));
    // Re-rendering the text gives back the sampled tokens, even if a special token was sampled.
    assert.deepEqual(tokenizer.encode(r.text), g.tokens.slice(0, -1));
  }
});
