/**
 * What a run says once its randomness is counted: every headline metric and every paired comparison of
 * each declared arm, as the mean over its seeds (one replicate per seed, seeds.ts) ± the standard deviation
 * across seeds, with a 95% bootstrap interval over problems. The two answer different questions: the
 * standard deviation is how much another training run moves the number (initialisation, data order,
 * samples); the interval is how much another draw of problems would. With one seed there is no standard
 * deviation, and the interval is all a run can say.
 *
 * The bootstrap resamples each replicate's problems with replacement (replicates were evaluated on
 * different problems, each generated from its own seed) and takes the mean over replicates of the
 * resampled means; the interval is the 2.5th and 97.5th percentile of that over rounds. A comparison is
 * resampled as per-problem differences, so its pairing is kept. The random stream is fixed, so a report
 * is the same every time it is made.
 */

import { Rng } from '../engine/random.ts';
import { HEADLINE_METRICS, problemCredits, type TieBreak } from '../rise/metrics.ts';
import { declaredArm, replicaOf } from '../spec/seeds.ts';
import { comparisons, type Evaluated } from './differences.ts';

export const BOOTSTRAP_ROUNDS = 2000;

/** One metric or comparison of one declared arm's model (iteration) on one eval set, over its seeds. */
export interface ReplicatePoint {
  /** The declared arm (a spec without seeds: the arm itself). */
  arm: string;
  iteration: number;
  evalSet: string;
  /** A headline metric ("m1@t5") or a comparison as differences.ts names it ("m1@t5 − m1@t1"). */
  quantity: string;
  seeds: number[];
  /** Per seed, in `seeds` order; fractions. */
  values: number[];
  mean: number;
  /** Sample standard deviation across seeds; null with one seed. */
  sd: number | null;
  /** 95% bootstrap interval over problems of `mean`. */
  low: number;
  high: number;
  /** Problems per replicate. */
  problems: number[];
}

const mean = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

function sampleSd(xs: readonly number[]): number | null {
  if (xs.length < 2) return null;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1));
}

/** The 95% percentile interval of the mean over groups of each group's mean, resampling within groups. */
export function bootstrapInterval(groups: readonly (readonly number[])[], rounds = BOOTSTRAP_ROUNDS, seed: string | number = 'bootstrap'): { low: number; high: number } {
  const filled = groups.filter((g) => g.length > 0).map((g) => Float64Array.from(g));
  if (filled.length === 0) return { low: 0, high: 0 };
  const rng = new Rng('replicates', seed);
  const stats = new Float64Array(rounds);
  for (let b = 0; b < rounds; b++) {
    let total = 0;
    for (const g of filled) {
      let sum = 0;
      for (let i = 0; i < g.length; i++) sum += g[rng.int(g.length)];
      total += sum / g.length;
    }
    stats[b] = total / filled.length;
  }
  stats.sort();
  const at = (q: number) => stats[Math.min(rounds - 1, Math.max(0, Math.round(q * (rounds - 1))))];
  return { low: at(0.025), high: at(0.975) };
}

/**
 * Every headline metric and comparison of every declared arm, iteration and eval set, over the seeds that
 * have it. `seedOf` names the seed of an arm that is not a replicate (its spec's seed).
 */
export function replicatePoints(evaluated: readonly Evaluated[], arms: readonly string[], tieBreak: TieBreak, seedOf: (arm: string) => number): ReplicatePoint[] {
  const groups = new Map<string, { place: Omit<ReplicatePoint, 'seeds' | 'values' | 'mean' | 'sd' | 'low' | 'high' | 'problems'>; replicates: { seed: number; values: number[] }[] }>();
  const add = (arm: string, iteration: number, evalSet: string, quantity: string, values: number[]) => {
    const place = { arm: declaredArm(arm), iteration, evalSet, quantity };
    const id = JSON.stringify(place);
    const group = groups.get(id) ?? { place, replicates: [] };
    group.replicates.push({ seed: replicaOf(arm)?.seed ?? seedOf(arm), values });
    groups.set(id, group);
  };
  for (const e of evaluated) {
    for (const metric of HEADLINE_METRICS) {
      if (e.metrics.has(metric)) add(e.arm, e.iteration, e.evalSet, metric, [...problemCredits(e.records, metric, { tieBreak, seed: e.seed, vote: e.vote }).values()]);
    }
  }
  for (const c of comparisons(evaluated, arms, tieBreak)) add(c.arm, c.iteration, c.evalSet, c.comparison, [...c.later].map(([id, x]) => x - c.earlier.get(id)!));
  return [...groups.values()].map(({ place, replicates }) => {
    const values = replicates.map((r) => mean(r.values));
    return {
      ...place,
      seeds: replicates.map((r) => r.seed),
      values,
      mean: mean(values),
      sd: sampleSd(values),
      ...bootstrapInterval(
        replicates.map((r) => r.values),
        BOOTSTRAP_ROUNDS,
        // Not the arm: a model that several arms share (the boosted one) gets one interval.
        JSON.stringify([place.iteration, place.evalSet, place.quantity]),
      ),
      problems: replicates.map((r) => r.values.length),
    };
  });
}
