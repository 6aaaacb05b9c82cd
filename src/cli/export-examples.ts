/**
 * `rise export --what examples`: every example of a run's filter steps with what the model was trained
 * on. The examples table names each one (origin, problem, turn) and its filter decision; its text is in
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
import { turnAttempt } from '../rise/episode.ts';
import { exampleState, exampleWeight, type ExampleRendering } from '../rise/examples.ts';
import { shortKey, stepOfKind, type Step } from '../steps/index.ts';
import { filterOrigins } from '../steps/filter.ts';
import { trainRendering } from '../steps/train.ts';
import { readEpisodes, readExamples, type LedgerEpisode, type LedgerSample, type Store } from '../store/index.ts';

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
function trainSteps(plan: Plan, key: string): Step<'train'>[] {
  return Object.values(plan.steps)
    .filter((s) => s.kind === 'train' && s.inputs[0] === key)
    .map((s) => stepOfKind(s, 'train'));
}

/** Ledger episodes of relabel steps by problem, read once per step. */
class Episodes {
  private readonly byStep = new Map<string, Map<string, LedgerEpisode>>();
  constructor(private readonly store: Store) {}

  get(relabelKey: string, problemId: string): LedgerEpisode | undefined {
    let episodes = this.byStep.get(relabelKey);
    if (episodes === undefined) {
      episodes = new Map(readEpisodes(this.store, relabelKey).map((e) => [e.problemId, e]));
      this.byStep.set(relabelKey, episodes);
    }
    return episodes.get(problemId);
  }
}

/**
 * The rows of the run's filter steps, in order: per filter step, per train step reading it, its examples
 * in the order the filter recorded them (kept, then dropped).
 */
export function* exampleRows(store: Store, plan: Plan, filters: readonly FilterUse[], arms: ReadonlyMap<string, readonly string[]>): Generator<ExampleRow> {
  const episodes = new Episodes(store);
  for (const f of filters) {
    const filter = stepOfKind(plan.steps[f.key], 'filter');
    const relabelOf = new Map(filterOrigins(f.iteration, filter.inputs).map(({ relabel, origin }) => [origin, relabel]));
    const readers = trainSteps(plan, f.key);
    const examples = readExamples(store, f.key);
    const texts = examples.map((e) => {
      const relabelKey = relabelOf.get(e.origin);
      const where = `filter ${shortKey(f.key)}: example ${e.origin || '(no origin)'} ${e.problemId} turn ${e.turn}`;
      if (relabelKey === undefined) throw new Error(`${where} names no relabel step among the filter's inputs`);
      const relabel = stepOfKind(plan.steps[relabelKey], 'relabel');
      const episode = episodes.get(relabelKey, e.problemId);
      const attempt = episode === undefined ? undefined : turnAttempt<LedgerSample>({ prompt: episode.prompt ?? '', turns: episode.turns }, e.turn);
      if (episode === undefined || attempt === undefined) throw new Error(`${where} is not in the ledger of relabel step ${shortKey(relabelKey)}`);
      const policy: ExampleRendering = { prompting: { instruction: relabel.params.instruction, feedback: relabel.params.feedback }, format: 'multiTurn', contextWindow: relabel.params.contextWindow };
      return { relabelKey, prompt: episode.prompt ?? '', policy, ...attempt };
    });
    const groups = readers.length > 0 ? readers.map((t) => ({ train: t, rendering: trainRendering(t.params) })) : [{ train: null, rendering: null }];
    for (const { train, rendering } of groups) {
      for (const [i, e] of examples.entries()) {
        const text = texts[i];
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
          relabel: text.relabelKey,
          sample: text.chosen,
          requestId: text.sample.requestId ?? null,
          candidate: text.sample.candidate ?? null,
          source: text.sample.source ?? null,
          messages: exampleState({ prompt: text.prompt, previous: text.previous }, rendering ?? text.policy).messages,
          target: text.sample.text,
        };
      }
    }
  }
}

/** The messages as one text for a CSV cell: each message under a `[role]` line. */
export function contextText(messages: readonly Message[]): string {
  return messages.map((m) => `[${m.role}]\n${m.content}`).join('\n');
}
