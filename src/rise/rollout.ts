/**
 * Data collection for one iteration (docs/rise.md, steps 1–2): for every training problem, attempt 1 is one
 * on-policy sample from the learner; while the latest attempt is wrong and turns remain, the relabeler's
 * best candidate at the current state becomes the next attempt, which later turns see. With
 * `stopOnSuccess` (the default) an episode ends at its first correct turn, so no trajectory teaches
 * correct → wrong; without it every episode runs all turns, and what follows a correct attempt is
 * `afterSuccess`: `hold` repeats it as the next attempt (no draw: the turn's one sample is a copy, so the
 * data shows a right answer kept when the retry message comes — the situation evaluation puts the model
 * in, where the message follows every answer), `resample` draws the best of N again as after a wrong one.
 *
 * Turns run in lockstep across problems, so each turn is one batched policy call. A sample's request id
 * is `${problemId}|t${turn}|c${candidate}|r${resample}`, which with the seed fixes its random stream: an
 * episode does not depend on which other problems were collected with it, so callers may shard problems
 * or skip the finished ones after a crash and get the same episodes — and collecting turn 1 alone, then
 * continuing those episodes (`start`), draws exactly what one call over all turns draws.
 */

import type { Problem, Task } from '../tasks/types.ts';
import { episodeContext, stateConversation, type Prompting } from './conversation.ts';
import type { DegenerateLimits } from './degenerate.ts';
import { attempts, chosenSample, isCorrect, type Episode, type Sample } from './episode.ts';
import { freshCacheScope, type Policy, type SamplingParams } from './policy.ts';
import type { ProgressHook } from './progress.ts';
import { chooseBest, type Relabeler } from './relabel.ts';
import { drawSamples, type Slot } from './sampling.ts';

export const AFTER_SUCCESS = ['hold', 'resample'] as const;
export type AfterSuccess = (typeof AFTER_SUCCESS)[number];

/** The knobs of data collection. */
export interface RolloutOptions {
  /** Turns of data collection: one on-policy attempt plus `turns - 1` relabeled ones. */
  turns: number;
  temperature: number;
  topP: number;
  maxTokens: number;
  /** End an episode at its first correct turn, so no trajectory teaches correct → wrong. */
  stopOnSuccess: boolean;
  /** Without stopOnSuccess: the turn after a correct attempt repeats it, or draws again. */
  afterSuccess: AfterSuccess;
  /**
   * Previous attempts shown when sampling (and hence in the training examples, which must match what the
   * policy saw); null = the whole history.
   */
  contextWindow: number | null;
  degenerate: DegenerateLimits;
}

export interface CollectOptions {
  task: Task;
  learner: Policy;
  relabeler: Relabeler;
  rollout: RolloutOptions;
  prompting: Prompting;
  /** Seed of this collection (e.g. from the spec seed and the step key). */
  seed: number;
  /**
   * Episodes already begun, by problem id, to continue from their next turn (a relabel step continuing the
   * attempts of a rollout step). Their earlier turns are kept as they are and count in the statistics.
   */
  start?: ReadonlyMap<string, Episode>;
}

export interface CollectStats {
  /** Problems collected in this call. */
  episodes: number;
  /** Draws made, resamples included. */
  samples: number;
  /** Draws that were degenerate and redrawn. */
  resamples: number;
  /** Attempts still degenerate after every resample. */
  degenerateAttempts: number;
  /** Draws cut by maxTokens or by the context. */
  truncated: number;
  /** Episodes whose first correct attempt is at turn t (index t - 1). */
  solvedAtTurn: number[];
  /** Fraction of episodes correct at turn 1, and at their last turn. */
  turn1Accuracy: number;
  finalAccuracy: number;
}

