/**
 * Data collection for one iteration (RISE.md steps 1–2): for every training problem, attempt 1 is one
 * on-policy sample from the learner; while the latest attempt is wrong and turns remain, the relabeler's
 * best candidate at the current state becomes the next attempt, which later turns see. With
 * `stopOnSuccess` (the default) an episode ends at its first correct turn, so no trajectory teaches
 * correct → wrong; without it every episode runs all turns.
 *
 * Turns run in lockstep across problems, so each turn is one batched policy call. A sample's request id
 * is `${problemId}|t${turn}|c${candidate}|r${resample}`, which with the seed fixes its random stream: an
 * episode does not depend on which other problems were collected with it, so callers may shard problems
 * or skip the finished ones after a crash and get the same episodes — and collecting turn 1 alone, then
 * continuing those episodes (`start`), draws exactly what one call over all turns draws.
 */

import type { Problem, Task } from '../tasks/types.ts';
import type { RiseConfig } from './config.ts';
import { episodeContext, stateConversation } from './conversation.ts';
import { attempts, chosenSample, isCorrect, type Episode, type Sample } from './episode.ts';
import type { Policy, SamplingParams } from './policy.ts';
import type { BatchHooks } from './progress.ts';
import { chooseBest, type Relabeler } from './relabel.ts';
import { drawSamples, type Slot } from './sampling.ts';

export interface CollectOptions {
  task: Task;
  learner: Policy;
  relabeler: Relabeler;
  config: Pick<RiseConfig, 'rollout' | 'feedback' | 'instruction'>;
  /** Seed of this collection (e.g. from the spec seed and the step key). */
  seed: number;
  /**
   * Episodes already begun, by problem id, to continue from their next turn (a relabel step continuing the
   * attempts of a rollout step). Their earlier turns are kept as they are and count in the statistics.
   */
  start?: ReadonlyMap<string, Episode>;
}

export interface CollectHooks extends BatchHooks {
  /** Called once per episode as soon as it is complete, in a deterministic order (e.g. to write the ledger). */
  onEpisode?: (episode: Episode) => void | Promise<void>;
}

export interface CollectStats {
  /** Problems collected in this call (skipped ones excluded). */
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

export async function collectEpisodes(problems: Problem[], o: CollectOptions, hooks: CollectHooks = {}): Promise<{ episodes: Episode[]; stats: CollectStats }> {
  const { rollout } = o.config;
  const skip = hooks.skip ?? new Set<string>();
  const todo = problems.filter((p) => !skip.has(p.id));
  const total = problems.length;
  let done = total - todo.length;
  const sampling: SamplingParams = { temperature: rollout.temperature, topP: rollout.topP, maxTokens: rollout.maxTokens, seed: o.seed };
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
  await hooks.onProgress?.({ done, total, unit: 'episodes' });

  // Episodes continued from `start` that need no more turns are complete on arrival.
  let active: number[] = [];
  for (const [i, e] of episodes.entries()) {
    if (!finished(e)) {
      active.push(i);
      continue;
    }
    done++;
    await hooks.onEpisode?.(e);
  }
  for (let turn = 1; turn <= rollout.turns && active.length > 0; turn++) {
    const now = active.filter((i) => episodes[i].turns.length + 1 === turn);
    if (now.length === 0) continue;
    const onPolicy = turn === 1;
    const policy = onPolicy ? o.learner : o.relabeler.policy;
    const candidates = onPolicy ? 1 : o.relabeler.samples;
    const slots: Slot[] = [];
    for (const i of now) {
      const problem = todo[i];
      const conversation = stateConversation(episodeContext(o.config, problem), attempts(episodes[i]), rollout.contextWindow);
      for (let c = 0; c < candidates; c++) slots.push({ key: `${problem.id}|t${turn}|c${c}`, problem, conversation, candidate: c });
    }
    const draws = await drawSamples(policy, slots, {
      task: o.task,
      sampling,
      degenerate: rollout.degenerate,
      onSamples: hooks.onProgress && ((n, of) => hooks.onProgress!({ done, total, unit: 'episodes', stage: `turn ${turn}: ${n}/${of} samples` })),
    });

    const stillActive = active.filter((i) => !now.includes(i));
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
        await hooks.onEpisode?.(episodes[i]);
      } else {
        stillActive.push(i);
      }
    }
    active = stillActive;
    await hooks.onProgress?.({ done, total, unit: 'episodes', stage: `turn ${turn}` });
  }
  const n = Math.max(1, episodes.length);
  stats.turn1Accuracy = episodes.filter((e) => e.turns.length > 0 && isCorrect(chosenSample(e.turns[0]).reward)).length / n;
  stats.finalAccuracy = episodes.filter(lastCorrect).length / n;
  return { episodes, stats };
}
