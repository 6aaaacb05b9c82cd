/**
 * A run's filter decisions joined with the ledger, the one join that `rise export --what examples`, the
 * report's lineage tables and `rise why` read (`filterDecisions`). The export: every example of a run's
 * filter steps with what the model was trained on. The examples table names each one (origin, problem, turn) and its filter decision; its text is in
 * the ledger of the relabel step the origin names, and its weight belongs to the train step that reads
 * the filter (weighting and tau are train params, and arms that share a filter can weight it
 * differently).
 *
 * So a filter's examples are exported once per train step of the run's plan that reads it (a train step
 * shared by arms once, `trainArms` naming them), each row with that step's weight (w_e, before length
 * normalization; none for dropped examples) and the conversation as that step renders it (the state
 * before the attempt as the policy saw it under `multiTurn`, the first question alone under
 * `singleTurn`). A filter no train step of the plan reads is exported once, with no train step or weight
 * and the conversation as the policy saw it (the relabel step's framing and window). Examples longer than
 * the model's context, which a train step leaves out (its outputs count them), are not marked.
 */

import type { Plan } from '../plan/plan.ts';
import type { Message } from '../rise/conversation.ts';
import { turnAttempt, type TurnAttempt } from '../rise/episode.ts';
import { exampleState, exampleWeight, type ExampleRendering } from '../rise/examples.ts';
import { shortKey, stepOfKind, type Step } from '../steps/index.ts';
import { filterOrigins } from '../steps/filter.ts';
import { trainRendering } from '../steps/train.ts';
import { readEpisodes, readExamples, type LedgerEpisode, type LedgerSample, type LedgerTurn, type StoredExample, type Store } from '../store/index.ts';

export interface ExampleRow {
  /** The filter step. */
  step: string;
  /** Arms that use the filter step. */
  arms: string;
  iteration: number;
  origin: string;
  problemId: string;
  turn: number;
  reward: number;
  kept: boolean;
  dropRule: string | null;
  /** The train step that reads the filter, or null when none does. */
  train: string | null;
  /** Arms that use that train step. */
  trainArms: string | null;
  /** w_e under the train step's weighting: exp(reward/tau) or 1; null for dropped examples and without a train step. */
  weight: number | null;
  /** The relabel step whose ledger holds the episode. */
  relabel: string;
  /** Index of the turn's chosen sample among its samples (the rollouts export's `sample`). */
  sample: number;
  requestId: string | null;
  candidate: number | null;
  source: string | null;
  /** The conversation the target follows; ends with a user message. */
  messages: Message[];
  target: string;
}

/** A filter step of the run: its key, the iteration it belongs to, the arms that use it. */
export interface FilterUse {
  key: string;
  iteration: number;
  arms: string;
}

/** The train steps of the plan that read filter `key`, in plan order. */
export function trainSteps(plan: Plan, key: string): Step<'train'>[] {
  return Object.values(plan.steps)
    .filter((s) => s.kind === 'train' && s.inputs[0] === key)
    .map((s) => stepOfKind(s, 'train'));
}

/** Ledger episodes of relabel steps by problem, read once per step. */
export class Episodes {
  private readonly byStep = new Map<string, Map<string, LedgerEpisode>>();
  constructor(private readonly store: Store) {}

  async get(relabelKey: string, problemId: string): Promise<LedgerEpisode | undefined> {
    let episodes = this.byStep.get(relabelKey);
    if (episodes === undefined) {
      episodes = new Map((await readEpisodes(this.store, relabelKey)).map((e) => [e.problemId, e]));
      this.byStep.set(relabelKey, episodes);
    }
    return episodes.get(problemId);
  }
}

/** One filter decision joined with the ledger: the turn of the relabel step's episode it trains on. */
export interface FilterDecision {
  example: StoredExample;
  relabel: Step<'relabel'>;
  episode: LedgerEpisode;
  /** The episode's turn the example is. */
  turn: LedgerTurn;
  attempt: TurnAttempt<LedgerSample>;
}

/**
 * Filter `key`'s examples in the order it recorded them (kept, then dropped), each with the ledger turn it
 * came from; throws when the ledger lacks one, which would be a store that lost part of a finished step.
 */
export async function filterDecisions(store: Store, plan: Plan, f: Pick<FilterUse, 'key' | 'iteration'>, episodes = new Episodes(store)): Promise<FilterDecision[]> {
  const filter = stepOfKind(plan.steps[f.key], 'filter');
  const relabelOf = new Map(filterOrigins(f.iteration, filter.inputs).map(({ relabel, origin }) => [origin, relabel]));
  const decisions: FilterDecision[] = [];
  for (const example of await readExamples(store, f.key)) {
    const relabelKey = relabelOf.get(example.origin);
    const where = `filter ${shortKey(f.key)}: example ${example.origin || '(no origin)'} ${example.problemId} turn ${example.turn}`;
    if (relabelKey === undefined) throw new Error(`${where} names no relabel step among the filter's inputs`);
    const episode = await episodes.get(relabelKey, example.problemId);
    const turn = episode?.turns.find((t) => t.turn === example.turn);
    const attempt = episode === undefined ? undefined : turnAttempt<LedgerSample>({ prompt: episode.prompt ?? '', turns: episode.turns }, example.turn);
    if (episode === undefined || turn === undefined || attempt === undefined) throw new Error(`${where} is not in the ledger of relabel step ${shortKey(relabelKey)}`);
    decisions.push({ example, relabel: stepOfKind(plan.steps[relabelKey], 'relabel'), episode, turn, attempt });
  }
  return decisions;
}

/**
 * The rows of the run's filter steps, in order: per filter step, per train step reading it, its examples
 * in the order the filter recorded them (kept, then dropped).
 */
export async function* exampleRows(store: Store, plan: Plan, filters: readonly FilterUse[], arms: ReadonlyMap<string, readonly string[]>): AsyncGenerator<ExampleRow> {
  const episodes = new Episodes(store);
  for (const f of filters) {
    const decisions = await filterDecisions(store, plan, f, episodes);
    const readers = trainSteps(plan, f.key);
    const groups = readers.length > 0 ? readers.map((t) => ({ train: t, rendering: trainRendering(t.params) })) : [{ train: null, rendering: null }];
    for (const { train, rendering } of groups) {
      for (const { example: e, relabel, episode, attempt } of decisions) {
        const policy: ExampleRendering = { prompting: { instruction: relabel.params.instruction, feedback: relabel.params.feedback }, format: 'multiTurn', contextWindow: relabel.params.contextWindow };
        yield {
          step: f.key,
          arms: f.arms,
          iteration: f.iteration,
          origin: e.origin,
          problemId: e.problemId,
          turn: e.turn,
          reward: e.reward,
          kept: !e.dropped,
          dropRule: e.dropRule,
          train: train?.key ?? null,
          trainArms: train === null ? null : (arms.get(train.key) ?? []).join(' '),
          weight: train === null || e.dropped ? null : exampleWeight(e.reward, train.params.weighting, train.params.tau),
          relabel: relabel.key,
          sample: attempt.chosen,
          requestId: attempt.sample.requestId ?? null,
          candidate: attempt.sample.candidate ?? null,
          source: attempt.sample.source ?? null,
          messages: exampleState({ prompt: episode.prompt ?? '', previous: attempt.previous }, rendering ?? policy).messages,
          target: attempt.sample.text,
        };
      }
    }
  }
}

/** The messages as one text for a CSV cell: each message under a `[role]` line. */
export function contextText(messages: readonly Message[]): string {
  return messages.map((m) => `[${m.role}]\n${m.content}`).join('\n');
}