export async function collectEpisodes(todo: Problem[], o: CollectOptions, onProgress?: ProgressHook): Promise<{ episodes: Episode[]; stats: CollectStats }> {
  const { rollout } = o;
  const total = todo.length;
  let done = 0;
  const sampling: SamplingParams = { temperature: rollout.temperature, topP: rollout.topP, maxTokens: rollout.maxTokens, seed: o.seed };
  const cacheScope = freshCacheScope();
  const episodes: Episode[] = todo.map((p) => {
    const started = o.start?.get(p.id);
    return started ? { ...started, turns: [...started.turns] } : { problemId: p.id, prompt: p.prompt, turns: [] };
  });
  const stats: CollectStats = {
    episodes: todo.length,
    samples: 0,
    resamples: 0,
    degenerateAttempts: 0,
    truncated: 0,
    solvedAtTurn: Array(rollout.turns).fill(0),
    turn1Accuracy: 0,
    finalAccuracy: 0,
  };
  const lastCorrect = (e: Episode) => e.turns.length > 0 && isCorrect(chosenSample(e.turns.at(-1)!).reward);
  const finished = (e: Episode) => e.turns.length >= rollout.turns || (rollout.stopOnSuccess && lastCorrect(e));
  for (const e of episodes) {
    const first = e.turns.findIndex((t) => isCorrect(chosenSample(t).reward));
    if (first >= 0 && first < rollout.turns) stats.solvedAtTurn[first]++;
  }
  await onProgress?.({ done, total, unit: 'episodes' });

  // Episodes continued from `start` that need no more turns are complete on arrival.
  let active: number[] = [];
  for (const [i, e] of episodes.entries()) {
    if (!finished(e)) {
      active.push(i);
      continue;
    }
    done++;
  }
  for (let turn = 1; turn <= rollout.turns && active.length > 0; turn++) {
    const due = active.filter((i) => episodes[i].turns.length + 1 === turn);
    if (due.length === 0) continue;
    const holds = (i: number) => !rollout.stopOnSuccess && rollout.afterSuccess === 'hold' && lastCorrect(episodes[i]);
    const now = due.filter((i) => !holds(i));
    const held = due.filter(holds);
    for (const i of held) {
      const kept = chosenSample(episodes[i].turns.at(-1)!);
      episodes[i].turns.push({ turn, kind: 'hold', samples: [{ ...kept, requestId: `${todo[i].id}|t${turn}|hold`, candidate: 0, resample: 0 }], chosen: 0 });
      if (finished(episodes[i])) done++;
    }
    const onPolicy = turn === 1;
    const policy = onPolicy ? o.learner : o.relabeler.policy;
    const candidates = onPolicy ? 1 : o.relabeler.samples;
    const slots: Slot[] = [];
    for (const i of now) {
      const problem = todo[i];
      const conversation = stateConversation(episodeContext(o.prompting, problem), attempts(episodes[i]), rollout.contextWindow);
      // With one candidate, a wrong attempt is the next turn's: the only case known before the draw.
      const continued = candidates === 1 && turn < rollout.turns;
      for (let c = 0; c < candidates; c++) slots.push({ key: `${problem.id}|t${turn}|c${c}`, problem, conversation, candidate: c, continued });
    }
    const draws = await drawSamples(policy, slots, {
      task: o.task,
      sampling,
      cacheScope,
      degenerate: rollout.degenerate,
      onSamples: onProgress && ((n, of) => onProgress({ done, total, unit: 'episodes', stage: `turn ${turn}: ${n}/${of} samples` })),
    });

    const stillActive = active.filter((i) => !now.includes(i) && !(held.includes(i) && finished(episodes[i])));
    for (const [a, i] of now.entries()) {
      const samples: Sample[] = draws.slice(a * candidates, (a + 1) * candidates).flat();
      const t = { turn, kind: onPolicy ? ('onPolicy' as const) : ('relabel' as const), samples, chosen: chooseBest(samples) };
      const solvedBefore = episodes[i].turns.some((u) => isCorrect(chosenSample(u).reward));
      episodes[i].turns.push(t);
      stats.samples += samples.length;
      stats.resamples += samples.filter((s) => s.resample > 0).length;
      stats.truncated += samples.filter((s) => s.finishReason !== 'stop').length;
      const chosen = chosenSample(t);
      if (chosen.degenerate !== null) stats.degenerateAttempts++;
      if (isCorrect(chosen.reward) && !solvedBefore) stats.solvedAtTurn[turn - 1]++;
      if (finished(episodes[i])) {
        done++;
      } else {
        stillActive.push(i);
      }
    }
    active = stillActive;
    await onProgress?.({ done, total, unit: 'episodes', stage: `turn ${turn}` });
  }
  const n = Math.max(1, episodes.length);
  stats.turn1Accuracy = episodes.filter((e) => e.turns.length > 0 && isCorrect(chosenSample(e.turns[0]).reward)).length / n;
  stats.finalAccuracy = episodes.filter(lastCorrect).length / n;
  return { episodes, stats };
}
