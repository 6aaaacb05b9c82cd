import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gguf } from '@huggingface/gguf';
import { HfTokenizer } from '../../src/engine/hf-tokenizer.ts';
import { CharTokenizer } from '../../src/engine/tokenizer.ts';
import { JinjaChatTemplate, chatTemplateFor } from '../../src/rise/chat-template.ts';
import { stateConversation, withResponse, type Conversation, type Message } from '../../src/rise/conversation.ts';
import { CompactTemplate, type ChatTemplate } from '../../src/rise/template.ts';
import { smollm2Gguf } from '../models/real-model.ts';

const fixture = JSON.parse(readFileSync(new URL('../fixtures/smollm2-tokenizer.json', import.meta.url), 'utf8')) as {
  chats: { messages: Message[]; addGenerationPrompt: boolean; text: string; ids: number[] }[];
};

const smollm2 = () => gguf(smollm2Gguf(), { allowLocalFile: true }).then(({ metadata }) => HfTokenizer.fromGguf(metadata));

/** What every template must guarantee, for one state and one answer (see template.ts). */
function checkContract(template: ChatTemplate, tokenizer: { encode(text: string): number[] }, state: Conversation, answer: string): void {
  const prompt = template.renderPrompt(state);
  const full = template.render(withResponse(state, answer));
  assert.deepEqual(full.tokens.slice(0, prompt.length), prompt, 'the prompt is a token prefix of the state with its answer');
  const last = full.spans.at(-1)!;
  assert.equal(last.contentStart, prompt.length);
  assert.deepEqual(full.tokens.slice(last.contentStart, last.end), [...tokenizer.encode(answer), template.stopTokens[0]]);
  full.spans.forEach((s, i) => {
    assert.equal(s.message, i);
    assert.equal(s.start, i === 0 ? 0 : full.spans[i - 1].end, 'spans tile the rendering');
    assert.deepEqual(full.tokens.slice(s.contentStart, s.contentStart + tokenizer.encode(state.messages[i]?.content ?? answer).length), tokenizer.encode(state.messages[i]?.content ?? answer));
  });
  assert.deepEqual(template.render(state).tokens, prompt.slice(0, template.render(state).tokens.length), 'the closed state is a prefix of its prompt');
}

test('SmolLM2 chat template: renderings equal transformers apply_chat_template, text and ids', async () => {
  const tok = await smollm2();
  const template = chatTemplateFor(tok);
  assert.ok(template instanceof JinjaChatTemplate);
  assert.deepEqual(template.stopTokens, [2]);
  assert.deepEqual(chatTemplateFor(tok, ['<|im_end|>', '<|endoftext|>']).stopTokens, [2, 0]);
  assert.throws(() => chatTemplateFor(tok, ['end of turn']), /stop token "end of turn" is not a single token/);
  for (const chat of fixture.chats) {
    const conversation = { messages: chat.messages };
    const ids: number[] = chat.addGenerationPrompt ? template.renderPrompt(conversation) : template.render(conversation).tokens;
    assert.deepEqual(ids, chat.ids);
    assert.equal(tok.decode(ids), chat.text);
  }
  // Without a system message the template injects its default one, before the first message's content.
  const { tokens, spans } = template.render({ messages: fixture.chats[0].messages });
  assert.ok(tok.decode(tokens.slice(spans[0].start, spans[0].contentStart)).includes('You are a helpful AI assistant named SmolLM'));
});

test('SmolLM2 chat template: an assistant span is what the model generates, and prompts are prefixes of their answers', async () => {
  const tok = await smollm2();
  const template = chatTemplateFor(tok);
  const ctx = { instruction: null, problem: 'Start with 2, plus 3.', feedback: 'The answer is incorrect. Please try again.' };
  const answers = ['2+3=5\n#### 5', '  indented code:\n\tx = 1\n', '\nstarts with a newline', 'a sampled <|im_end|> inside', '東京 😀 3.14159'];
  for (const instruction of [null, 'Answer after ####.']) {
    for (let turn = 0; turn < answers.length; turn++) {
      checkContract(template, tok, stateConversation({ ...ctx, instruction }, answers.slice(0, turn)), answers[turn]);
    }
  }
  const rendered = template.render(withResponse(stateConversation(ctx, []), 'The sum is 5.'));
  assert.deepEqual(rendered.spans.map((s) => s.role), ['user', 'assistant']);
  assert.equal(tok.decode(rendered.tokens.slice(rendered.spans[1].start, rendered.spans[1].contentStart)), '\n<|im_start|>assistant\n');
  assert.equal(tok.decode(rendered.tokens.slice(rendered.spans[1].end)), '\n');
});

