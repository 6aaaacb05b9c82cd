/**
 * "Did you mean" for misspelt keys and enum values. Case and separators are ignored first, so
 * snake_case and kebab-case spellings of a camelCase key ("batch_size", "multi-turn") find it exactly.
 */

import { distance as levenshtein } from 'fastest-levenshtein';

const fold = (s: string) => s.toLowerCase().replace(/[-_\s]/g, '');

/**
 * The candidate closest to `word`, or null when none is close enough to be a plausible typo: at most
 * a third of the candidate's length in edits (at least 1), so "lr" does not suggest "tau", or a
 * truncation of it ("gsm" → "gsm8k"). One-character candidates ("+", "*") are never suggested.
 */
export function nearest(word: string, candidates: Iterable<string>): string | null {
  const folded = fold(word);
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    if (candidate === word || candidate.length < 2) continue;
    const target = fold(candidate);
    const d = folded.length >= 3 && target.startsWith(folded) ? 1 : levenshtein(folded, target);
    if (d <= Math.max(1, Math.floor(candidate.length / 3)) && d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}
