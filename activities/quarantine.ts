/**
 * Quarantine: one problem whose generation or scoring keeps failing (a checker that throws on it, a
 * tokenizer that cannot encode it, a sandbox error) must not fail a long step. A batch that throws is
 * split in halves until the failing problems are alone; each gets a bounded number of tries on its own
 * (seeds derive from the step and the request, so a try draws what the batch would have drawn), and one
 * that fails every try is given up: recorded with its error and left out of the step's episodes.
 *
 * A broken step is not a few bad problems: once more than `maxFraction` of the step's problems are
 * quarantined the step fails, naming the errors. Errors that are about the step rather than a problem (a
 * remote policy that refuses or is down, a spent budget, a lost lease, cancellation) are rethrown at once.
 */

import type { Problem } from '../src/tasks/index.ts';
import type { QuarantineRecord } from '../src/store/index.ts';

export interface QuarantinePolicy {
  /** Tries a problem gets on its own once its batch failed. */
  attempts: number;
  /** The fraction of a step's problems that may be quarantined; one more fails the step. */
  maxFraction: number;
}

export const DEFAULT_QUARANTINE: QuarantinePolicy = { attempts: 3, maxFraction: 0.1 };

/** Error classes that say the step cannot go on, whatever the problem: never quarantined. */
const STEP_ERRORS = new Set(['LostStepError', 'RemotePolicyError', 'RemoteUnavailableError', 'CallBudgetError', 'ModelFileError', 'CancelledFailure', 'AbortError']);

/** More of the step's problems failed than may be quarantined: the step is broken. */
export class QuarantineLimitError extends Error {
  override name = 'QuarantineLimitError';
}

function errorClass(err: unknown): string {
  return err instanceof Error ? (err.name !== 'Error' ? err.name : err.constructor.name) : typeof err;
}

function messageOf(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0].slice(0, 500);
}

/** How many of `total` problems may be quarantined. */
export function quarantineAllowance(policy: QuarantinePolicy, total: number): number {
  return Math.floor(policy.maxFraction * total);
}

/**
 * What `work` returns over `batch`, less the problems it fails on. `quarantine` is called for each of those
 * as it is given up (to record it) and throws `QuarantineLimitError` once the step has quarantined more
 * than it may; `alive` throws when the step must stop (cancelled, lost), so a failure then is not blamed
 * on a problem.
 */
export async function settleBatch<T>(
  batch: Problem[],
  work: (problems: Problem[]) => Promise<readonly T[]>,
  policy: QuarantinePolicy,
  hooks: { alive: () => void; quarantine: (record: QuarantineRecord) => Promise<void> },
): Promise<T[]> {
  const results: T[] = [];
  const alone = async (problem: Problem): Promise<void> => {
    let last: unknown;
    for (let attempt = 1; attempt <= policy.attempts; attempt++) {
      try {
        results.push(...(await work([problem])));
        return;
      } catch (err) {
        hooks.alive();
        if (STEP_ERRORS.has(errorClass(err))) throw err;
        last = err;
      }
    }
    await hooks.quarantine({ problemId: problem.id, attempts: policy.attempts, errorClass: errorClass(last), message: messageOf(last) });
  };
  const settle = async (problems: Problem[]): Promise<void> => {
    if (problems.length === 1) return alone(problems[0]);
    try {
      results.push(...(await work(problems)));
    } catch (err) {
      hooks.alive();
      if (STEP_ERRORS.has(errorClass(err))) throw err;
      const half = Math.ceil(problems.length / 2);
      await settle(problems.slice(0, half));
      await settle(problems.slice(half));
    }
  };
  await settle(batch);
  return results;
}

/** The error a step fails with when it has quarantined too many problems: how many, and the first few errors. */
export function quarantineLimitError(records: readonly QuarantineRecord[], total: number, policy: QuarantinePolicy): QuarantineLimitError {
  const shown = records.slice(0, 3).map((r) => `${r.problemId}: ${r.errorClass}: ${r.message}`);
  return new QuarantineLimitError(
    `${records.length} of ${total} problems failed every try, more than the ${quarantineAllowance(policy, total)} (${policy.maxFraction * 100}%) a step may quarantine: the step is broken, not a few problems. ${shown.join('; ')}${records.length > shown.length ? ' …' : ''}`,
  );
}
