/**
 * The problems a run's steps quarantined, as `rise status RUN` shows them: the count over the run, then
 * per step the count and the first few problems with their errors (`rise report` lists them all).
 */

import type { Plan } from '../plan/plan.ts';
import { iterationLabel } from '../report/data.ts';
import { shortKey } from '../steps/index.ts';
import { quarantinedProblems, type Store } from '../store/index.ts';

/** Problems listed per step; the report has the rest. */
const SHOWN = 3;

/** Lines to print, or none when no step of the plan quarantined a problem. */
export async function quarantineLines(store: Store, plan: Plan): Promise<string[]> {
  const quarantine = await quarantinedProblems(store, Object.keys(plan.steps));
  if (quarantine.size === 0) return [];
  const total = [...quarantine.values()].reduce((n, list) => n + list.length, 0);
  const lines = [`quarantined: ${total} problem${total === 1 ? '' : 's'} in ${quarantine.size} step${quarantine.size === 1 ? '' : 's'} (failed every try; left out of training and metrics)`];
  const shown = new Set<string>();
  for (const arm of plan.arms) {
    for (const use of arm.steps) {
      const list = quarantine.get(use.key);
      if (list === undefined || shown.has(use.key)) continue;
      shown.add(use.key);
      lines.push(`  ${arm.name} · ${iterationLabel(use.iteration)} · ${[use.kind, use.evalSet ?? ''].join(' ').trim()} ${shortKey(use.key)}: ${list.length}`);
      for (const q of list.slice(0, SHOWN)) lines.push(`    ${q.problemId}: ${q.errorClass}: ${q.message} (${q.attempts} tries)`);
      if (list.length > SHOWN) lines.push(`    and ${list.length - SHOWN} more (\`rise report\` lists them all)`);
    }
  }
  return lines;
}
