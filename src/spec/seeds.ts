/**
 * Replicates: a spec's `seeds` runs every arm once per seed. A replicate is an ordinary arm — planned,
 * run and stored like any other — named `<arm>@seed<s>`; `@` cannot appear in a declared arm's name, so
 * the name says unambiguously which arm and seed it replicates, and reports group replicates by it.
 */

import type { ArmSpec, ExperimentSpec } from './types.ts';

const SEPARATOR = '@seed';

export function replicaName(arm: string, seed: number): string {
  return `${arm}${SEPARATOR}${seed}`;
}

/** The declared arm and seed of a replicate's name; null for an arm of a spec without `seeds`. */
export function replicaOf(name: string): { arm: string; seed: number } | null {
  const at = name.lastIndexOf(SEPARATOR);
  if (at <= 0) return null;
  const seed = name.slice(at + SEPARATOR.length);
  return /^\d+$/.test(seed) ? { arm: name.slice(0, at), seed: Number(seed) } : null;
}

/** The declared arm an arm of a plan runs: itself, or the arm it replicates. */
export function declaredArm(name: string): string {
  return replicaOf(name)?.arm ?? name;
}

/** Every arm once per seed, arm by arm (each arm's replicates together, in the order of `seeds`). */
export function replicateArms(arms: Record<string, ArmSpec>, seeds: readonly number[]): Record<string, ArmSpec> {
  return Object.fromEntries(Object.entries(arms).flatMap(([name, arm]) => seeds.map((seed) => [replicaName(name, seed), { ...structuredClone(arm), seed }])));
}

/**
 * A validated spec as its file declared it, to edit and validate again (`rise fork --set`): each
 * replicated arm once, without the seed replication gave it, and no `seed` beside `seeds`.
 */
export function declaredSpec(spec: ExperimentSpec): Record<string, unknown> & { arms: Record<string, Record<string, unknown>> } {
  const copy = structuredClone(spec) as unknown as Record<string, unknown> & { arms: Record<string, Record<string, unknown>> };
  if (spec.seeds === null || spec.seeds === undefined) return copy;
  const arms: Record<string, Record<string, unknown>> = {};
  for (const [name, arm] of Object.entries(copy.arms)) {
    const declared = declaredArm(name);
    if (declared in arms) continue;
    delete arm.seed;
    arms[declared] = arm;
  }
  delete copy.seed;
  return { ...copy, arms };
}
