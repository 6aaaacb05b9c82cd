/**
 * The record of data collection: every sample drawn, with its reward, grouped by turn, and which one
 * became the turn's attempt. Kept whole (not just the chosen attempts) so a ledger can store every
 * sample and so the filter and statistics can explain what happened to each.
 */

import type { FinishReason } from './policy.ts';

export interface Sample {
  /** The policy request id (it names the sample's random stream). */
  requestId: string;
  /** Name of the policy that produced it (learner or expert). */
  source: string;
  /** Candidate slot within the turn (0 for the on-policy attempt). */
  candidate: number;
  /** 0 for the first draw of the slot; n for its n-th resample after degenerate draws. */
  resample: number;
  text: string;
  /** The task's extracted final answer, null if unparsable. */
  answer: string | null;
  reward: number;
  /** Generated tokens, stop token included. */
  tokens: number;
  /** Sum of the generated tokens' log-probabilities under the sampling model. */
  logprob: number;
  finishReason: FinishReason;
  /** Why the sample is degenerate, or null when it is not. */
  degenerate: string | null;
}

export interface Turn {
  /** 1-based. */
  turn: number;
  /**
   * `onPolicy`: one learner sample; `relabel`: the best of several candidates; `hold`: the previous,
   * correct attempt kept (a copy, not a draw; rollout.ts). Evaluations store their turn 1 as `parallel`
   * (independent samples) and later turns as `sequential`.
   */
  kind: 'onPolicy' | 'relabel' | 'hold' | 'parallel' | 'sequential';
  /** Every draw of the turn, resampled degenerate ones included. */
  samples: Sample[];
  /** Index into `samples` of the attempt that the following turns see. */
  chosen: number;
}

export interface Episode {
  problemId: string;
  /** The problem's prompt, so examples can be rendered from the episode alone. */
  prompt: string;
  turns: Turn[];
}

/** Reward 1 is success for every task (numeric, MATH, code); anything below is a failure. */
export function isCorrect(reward: number): boolean {
  return reward >= 1;
}

export function chosenSample(turn: Turn): Sample {
  const s = turn.samples[turn.chosen];
  if (!s) throw new Error(`turn ${turn.turn}: chosen sample ${turn.chosen} does not exist`);
  return s;
}

/** The attempts of an episode, in turn order. */
export function attempts(episode: Episode): string[] {
  return episode.turns.map((t) => chosenSample(t).text);
}

export function rewards(episode: Episode): number[] {
  return episode.turns.map((t) => chosenSample(t).reward);
}

/** Whether the last attempt of the episode is correct. */
export function endsCorrect(episode: Episode): boolean {
  const last = episode.turns.at(-1);
  return last !== undefined && isCorrect(chosenSample(last).reward);
}

/** Fractions of `episodes` correct at turn 1 and at their last turn. */
export function episodeAccuracy(episodes: readonly Episode[]): { episodes: number; turn1Accuracy: number; finalAccuracy: number } {
  const correct = (t: Turn | undefined) => t !== undefined && isCorrect(chosenSample(t).reward);
  const n = Math.max(1, episodes.length);
  return {
    episodes: episodes.length,
    turn1Accuracy: episodes.filter((e) => correct(e.turns[0])).length / n,
    finalAccuracy: episodes.filter((e) => correct(e.turns.at(-1))).length / n,
  };
}

/** What an example needs of an episode: its prompt and, per turn, the samples and which one was chosen. */
export interface EpisodeTurns<S> {
  prompt: string;
  turns: readonly { turn: number; chosen: number; samples: readonly S[] }[];
}

export interface TurnAttempt<S> {
  /** The chosen attempts of the turns before this one, in order (as `turnExamples` reads them). */
  previous: string[];
  /** Index into the turn's samples of its attempt. */
  chosen: number;
  /** The turn's attempt: the example's target. */
  sample: S;
}

/** Turn `turn` (1-based) of an episode as an example sees it; undefined when the episode has no such turn. */
export function turnAttempt<S extends { text: string }>(episode: EpisodeTurns<S>, turn: number): TurnAttempt<S> | undefined {
  const at = episode.turns.findIndex((t) => t.turn === turn);
  if (at < 0) return undefined;
  const chosenOf = (t: EpisodeTurns<S>['turns'][number]) => {
    const s = t.samples[t.chosen];
    if (s === undefined) throw new Error(`turn ${t.turn}: chosen sample ${t.chosen} does not exist`);
    return s;
  };
  const { chosen } = episode.turns[at];
  return { previous: episode.turns.slice(0, at).map((t) => chosenOf(t).text), chosen, sample: chosenOf(episode.turns[at]) };
}
