/**
 * What `rise replay RUN --from iteration:N[:step]` recomputes: the selected steps of a plan and everything
 * downstream of them (their dependents, through the plan's input edges). Everything else is reused.
 * Pure: the plan alone decides, so the set is the same whether or not the steps ran before.
 */

import { STEP_KINDS, type StepKind } from '../steps/index.ts';
import type { Plan } from './plan.ts';

export interface ReplayFrom {
  iteration: number;
  /** Every step of the iteration when absent. */
  kind?: StepKind;
}

/** Parses `iteration:N` or `iteration:N:step`; throws with the expected form on anything else. */
export function parseReplayFrom(text: string): ReplayFrom {
  const kinds: readonly string[] = STEP_KINDS;
  const m = /^iteration:(\d+)(?::([a-z]+))?$/.exec(text.trim());
  if (!m) throw new Error(`--from ${text}: expected iteration:N or iteration:N:STEP (STEP one of ${kinds.join(', ')}), e.g. iteration:2:train`);
  const kind = STEP_KINDS.find((k) => k === m[2]);
  if (m[2] !== undefined && kind === undefined) throw new Error(`--from ${text}: "${m[2]}" is not a step; expected one of ${kinds.join(', ')}`);
  return { iteration: Number(m[1]), ...(kind ? { kind } : {}) };
}

/** The keys to recompute, in plan order; throws when the selection matches no step. */
export function replayKeys(plan: Plan, from: ReplayFrom, arm?: string): string[] {
  const arms = arm === undefined ? plan.arms : plan.arms.filter((a) => a.name === arm);
  if (arms.length === 0) throw new Error(`no arm "${arm}" in the plan; arms: ${plan.arms.map((a) => a.name).join(', ')}`);
  const selected = new Set(arms.flatMap((a) => a.steps.filter((u) => u.iteration === from.iteration && (from.kind === undefined || u.kind === from.kind)).map((u) => u.key)));
  if (selected.size === 0) {
    const last = Math.max(...arms.flatMap((a) => a.steps.map((u) => u.iteration)));
    throw new Error(`no ${from.kind ?? ''} step at iteration ${from.iteration}`.replace('  ', ' ') + ` (iterations run 0..${last}; 0 is the boost)`);
  }
  const users = new Map<string, string[]>();
  for (const step of Object.values(plan.steps)) for (const input of step.inputs) users.set(input, [...(users.get(input) ?? []), step.key]);
  const out = new Set(selected);
  const queue = [...selected];
  while (queue.length > 0) {
    for (const next of users.get(queue.pop()!) ?? []) {
      if (out.has(next)) continue;
      out.add(next);
      queue.push(next);
    }
  }
  return Object.keys(plan.steps).filter((k) => out.has(k));
}
