/**
 * The text of a response as it is generated, for streaming: what can be sent after each token without
 * ever taking it back. Decoding a token alone can split a character (byte-level tokenizers emit a
 * multi-byte character over several tokens, shown as U+FFFD until it is complete), and a stop string may
 * be forming at the end of the text, which the finished response leaves out; so the tail that could
 * still change is held until the next token or the end.
 */

import type { Tokenizer } from '../engine/tokenizer.ts';

export class TextStream {
  private readonly tokens: number[] = [];
  private sent = '';
  /** Characters at the end that may be the start of a stop string. */
  private readonly holdBack: number;

  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly stopTokens: readonly number[],
    stopStrings: readonly string[],
  ) {
    this.holdBack = Math.max(0, ...stopStrings.map((s) => s.length - 1));
  }

  /** The text that `token` makes safe to send ('' when none). */
  push(token: number): string {
    this.tokens.push(token);
    // A stop token ends the response; the finished text, which leaves it out, comes next.
    if (this.stopTokens.includes(token)) return '';
    const text = this.tokenizer.decode(this.tokens);
    let end = text.length - this.holdBack;
    while (end > 0 && text[end - 1] === '\uFFFD') end--;
    // Never split a surrogate pair.
    if (end > 0 && /[\uD800-\uDBFF]/.test(text[end - 1])) end--;
    if (end <= this.sent.length || !text.startsWith(this.sent)) return '';
    const delta = text.slice(this.sent.length, end);
    this.sent += delta;
    return delta;
  }

  /** The rest of the finished response's text, after what was sent. */
  rest(final: string): string {
    if (!final.startsWith(this.sent)) {
      throw new Error(`streamed text ${JSON.stringify(this.sent)} is not a prefix of the response ${JSON.stringify(final)}`);
    }
    const delta = final.slice(this.sent.length);
    this.sent = final;
    return delta;
  }
}
