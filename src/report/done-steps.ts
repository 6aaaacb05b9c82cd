/** A run's finished steps, as exports, lineage and `rise why` walk them: each step once, with its place in the plan. */

import { stepArms, type Plan } from '../plan/plan.ts';
import type { StepKind } from '../steps/index.ts';
import { getStep, type Store } from '../store/index.ts';

export interface DoneStep {
  key: string;
  kind: StepKind;
  iteration: number;
  /** The arms that use the step, space-separated. */
  arms: string;
}

/** The run's done steps of some kinds, once each, in the order the arms first use them. */
export async function doneSteps(store: Store, plan: Plan, kinds: readonly StepKind[]): Promise<DoneStep[]> {
  const arms = stepArms(plan);
  const seen = new Set<string>();
  const out: DoneStep[] = [];
  for (const arm of plan.arms) {
    for (const use of arm.steps) {
      if (!kinds.includes(use.kind) || seen.has(use.key) || (await getStep(store, use.key))?.status !== 'done') continue;
      seen.add(use.key);
      out.push({ key: use.key, kind: use.kind, iteration: use.iteration, arms: arms.get(use.key)!.join(' ') });
    }
  }
  return out;
}