/** The compact format written as a Jinja template: rendering it must give exactly what CompactTemplate gives. */
const COMPACT_JINJA =
  "{{ bos_token }}{% for m in messages %}{{ '<|' + m['role'] + '|>' + m['content'] + '<|end|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}";
const char = new CharTokenizer();
const jinja = (source: string) => new JinjaChatTemplate({ source, tokenizer: char, special: { bos: '<|bos|>', eos: '<|eos|>' }, stopTokens: [char.special.end] });

test('a Jinja rendering of the compact format gives the compact template\'s tokens and spans', () => {
  const template = jinja(COMPACT_JINJA);
  const compact = new CompactTemplate(char);
  const ctx = { instruction: 'Be brief.', problem: 'Q?', feedback: 'Wrong.' };
  for (const previous of [[], ['a1'], ['a1', '<|user|>a2']]) {
    const state = stateConversation(ctx, previous);
    assert.deepEqual(template.renderPrompt(state), compact.renderPrompt(state));
    const full = withResponse(state, 'answer');
    const mine = template.render(full);
    const theirs = compact.render(full);
    assert.deepEqual(mine.tokens, theirs.tokens);
    // Compact spans start at the role marker; here a message's header starts right after the previous closing token.
    assert.deepEqual(mine.spans.map(({ start: _, ...s }) => s), theirs.spans.map(({ start: _, ...s }) => s));
    checkContract(template, char, state, 'answer');
  }
  assert.ok(chatTemplateFor(char) instanceof CompactTemplate);
});

test('templates whose spans cannot be trusted are refused with the reason', () => {
  const state = { messages: [{ role: 'user' as const, content: ' padded ' }] };
  assert.throws(() => jinja(COMPACT_JINJA.replace("m['content']", "m['content'] | trim")).render(state), /changes message content \(e\.g\. trims it\)/);
  // Trimming is harmless where it changes nothing.
  assert.doesNotThrow(() => jinja(COMPACT_JINJA.replace("m['content']", "m['content'] | trim")).render({ messages: [{ role: 'user', content: 'x' }] }));
  const unclosed = { messages: [{ role: 'user' as const, content: 'q' }, { role: 'assistant' as const, content: 'a' }] };
  assert.throws(() => jinja(COMPACT_JINJA.replace("+ '<|end|>'", "+ '\\n'")).render(unclosed), /assistant message 1 is not closed by a stop token/);
  assert.throws(() => jinja(COMPACT_JINJA.replace("'<|assistant|>' }}{% endif %}", "'<|assistant|>\\n' }}{% endif %}")).renderPrompt(state), /generation prompt .* is not the header/);
  assert.throws(() => jinja("{{ raise_exception('no system role') }}").render(state), /rendering failed: no system role/);
  assert.throws(() => jinja('{% for m in messages %}{% endfor %}').render(state), /content of message 0 is not rendered exactly once/);
  assert.throws(() => jinja('{% for m in messages %').render(state), /does not parse/);
  assert.throws(() => jinja(COMPACT_JINJA).render({ messages: [{ role: 'user', content: 'x' }, { role: 'system', content: 'y' }] }), /system message must come first/);
});

test('a Hugging Face tokenizer without a chat template has no chat format', () => {
  const json = {
    model: { type: 'BPE', vocab: { a: 0, '<e>': 1 }, merges: [] },
    added_tokens: [{ id: 1, content: '<e>', special: true }],
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: null,
  };
  const tok = new HfTokenizer({ kind: 'huggingface', tokenizer: json, special: { pad: '<e>', bos: null, eos: '<e>' }, chatTemplate: null });
  assert.throws(() => chatTemplateFor(tok), /has no chat template/);
});
