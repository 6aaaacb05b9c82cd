/**
 * The chat template: conversation → token ids. Rollout, training and evaluation must render a state
 * identically (the authors' code rendered them differently, a bug; see docs/rise.md). Everything that turns messages into
 * tokens goes through a `ChatTemplate`: the policy renders a state with `renderPrompt`, training renders
 * the same state plus the response with `render`, and the template guarantees the first is a prefix of the
 * second and that the response's tokens are exactly what the policy generated (content, then the stop token).
 *
 * `CompactTemplate` is the format of the built-in character model:
 *
 *   <|bos|>[<|system|>{instruction}<|end|>]<|user|>{problem}<|end|><|assistant|>{attempt}<|end|><|user|>{feedback}\n{problem}<|end|><|assistant|>
 *
 * Each role marker and `<|end|>` is one special token; `<|end|>` closes every message and is the stop token
 * of generation, so a trained model learns where its answer ends. The markers are the char tokenizer's own
 * specials, not part of the generic tokenizer interface. A Hugging Face `chat_template` is the other
 * implementation of the interface (`JinjaChatTemplate`, chat-template.ts).
 */

import type { SpecialTokenIds, Tokenizer } from '../engine/tokenizer.ts';
import type { Conversation, Role } from './conversation.ts';

/** Where one message lies in a rendered sequence (token indices, end exclusive). */
export interface MessageSpan {
  /** Index into `conversation.messages`. */
  message: number;
  role: Role;
  /** First token of the message's rendering (its role marker). */
  start: number;
  /** First token of the content. */
  contentStart: number;
  /**
   * One past the message's last token. For a closed message the last token is the closing marker, so
   * [contentStart, end) is what a model generating this message produces: content then stop token.
   */
  end: number;
}

export interface RenderedConversation {
  tokens: number[];
  spans: MessageSpan[];
}

export interface ChatTemplate {
  readonly name: string;
  /** Tokens that end an assistant message when generating. */
  readonly stopTokens: readonly number[];
  /** Every message rendered and closed: a training sequence. */
  render(conversation: Conversation): RenderedConversation;
  /** The conversation followed by the header of an assistant message: a generation prompt. */
  renderPrompt(conversation: Conversation): number[];
}

/** A tokenizer with the compact format's markers, each a single special token (the char tokenizer). */
export interface CompactTokenizer extends Tokenizer {
  readonly special: Readonly<SpecialTokenIds> & Readonly<Record<'bos' | Role | 'end', number>>;
}

export class CompactTemplate implements ChatTemplate {
  readonly name = 'compact';
  readonly stopTokens: readonly number[];

  constructor(readonly tokenizer: CompactTokenizer) {
    this.stopTokens = [tokenizer.special.end];
  }

  render(conversation: Conversation): RenderedConversation {
    const { bos, end } = this.tokenizer.special;
    const tokens = [bos];
    const spans: MessageSpan[] = [];
    conversation.messages.forEach((m, i) => {
      if (m.role === 'system' && i !== 0) throw new Error(`chat template: a system message must come first (found at message ${i})`);
      const start = tokens.length;
      tokens.push(this.tokenizer.special[m.role]);
      const contentStart = tokens.length;
      // Content with special-token strings in it (e.g. a sampled "<|user|>") encodes to those specials,
      // which is also how generated text decodes, so the round trip is exact.
      for (const id of this.tokenizer.encode(m.content)) tokens.push(id);
      tokens.push(end);
      spans.push({ message: i, role: m.role, start, contentStart, end: tokens.length });
    });
    return { tokens, spans };
  }

  renderPrompt(conversation: Conversation): number[] {
    return [...this.render(conversation).tokens, this.tokenizer.special.assistant];
  }
}
