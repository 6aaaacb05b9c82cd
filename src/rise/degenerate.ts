/**
 * Degenerate samples (by default a word repeated more than 150 times, or a token longer than 300
 * characters, as the method's authors filter) are runaway generations; training on them teaches the model
 * to babble, so collection resamples them.
 */

export interface DegenerateLimits {
  /** A whitespace-separated word occurring more than this many times makes a sample degenerate. */
  maxWordRepeats: number;
  /** A whitespace-separated token longer than this many characters makes a sample degenerate. */
  maxTokenChars: number;
  /**
   * Resampling rounds before giving up; a sample still degenerate after them is kept, marked, and its
   * example dropped by the filter (rule `degenerate`), so collection never loops forever.
   */
  maxResamples: number;
}

/** Why `text` is degenerate under the thresholds, or null if it is not. */
export function degenerateReason(text: string, limits: Pick<DegenerateLimits, 'maxWordRepeats' | 'maxTokenChars'>): string | null {
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
