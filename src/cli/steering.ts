/**
 * What `rise status` says about a run's steering: its budget against what it has spent, and each arm's
 * early stop, decided from the store's metrics with the same rule the arm workflow applies.
 */

import { hasLimit, usageText } from '../plan/budget.ts';
import type { ArmPlan } from '../plan/plan.ts';
import { stopDecision, type StopDecision } from '../plan/stopping.ts';
import type { ExperimentSpec } from '../spec/types.ts';
import { readMetrics, runUsage, type RunRecord, type Store } from '../store/index.ts';

/** `budget: 1200 tokens of 5000, 0.010 compute hours`, or nothing when the run has no budget. */
export async function budgetLine(store: Store, run: RunRecord): Promise<string[]> {
  const budget = (run.spec as Partial<ExperimentSpec>).budget;
  if (!hasLimit(budget)) return [];
  return [`  budget: spent ${usageText(await runUsage(store, run.id), budget)}`];
}

/** Where the arm stopped early in this run, or null (no rule, not stopped, or not that far yet). */
export async function armStop(store: Store, runId: string, arm: ArmPlan): Promise<StopDecision | null> {
  const rule = arm.stop;
  if (rule === undefined) return null;
  const values = new Map(
    (await readMetrics(store, { runId, arm: arm.name, evalSet: rule.evalSet }))
      .filter((m) => m.name === rule.metric)
      .map((m) => [m.iteration, m.value]),
  );
  const last = Math.max(0, ...arm.steps.map((s) => s.iteration));
  const seen = Math.max(-1, ...values.keys());
  const decision = stopDecision(
    Array.from({ length: seen + 1 }, (_, i) => values.get(i)),
    rule,
  );
  return decision !== null && decision.iteration < last ? decision : null;
}
