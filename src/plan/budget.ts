/**
 * A run's budget (the spec's `budget`): what the run has spent so far, and whether that reaches a limit.
 * Pure and free of imports: the iteration workflow checks it between steps, from usage an activity
 * read from the store.
 */

/** Limits; null is none. */
export interface Budget {
  hours: number | null;
  tokens: number | null;
}

/** What a run has spent on the steps it computed itself (steps it found done cost nothing). */
export interface Usage {
  /** Compute seconds of those steps, summed over arms. */
  seconds: number;
  /** Tokens sampled and tokens trained on. */
  tokens: number;
}

/** Whether a budget limits anything. */
export function hasLimit(budget: Budget | null | undefined): budget is Budget {
  return budget !== null && budget !== undefined && (budget.hours !== null || budget.tokens !== null);
}

/** Why `usage` has reached `budget`, or null while it has not. */
export function budgetReached(usage: Usage, budget: Budget): string | null {
  const reached: string[] = [];
  if (budget.tokens !== null && usage.tokens >= budget.tokens) reached.push(`${usage.tokens} tokens of ${budget.tokens}`);
  const hours = usage.seconds / 3600;
  if (budget.hours !== null && hours >= budget.hours) reached.push(`${hours.toFixed(3)} compute hours of ${budget.hours}`);
  return reached.length === 0 ? null : `budget reached: ${reached.join(', ')}`;
}

/** One line for people: what is spent against what is allowed. */
export function usageText(usage: Usage, budget: Budget): string {
  const tokens = `${usage.tokens} tokens${budget.tokens !== null ? ` of ${budget.tokens}` : ''}`;
  const hours = `${(usage.seconds / 3600).toFixed(3)} compute hours${budget.hours !== null ? ` of ${budget.hours}` : ''}`;
  return `${tokens}, ${hours}`;
}
