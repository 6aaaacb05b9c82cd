/**
 * Where each training example came from and what became of it: per filter step of a run, every example
 * it decided on with the turn of the relabel episode it is (the on-policy attempt of turn 1, or the best
 * of N candidates at a later turn), its reward, the filter's decision (the rule that dropped it) and its
 * weight under each train step that reads the filter. The report's lineage tables and `rise why` show it.
 *
 * An example is named `relabel/problem/tturn` (e.g. `b97b8f40abbd/train-17/t2`), after the relabel step
 * whose ledger holds its episode (short key), the problem and the turn: one name per example of the run,
 * the same in every filter that reads that relabel step (arms sharing data, iterations aggregating it). A
 * filter's `origin` (iter-1, iter-2) is not enough: arms with their own relabel steps reuse it.
 */

import type { Plan } from '../plan/plan.ts';
import { stepArms } from '../plan/plan.ts';
import { exampleWeight } from '../rise/examples.ts';
import { shortKey } from '../steps/index.ts';
import type { Store } from '../store/index.ts';
import { doneSteps } from './done-steps.ts';
import { Episodes, filterDecisions, trainSteps } from './examples.ts';

export interface ExampleName {
  /** The relabel step's short key. */
  relabel: string;
  problemId: string;
  turn: number;
}

export function exampleId(e: ExampleName): string {
  return `${e.relabel}/${e.problemId}/t${e.turn}`;
}

/** An example id's parts, or null when `id` is not one; the problem id may itself contain slashes. */
export function parseExampleId(id: string): ExampleName | null {
  const m = /^([0-9a-f]+)\/(.+)\/t(\d+)$/.exec(id);
  return m === null ? null : { relabel: m[1], problemId: m[2], turn: Number(m[3]) };
}

export interface ExampleLineage {
  id: string;
  /** The filter's name for the relabel step it came from (iter-1, iter-2 …). */
  origin: string;
  problemId: string;
  turn: number;
  /** The episode turn's kind: `onPolicy` (the rollout's attempt 1) or `relabel` (best of the candidates). */
  kind: string;
  /** The chosen sample's candidate slot, and how many slots the turn drew. */
  candidate: number;
  candidates: number;
  /** The policy that drew it (learner, expert). */
  source: string | null;
  reward: number;
  /** The rule that dropped it; null when kept. */
  dropRule: string | null;
  /** w_e under each of the filter's train steps (`FilterLineage.trains`' order); null for a dropped example. */
  weights: (number | null)[];
}

export interface FilterLineage {
  key: string;
  iteration: number;
  arms: string[];
  /** The relabel step each origin names. */
  relabels: { origin: string; key: string }[];
  /** The train steps of the plan that read the filter, with the arms that use each. */
  trains: { key: string; arms: string[] }[];
  examples: ExampleLineage[];
}

/** Every done filter step of the run, its examples in the order it recorded them (kept, then dropped). */
export async function runLineage(store: Store, plan: Plan): Promise<FilterLineage[]> {
  const users = stepArms(plan);
  const episodes = new Episodes(store);
  const lineage: FilterLineage[] = [];
  for (const f of await doneSteps(store, plan, ['filter'])) {
    const trains = trainSteps(plan, f.key);
    const decisions = await filterDecisions(store, plan, f, episodes);
    const relabels = new Map(decisions.map((d) => [d.example.origin, d.relabel.key]));
    lineage.push({
      key: f.key,
      iteration: f.iteration,
      arms: users.get(f.key) ?? [],
      relabels: [...relabels].map(([origin, key]) => ({ origin, key })),
      trains: trains.map((t) => ({ key: t.key, arms: users.get(t.key) ?? [] })),
      examples: decisions.map(({ example: e, relabel, turn, attempt }): ExampleLineage => ({
        id: exampleId({ relabel: shortKey(relabel.key), problemId: e.problemId, turn: e.turn }),
        origin: e.origin,
        problemId: e.problemId,
        turn: e.turn,
        kind: turn.kind,
        candidate: attempt.sample.candidate ?? 0,
        candidates: new Set(turn.samples.map((s) => s.candidate ?? 0)).size,
        source: attempt.sample.source ?? null,
        reward: e.reward,
        dropRule: e.dropRule,
        weights: trains.map((t) => (e.dropped ? null : exampleWeight(e.reward, t.params.weighting, t.params.tau))),
      })),
    });
  }
  return lineage;
}

/** Where the example came from, as one phrase: "on-policy attempt" or "relabel candidate 3 of 8 (expert)". */
export function originPhrase(e: Pick<ExampleLineage, 'kind' | 'candidate' | 'candidates' | 'source'>): string {
  const by = e.source ? ` (${e.source})` : '';
  return e.kind === 'relabel' ? `relabel candidate ${e.candidate + 1} of ${e.candidates}${by}` : `${e.kind === 'onPolicy' ? 'on-policy attempt' : e.kind}${by}`;
}
