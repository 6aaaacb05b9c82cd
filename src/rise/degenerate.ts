/**
 * Degenerate samples (RISE.md: a word repeated more than 150 times, or a token longer than 300 characters)
 * are runaway generations; training on them teaches the model to babble, so collection resamples them.
 */

import type { DegenerateConfig } from './config.ts';

/** Why `text` is degenerate under the thresholds, or null if it is not. */
export function degenerateReason(text: string, limits: Pick<DegenerateConfig, 'maxWordRepeats' | 'maxTokenChars'>): string | null {
  const counts = new Map<string, number>();
  for (const word of text.split(/\s+/)) {
    if (word === '') continue;
    if (word.length > limits.maxTokenChars) return `a token of ${word.length} characters (limit ${limits.maxTokenChars})`;
    const n = (counts.get(word) ?? 0) + 1;
    counts.set(word, n);
    if (n > limits.maxWordRepeats) return `the word ${JSON.stringify(word.slice(0, 40))} repeated more than ${limits.maxWordRepeats} times`;
  }
  return null;
}
