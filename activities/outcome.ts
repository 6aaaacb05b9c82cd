import type { StepResult } from './step.ts';
import type { MetricValues, StepInput, StepOutcome } from './types.ts';

/** The small summary a step activity returns to its workflow. */
export function outcome(input: StepInput, result: StepResult<Record<string, unknown>>, metrics?: MetricValues): StepOutcome {
  return { key: input.step.key, kind: input.step.kind, cached: result.cached, seconds: result.outputs.seconds, ...(metrics ? { metrics } : {}) };
}
