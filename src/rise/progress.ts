/**
 * Hooks every long-running function here accepts, so a caller (a Temporal activity) can heartbeat with
 * progress and, after a retry, resume from where it stopped: results for an item depend only on the
 * seed, the item's id and the model, never on which other items ran in the same call, so skipping the
 * finished items and running the rest gives the same results as one uninterrupted run.
 */

export interface Progress {
  /** Units finished so far (items skipped as already done count as finished). */
  done: number;
  total: number;
  /** What the units are, e.g. "episodes", "samples", "problems". */
  unit: string;
  /** Short human-readable stage, e.g. "turn 2". */
  stage?: string;
}

export type ProgressHook = (p: Progress) => void | Promise<void>;

export interface BatchHooks {
  onProgress?: ProgressHook;
  /** Ids of items (problem ids) already finished and stored by the caller; they are not run again. */
  skip?: ReadonlySet<string>;
}
