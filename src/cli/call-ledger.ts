/**
 * The call ledger of a run as `rise status RUN` shows it: for each of its steps that sampled from a
 * remote policy, the calls it paid for with their tokens in and out, and the responses it read back from
 * the ledger instead of calling (a retry, a replay, another arm or run that asked the same).
 */

import type { Plan } from '../plan/plan.ts';
import { iterationLabel } from '../report/data.ts';
import { shortKey } from '../steps/index.ts';
import { callStats, type Store } from '../store/index.ts';

const count = (n: number) => n.toLocaleString('en-US');

/** Lines to print, or none when no step of the plan called a remote policy. */
export async function callLedgerLines(store: Store, plan: Plan): Promise<string[]> {
  const uses = plan.arms.flatMap((arm) => arm.steps.filter((s) => s.remote !== undefined).map((use) => ({ arm: arm.name, use })));
  const stats = await callStats(store, uses.map((u) => u.use.key));
  if (stats.size === 0) return [];
  const lines = ['remote calls (the call ledger):'];
  const shown = new Set<string>();
  for (const { arm, use } of uses) {
    const s = stats.get(use.key);
    if (s === undefined || shown.has(use.key)) continue;
    shown.add(use.key);
    lines.push(
      `  ${arm} · ${iterationLabel(use.iteration)} · ${use.kind} ${shortKey(use.key)}: ${count(s.calls)} calls made, ` +
        `${count(s.promptTokens)} tokens in, ${count(s.completionTokens)} out; ${count(s.served)} responses served from the ledger`,
    );
  }
  return lines;
}
