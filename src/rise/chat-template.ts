/**
 * A Hugging Face chat template (Jinja, rendered by @huggingface/jinja as transformers renders it with
 * jinja2) as a `ChatTemplate`.
 *
 * Spans: the conversation is rendered once with each message's content replaced by a sentinel, which cuts
 * the text into template pieces T0 C0 T1 C1 … Tn (Ci the contents); a second render with the real contents
 * must equal those pieces joined, so a template that rewrites content (trims it, say) is refused rather
 * than mis-spanned. Each piece is tokenized on its own, so no token crosses a message boundary: a
 * message's content tokens are exactly `tokenizer.encode(content)`, which is also what the model produces
 * when it generates that message after the header. (A whole-string tokenization can differ at a boundary
 * when content starts with whitespace; this one matches generation.) Special-token strings split text in
 * any case, so the two agree for content that starts with a letter or digit.
 *
 * Where spans lie: a message's content is followed by its closing piece, whose first token must be a stop
 * token for an assistant message (the span's `end` includes it). Everything between the previous message's
 * closing token and the content — separators, the role header, and before the first message the BOS and
 * any system prompt the template injects — is the message's header, from `start` to `contentStart`.
 *
 * The prompt for a state is the rendering of the state plus an empty assistant message, cut where that
 * message's content would begin, so it is by construction a token prefix of the state rendered with any
 * answer; it is checked to equal the template's own `add_generation_prompt` rendering.
 */

import { Template } from '@huggingface/jinja';
import { HfTokenizer } from '../engine/hf-tokenizer.ts';
import { CharTokenizer, type Tokenizer } from '../engine/tokenizer.ts';
import type { Conversation, Message } from './conversation.ts';
import { CompactTemplate, type ChatTemplate, type MessageSpan, type RenderedConversation } from './template.ts';

/** The token strings a template may refer to as `bos_token` and `eos_token`. */
export interface TemplateSpecialTokens {
  bos: string | null;
  eos: string;
}

export interface JinjaChatTemplateOptions {
  /** Names the template in errors and in `name`. */
  name?: string;
  /** The Jinja source, e.g. tokenizer_config.json's `chat_template` or GGUF's `tokenizer.chat_template`. */
  source: string;
  tokenizer: Tokenizer;
  special: TemplateSpecialTokens;
  /** Tokens that close an assistant message (e.g. `<|im_end|>`, `<|eot_id|>`). */
  stopTokens: readonly number[];
}

/** Private-use characters mark where each message's content goes; they survive any template logic that does not inspect content. */
const OPEN = '\u{F0000}';
const CLOSE = '\u{F0001}';
const sentinel = (i: number) => `${OPEN}${i}${CLOSE}`;

export class JinjaChatTemplate implements ChatTemplate {
  readonly name: string;
  readonly stopTokens: readonly number[];
  private readonly template: Template;
  private readonly tokenizer: Tokenizer;
  private readonly special: TemplateSpecialTokens;

  constructor(o: JinjaChatTemplateOptions) {
    this.name = o.name ?? 'jinja';
    if (o.stopTokens.length === 0) throw new Error(`chat template ${this.name}: stopTokens must name at least one token`);
    this.stopTokens = [...o.stopTokens];
    this.tokenizer = o.tokenizer;
    this.special = o.special;
    try {
      this.template = new Template(o.source);
    } catch (e) {
      throw new Error(`chat template ${this.name}: the Jinja source does not parse: ${(e as Error).message}`);
    }
  }

  render(conversation: Conversation): RenderedConversation {
    const { tokens, spans } = this.renderPieces(conversation.messages);
    return { tokens, spans };
  }

  renderPrompt(conversation: Conversation): number[] {
    const { tokens, spans, text, contentOffsets } = this.renderPieces([...conversation.messages, { role: 'assistant', content: '' }]);
    const prompt = text.slice(0, contentOffsets.at(-1));
    const generationPrompt = this.text(conversation.messages, true);
    if (prompt !== generationPrompt) {
      throw new Error(
        `chat template ${this.name}: its generation prompt (add_generation_prompt) is not the header it renders before an assistant message, ` +
          `so a prompt would not be a prefix of the rendered answer (ends ${JSON.stringify(generationPrompt.slice(-40))}, expected ${JSON.stringify(prompt.slice(-40))})`,
      );
    }
    return tokens.slice(0, spans.at(-1)!.contentStart);
  }

