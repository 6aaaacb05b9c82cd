/**
 * Why a step's key differs from an earlier plan's, i.e. why its cached result will not be reused: a
 * param that changed, an input that changed (and so on up the DAG), a bumped step version, or a
 * changed graph or ONNX Runtime. Steps are matched by their place (arm, iteration, kind, model or eval set).
 */

import { shortKey } from '../steps/index.ts';
import type { ArmPlan, Plan, StepUse } from './plan.ts';

export function placeOf(arm: ArmPlan, use: StepUse): string {
  return [arm.name, use.iteration, use.kind, use.model ?? use.evalSet ?? ''].join('/');
}

/** Leaves of nested params as "optimizer.lr" → "0.001" (arrays are leaves). */
export function flattenParams(value: unknown, path = '', out = new Map<string, string>()): Map<string, string> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flattenParams(v, path === '' ? k : `${path}.${k}`, out);
  } else {
    out.set(path, JSON.stringify(value));
  }
  return out;
}

/** "optimizer.lr 0.001 → 0.002" for every leaf that differs. */
function paramChanges(before: unknown, after: unknown): string[] {
  const a = flattenParams(before);
  const b = flattenParams(after);
  const names = [...new Set([...a.keys(), ...b.keys()])];
  return names.filter((n) => a.get(n) !== b.get(n)).map((n) => `${n} ${a.get(n) ?? '(absent)'} → ${b.get(n) ?? '(absent)'}`);
}

/**
 * For every step of `current` whose key is not the one at the same place in `previous`, the reasons,
 * by place (see `placeOf`). Steps whose keys are unchanged are absent.
 */
export function explainChanges(previous: Plan, current: Plan): Map<string, string[]> {
  const before = new Map<string, string>();
  for (const arm of previous.arms) for (const use of arm.steps) before.set(placeOf(arm, use), use.key);

  const reasons = new Map<string, string[]>();
  for (const arm of current.arms) {
    for (const use of arm.steps) {
      const place = placeOf(arm, use);
      const oldKey = before.get(place);
      if (oldKey === use.key) continue;
      const now = current.steps[use.key];
      const old = oldKey === undefined ? undefined : previous.steps[oldKey];
      if (old === undefined) {
        reasons.set(place, ['new: no step at this place in the previous plan']);
        continue;
      }
      // Plans stored before steps carried their compute fingerprint have none.
      const why = paramChanges(old.compute ?? {}, now.compute).map((c) => `computed by ${c}`);
      if (old.version !== now.version) why.push(`${now.kind} version ${old.version} → ${now.version}`);
      why.push(...paramChanges(old.params, now.params));
      if (old.inputs.length !== now.inputs.length) why.push(`inputs ${old.inputs.length} → ${now.inputs.length}`);
      now.inputs.forEach((input, i) => {
        const was = old.inputs[i];
        if (was === undefined || was === input) return;
        why.push(`input ${current.steps[input]?.kind ?? 'step'} ${shortKey(was)} → ${shortKey(input)}`);
      });
      reasons.set(place, why);
    }
  }
  return reasons;
}
