/**
 * A plan that changes from iteration K on: iterations before K are the earlier plan's steps, exactly;
 * from K on, the new spec's steps, re-keyed onto the earlier plan's steps where they read them. A spec
 * holds one value per knob for every iteration, so the change by iteration is made here, on the plan: the
 * new spec is planned whole, then each of its steps at iteration K or later has its inputs from before K
 * replaced by the earlier plan's step at the same place (arm, iteration, kind, model or eval set), and
 * its key and seed key computed again over them — the same Merkle hashing the planner does, so a step
 * whose params and inputs match the earlier plan's gets the earlier plan's key and is reused.
 *
 * `rise fork --from iteration:K` is this with the changed spec; `rise extend` is this with K one past the
 * run's last iteration, so every step of the run is kept as it ran (a fork's spliced iterations
 * included) and the added iterations build on its last model.
 *
 * The boost (iteration 0) cannot change: what iterations K and later train and sample from is the model
 * the earlier iterations made, so a spec whose boost differs from the run's is refused rather than half
 * applied. A boost whose key differs for another reason (a newer engine) is kept as the run's.
 */

import type { ArmPlan, Plan, StepUse } from './plan.ts';
import { seedKey, stepKey } from './plan.ts';
import { canonicalJson } from './hash.ts';
import { placeOf } from './stale.ts';
import type { Step } from '../steps/index.ts';

/** A fork that cannot be spliced as asked; the message says why and what to do instead. */
export class ForkError extends Error {
  override name = 'ForkError';
}

/** The plan's last iteration (0 when it has only the boost). */
export function lastIteration(plan: Plan): number {
  return Math.max(0, ...plan.arms.flatMap((a) => a.steps.map((s) => s.iteration)));
}

/**
 * `next` with iterations before `from` replaced by `previous`'s steps. `previous` is what ran (a run's
 * stored plan); `next` is the changed spec planned whole, with the same arms.
 */
export function forkPlan(previous: Plan, next: Plan, from: number): Plan {
  const last = lastIteration(previous);
  const upTo = Math.min(last + 1, lastIteration(next));
  if (!Number.isInteger(from) || from < 1 || from > upTo) {
    throw new ForkError(`--from iteration:${from}: a fork from an iteration takes 1..${upTo} (the run has ${last}; 0 is the boost, which a fork without --from changes)`);
  }
  const names = (p: Plan) => p.arms.map((a) => a.name).join(', ');
  if (names(previous) !== names(next)) throw new ForkError(`--from needs the same arms as the run (${names(previous)}); the changed spec has ${names(next)}`);

  const steps: Record<string, Step> = {};
  const arms: ArmPlan[] = next.arms.map((arm, a) => {
    const before = previous.arms[a];
    const old = new Map(before.steps.map((use) => [placeOf(before, use), use]));
    const ran = new Set(before.steps.map((use) => use.iteration));
    /** A key of `next` → the key that step has in the forked plan (this arm's: places differ by arm). */
    const rekeyed = new Map<string, string>();
    const uses: StepUse[] = [];
    for (const use of arm.steps) {
      const place = placeOf(arm, use);
      // Before K, the run's iterations are kept; an iteration this arm never ran is planned like those after K.
      if (use.iteration < from && ran.has(use.iteration)) {
        const kept = old.get(place);
        if (use.kind === 'boost' && (kept === undefined || canonicalJson(previous.steps[kept.key].params) !== canonicalJson(next.steps[use.key].params))) {
          throw new ForkError(`--from iteration:${from}: the spec's boost of arm ${arm.name} (${use.model ?? 'learner'}) is not the run's, and every later iteration builds on the boosted model; fork without --from`);
        }
        // A place the earlier plan lacks (an evaluation set added by the change) stays empty before K.
        if (kept === undefined) continue;
        rekeyed.set(use.key, kept.key);
        steps[kept.key] ??= structuredClone(previous.steps[kept.key]);
        uses.push(structuredClone(kept));
        continue;
      }
      const step = next.steps[use.key];
      const inputs = step.inputs.map((input) => rekeyed.get(input) ?? input);
      const key = stepKey(step.kind, step.version, step.compute, step.params, inputs);
      const seeds = seedKey(step.kind, step.version, step.params, inputs.map((input) => steps[input].seedKey));
      rekeyed.set(use.key, key);
      steps[key] ??= structuredClone({ ...step, key, seedKey: seeds, inputs } as Step);
      uses.push({ ...structuredClone(use), key });
    }
    return { name: arm.name, steps: uses };
  });
  return { experiment: next.experiment, steps, arms, files: { ...previous.files, ...next.files } };
}
