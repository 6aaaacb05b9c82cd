/**
 * What to tell a person about a failed workflow, child or activity. Pure: workflow code imports it.
 */

/**
 * The message of the first application error in a failure's cause chain. Activity and child failures
 * wrap it; it is the one a step activity raised (naming the step's kind, key, arm and iteration before
 * the error itself), or the experiment's summary of its failed arms. Falls back to the innermost message.
 */
export function applicationMessage(err: unknown): string {
  let e = err as { name?: string; message?: string; cause?: unknown } | undefined;
  while (e !== undefined && e.name !== 'ApplicationFailure' && e.cause !== undefined) e = e.cause as typeof e;
  return e?.message ?? String(err);
}
