/**
 * The shapes every task suite shares, so the RISE code (rollout, relabel, metrics) can score a
 * response without knowing which suite produced the problem.
 */

/** Every suite, as the spec's `task.kind` and `rise score --task` name them. */
export const TASK_KINDS = ['arithmetic', 'gsm8k', 'math', 'mbpp'] as const;
export type TaskKind = (typeof TASK_KINDS)[number];

export interface Problem {
  /** Stable across runs: the store keys rollouts and ledger rows by it. */
  id: string;
  /** What the model is asked (the question; for code, the task text plus its tests). */
  prompt: string;
  /** Oracle answer y*: a number, a LaTeX expression, or (MBPP) the reference program. */
  reference: string;
  /** A worked solution in the suite's own format, used as boost (SFT) data. */
  solution?: string;
  /** Python statements (asserts) a program must pass; code tasks only. */
  tests?: string[];
}

export interface Task {
  kind: TaskKind;
  /**
   * The final answer in `response`, in canonical form (so equal strings mean the same answer and
   * majority votes count them together), or null when the response has no answer to extract.
   */
  extract(response: string): string | null;
  /** 1 correct, 0 wrong, `unparsableReward` when `extract` finds nothing. */
  reward(response: string, problem: Problem): number | Promise<number>;
}

export interface RewardOptions {
  /**
   * Reward for a response with no extractable answer. 0 by default; the reference GSM8K setup uses -1
   * so that RWR pushes the model away from malformed answers harder than from wrong ones.
   */
  unparsableReward?: number;
}
