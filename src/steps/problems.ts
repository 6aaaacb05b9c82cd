/**
 * How a step names the problems it reads and how it rewards answers. A problem set enters a step's
 * params as what determines its content — the generator's knobs, or a data file's digest — so two
 * steps over the same problems share a key wherever the file lives.
 */

import type { Operator } from '../spec/types.ts';
import type { TaskKind } from '../tasks/index.ts';

export type ProblemSetParams =
  | {
      kind: 'arithmetic';
      role: 'train' | 'eval';
      /** Present only when the set's generation seed is derived from its name (no explicit seed). */
      name?: string;
      count: number;
      ops: number[];
      min: number;
      max: number;
      operators: Operator[];
      seed: number | null;
    }
  | { kind: Exclude<TaskKind, 'arithmetic'>; sha256: string; count: number | null };

export interface RewardParams {
  kind: TaskKind;
  /** Reward of a response with no extractable answer. */
  unparsableReward: number;
}

/** What a prompt looks like around the question: the optional system instruction and the retry message. */
export interface PromptParams {
  instruction: string | null;
  feedback: string;
}