  private text(messages: readonly Message[], addGenerationPrompt: boolean): string {
    try {
      return this.template.render({
        messages,
        add_generation_prompt: addGenerationPrompt,
        bos_token: this.special.bos ?? '',
        eos_token: this.special.eos,
      });
    } catch (e) {
      throw new Error(`chat template ${this.name}: rendering failed: ${(e as Error).message}`);
    }
  }

  /** The closed messages' tokens and spans, with the rendered text and where each content starts in it. */
  private renderPieces(messages: readonly Message[]): RenderedConversation & { text: string; contentOffsets: number[] } {
    messages.forEach((m, i) => {
      if (m.role === 'system' && i !== 0) throw new Error(`chat template ${this.name}: a system message must come first (found at message ${i})`);
    });
    const pieces = this.templatePieces(messages);
    const text = pieces.map((p, i) => (i < messages.length ? p + messages[i].content : p)).join('');
    const real = this.text(messages, false);
    if (real !== text) {
      let at = 0;
      while (real[at] === text[at]) at++;
      throw new Error(
        `chat template ${this.name}: the template changes message content (e.g. trims it), so message boundaries cannot be located ` +
          `(the renderings differ from character ${at})`,
      );
    }

    const tokens = this.tokenizer.encode(pieces[0]);
    const spans: MessageSpan[] = [];
    const contentOffsets: number[] = [];
    let offset = pieces[0].length;
    messages.forEach((m, i) => {
      const start = i === 0 ? 0 : spans[i - 1].end;
      const contentStart = tokens.length;
      contentOffsets.push(offset);
      for (const id of this.tokenizer.encode(m.content)) tokens.push(id);
      const closing = this.tokenizer.encode(pieces[i + 1]);
      const closed = closing.length > 0 && this.stopTokens.includes(closing[0]);
      if (m.role === 'assistant' && !closed) {
        throw new Error(`chat template ${this.name}: assistant message ${i} is not closed by a stop token (stopTokens ${JSON.stringify(this.stopTokens)})`);
      }
      const end = tokens.length + (closed ? 1 : 0);
      for (const id of closing) tokens.push(id);
      offset += m.content.length + pieces[i + 1].length;
      spans.push({ message: i, role: m.role, start, contentStart, end });
    });
    return { tokens, spans, text, contentOffsets };
  }

  /** The template's text around the contents: pieces[i] precedes message i's content, the last piece follows the last content. */
  private templatePieces(messages: readonly Message[]): string[] {
    const marked = this.text(messages.map((m, i) => ({ role: m.role, content: sentinel(i) })), false);
    const pieces: string[] = [];
    let from = 0;
    messages.forEach((_, i) => {
      const mark = sentinel(i);
      const at = marked.indexOf(mark, from);
      if (at < 0 || marked.indexOf(mark, at + 1) >= 0) {
        throw new Error(`chat template ${this.name}: the content of message ${i} is not rendered exactly once, in order`);
      }
      pieces.push(marked.slice(from, at));
      from = at + mark.length;
    });
    pieces.push(marked.slice(from));
    return pieces;
  }
}

/**
 * The chat format a model's tokenizer implies: the compact format for the built-in char tokenizer (whose
 * stop is always `<|end|>`); for a Hugging Face tokenizer, the model's own template, stopped by its
 * end-of-sequence token (SmolLM2's and Qwen2's `<|im_end|>`, an instruct Llama 3's `<|eot_id|>`) and by any
 * further `stop` token strings (e.g. a model card's end-of-turn markers), each of which must be one token.
 */
export function chatTemplateFor(tokenizer: Tokenizer, stop: readonly string[] = []): ChatTemplate {
  if (tokenizer instanceof CharTokenizer) return new CompactTemplate(tokenizer);
  if (tokenizer instanceof HfTokenizer) {
    if (tokenizer.chatTemplate === null) throw new Error('chat template: the Hugging Face tokenizer has no chat template (tokenizer.chat_template)');
    const stopTokens = new Set([tokenizer.special.eos]);
    for (const text of stop) {
      const ids = tokenizer.encode(text);
      if (ids.length !== 1) throw new Error(`chat template: stop token ${JSON.stringify(text)} is not a single token of the vocabulary (it encodes to ${ids.length})`);
      stopTokens.add(ids[0]);
    }
    const { bos, eos } = tokenizer.toJSON().special;
    return new JinjaChatTemplate({ name: 'huggingface', source: tokenizer.chatTemplate, tokenizer, special: { bos, eos }, stopTokens: [...stopTokens] });
  }
  throw new Error(`chat template: no chat format is known for the tokenizer kind ${JSON.stringify(tokenizer.toJSON().kind)}`);
}
