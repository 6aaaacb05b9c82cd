/**
 * Drawing scored samples: one policy call for many (state, candidate) slots, each response scored by the
 * task, and degenerate ones redrawn. Rollout, relabeling and evaluation all sample through here so a
 * sample is always recorded the same way.
 */

import type { Problem, Task } from '../tasks/types.ts';
import type { Conversation } from './conversation.ts';
import { degenerateReason, type DegenerateLimits } from './degenerate.ts';
import type { Sample } from './episode.ts';
import type { Policy, PolicyResponse, SamplingParams } from './policy.ts';

export interface Slot {
  /**
   * Names the slot's random streams (with the sampling seed): the n-th draw's request id is `${key}|r${n}`.
   * Must be unique within a call and stable across runs, e.g. `${problemId}|t2|c5`.
   */
  key: string;
  problem: Problem;
  conversation: Conversation;
  candidate: number;
  /** A later turn continues this slot's conversation with its response (`PolicyRequest.continued`). */
  continued?: boolean;
}

export interface DrawOptions {
  task: Task;
  sampling: SamplingParams;
  /** Resample degenerate draws under these limits; null = keep every draw as it is (evaluation). */
  degenerate: DegenerateLimits | null;
  /** The prefix-cache scope of every request (`PolicyRequest.cacheScope`). */
  cacheScope?: string;
  /** Draws finished so far in this call, and the draws known to be needed (grows with resamples). */
  onSamples?: (done: number, total: number) => void | Promise<void>;
}

export async function scoreResponse(task: Task, problem: Problem, text: string): Promise<{ answer: string | null; reward: number }> {
  return { answer: task.extract(text), reward: await task.reward(text, problem) };
}

function toSample(policy: Policy, slot: Slot, resample: number, r: PolicyResponse, scored: { answer: string | null; reward: number }, degenerate: string | null): Sample {
  return {
    requestId: r.id,
    source: policy.name,
    candidate: slot.candidate,
    resample,
    text: r.text,
    answer: scored.answer,
    reward: scored.reward,
    tokens: r.tokens,
    logprob: r.logprob,
    finishReason: r.finishReason,
    degenerate,
  };
}

/**
 * Every draw of every slot, in draw order: one draw per slot, then another for each slot whose latest
 * draw is degenerate, for up to `maxResamples` rounds. A slot's last draw is its candidate.
 */
export async function drawSamples(policy: Policy, slots: Slot[], o: DrawOptions): Promise<Sample[][]> {
  const keys = new Set<string>();
  for (const s of slots) {
    if (keys.has(s.key)) throw new Error(`drawSamples: duplicate slot key "${s.key}"`);
    keys.add(s.key);
  }
  const draws: Sample[][] = slots.map(() => []);
  let pending = slots.map((_, i) => i);
  let finished = 0;
  let needed = slots.length;
  for (let round = 0; pending.length > 0; round++) {
    const base = finished;
    const responses = await policy.respond(
      pending.map((i) => ({ id: `${slots[i].key}|r${round}`, conversation: slots[i].conversation, continued: slots[i].continued, cacheScope: o.cacheScope })),
      o.sampling,
      { onProgress: o.onSamples && ((p) => o.onSamples!(base + p.done, needed)) },
    );
    const again: number[] = [];
    for (const [j, i] of pending.entries()) {
      const slot = slots[i];
      const r = responses[j];
      const scored = await scoreResponse(o.task, slot.problem, r.text);
      const why = o.degenerate ? degenerateReason(r.text, o.degenerate) : null;
      draws[i].push(toSample(policy, slot, round, r, scored, why));
      if (why !== null && o.degenerate && round < o.degenerate.maxResamples) again.push(i);
    }
    finished += pending.length;
    needed += again.length;
    pending = again;
  }
  await o.onSamples?.(finished, needed);
  return draws;
}
