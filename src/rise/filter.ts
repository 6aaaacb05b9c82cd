/**
 * Filtering (docs/rise.md, step 3): each trajectory becomes per-turn examples — the example for turn i is the
 * state before attempt i plus attempt i, and only attempt i carries loss — and rules drop some of them.
 * Every dropped example is returned with the rule that dropped it, so a report can say why the training
 * set is the size it is.
 *
 * Rules, in the order they are checked (the first that applies is recorded):
 *   unsuccessfulTrajectory  onlySuccessTrajectories and the episode's last attempt is wrong
 *   empty                   removeEmpty and the attempt is blank
 *   degenerate              the attempt stayed degenerate after every resample
 *   repeatedAttempt         removeDuplicates and the attempt repeats an earlier, wrong attempt of its
 *                           episode (imitating it would teach the model to repeat a mistake after a retry
 *                           message; repeating a right one is what a held turn teaches, rollout.ts)
 *   criteria                `better`: r_i > r_{i-1}; `best`: r_i ≥ every earlier r; `success`: r_i = 1.
 *                           Turn 1 has no earlier reward, so `better` and `best` keep it (vacuously);
 *                           `all` keeps everything
 *   duplicateExample        removeDuplicates and an identical example (same question, history and
 *                           attempt) was already kept, e.g. from an earlier iteration's aggregated data
 */

import { chosenSample, endsCorrect, isCorrect, type Episode } from './episode.ts';

export const FILTER_CRITERIA = ['all', 'better', 'best', 'success'] as const;
export type FilterCriteria = (typeof FILTER_CRITERIA)[number];

export interface FilterOptions {
  criteria: FilterCriteria;
  onlySuccessTrajectories: boolean;
  /** Drop an example identical to one already kept, and an attempt that repeats an earlier one in its episode. */
  removeDuplicates: boolean;
  /** Drop attempts that are empty after trimming whitespace. */
  removeEmpty: boolean;
}

export type DropRule = 'unsuccessfulTrajectory' | 'empty' | 'degenerate' | 'repeatedAttempt' | 'criteria' | 'duplicateExample';

export const DROP_RULES: readonly DropRule[] = ['unsuccessfulTrajectory', 'empty', 'degenerate', 'repeatedAttempt', 'criteria', 'duplicateExample'];

/** One turn of one episode as a candidate training example. */
export interface TurnExample {
  problemId: string;
  prompt: string;
  /** 1-based. */
  turn: number;
  /** Attempts before this turn, in order (the rendered example may window them). */
  previous: string[];
  previousRewards: number[];
  attempt: string;
  reward: number;
  /** Whether the attempt was still degenerate when chosen. */
  degenerate: boolean;
  /** Caller's tag for where the episode came from (e.g. the iteration), kept for the ledger. */
  origin?: string;
}

export interface DroppedExample {
  example: TurnExample;
  rule: DropRule;
}

export interface FilterResult {
  kept: TurnExample[];
  dropped: DroppedExample[];
  /** Dropped examples per rule (every rule present, zeros included). */
  counts: Record<DropRule, number>;
}

export function turnExamples(episode: Episode, origin?: string): TurnExample[] {
  const texts: string[] = [];
  const rs: number[] = [];
  return episode.turns.map((t) => {
    const s = chosenSample(t);
    const example: TurnExample = {
      problemId: episode.problemId,
      prompt: episode.prompt,
      turn: t.turn,
      previous: texts.slice(),
      previousRewards: rs.slice(),
      attempt: s.text,
      reward: s.reward,
      degenerate: s.degenerate !== null,
      ...(origin === undefined ? {} : { origin }),
    };
    texts.push(s.text);
    rs.push(s.reward);
    return example;
  });
}

function passesCriteria(e: TurnExample, criteria: FilterCriteria): boolean {
  switch (criteria) {
    case 'all':
      return true;
    case 'better':
      return e.previousRewards.length === 0 || e.reward > e.previousRewards[e.previousRewards.length - 1];
    case 'best':
      return e.previousRewards.every((r) => e.reward >= r);
    case 'success':
      return isCorrect(e.reward);
  }
}

/** Episodes may carry an origin tag each (e.g. `iter-1`), copied onto their examples. */
export function filterEpisodes(episodes: readonly (Episode | { episode: Episode; origin: string })[], config: FilterOptions): FilterResult {
  const kept: TurnExample[] = [];
  const dropped: DroppedExample[] = [];
  const counts = Object.fromEntries(DROP_RULES.map((r) => [r, 0])) as Record<DropRule, number>;
  const seen = new Set<string>();
  for (const item of episodes) {
    const { episode, origin } = 'episode' in item ? item : { episode: item, origin: undefined };
    const success = endsCorrect(episode);
    for (const e of turnExamples(episode, origin)) {
      const key = JSON.stringify([e.prompt, e.previous, e.attempt]);
      let rule: DropRule | null = null;
      if (config.onlySuccessTrajectories && !success) rule = 'unsuccessfulTrajectory';
      else if (config.removeEmpty && e.attempt.trim() === '') rule = 'empty';
      else if (e.degenerate) rule = 'degenerate';
      else if (config.removeDuplicates && !isCorrect(e.reward) && e.previous.includes(e.attempt)) rule = 'repeatedAttempt';
      else if (!passesCriteria(e, config.criteria)) rule = 'criteria';
      else if (config.removeDuplicates && seen.has(key)) rule = 'duplicateExample';
      if (rule === null) {
        kept.push(e);
        seen.add(key);
      } else {
        dropped.push({ example: e, rule });
        counts[rule]++;
      }
    }
  }
  return { kept, dropped, counts };
}
