/**
 * Early stopping of an arm: the rule a spec's `iterations.stopWhen` declares, resolved to one metric on
 * one evaluation set, and the decision it gives over the values an arm has so far. Pure and free of
 * imports, because the arm workflow decides with it (deterministically, from its children's results)
 * and `rise status` decides the same from the store's metrics.
 */

export interface StopRule {
  /** A metric name as evaluation reports it (m1@t5, p1@t5, m5@t1). */
  metric: string;
  evalSet: string;
  /** Percentage points an iteration must beat the best value so far by. */
  minGain: number;
  /** Iterations in a row without such a gain after which the arm stops. */
  patience: number;
}

export interface StopDecision {
  /** The last iteration the arm ran. */
  iteration: number;
  reason: string;
}

const points = (value: number) => `${(value * 100).toFixed(1)} %`;

/**
 * Where the arm stops, or null while it goes on. `values[i]` is the metric after iteration i (0 = the
 * boosted model, which counts as the first best); a missing value decides nothing, so a stop is never
 * made on figures the arm has not got.
 */
export function stopDecision(values: readonly (number | undefined)[], rule: StopRule): StopDecision | null {
  const first = values[0];
  if (first === undefined) return null;
  let best = first;
  let bestAt = 0;
  let stalled = 0;
  for (let i = 1; i < values.length; i++) {
    const value = values[i];
    if (value === undefined) return null;
    // In points, with a margin for the rounding of fractions like 0.41 - 0.40.
    if ((value - best) * 100 >= rule.minGain - 1e-9) {
      best = value;
      bestAt = i;
      stalled = 0;
      continue;
    }
    stalled++;
    if (stalled >= rule.patience) {
      const span = stalled === 1 ? 'iteration' : `${stalled} iterations in a row`;
      return {
        iteration: i,
        reason: `${rule.metric} on ${rule.evalSet} gained less than ${rule.minGain} point${rule.minGain === 1 ? '' : 's'} over its best (${points(best)} at iteration ${bestAt}) for ${span}: ${points(value)} at iteration ${i}`,
      };
    }
  }
  return null;
}
