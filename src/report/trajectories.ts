/**
 * Every evaluation conversation of a run, for the report's trajectory viewer: per model (arm, iteration)
 * and eval set, per problem the question, each sequential turn's response, extracted answer and
 * correctness, and the answers of the parallel turn-1 samples (mk@t1).
 *
 * Correctness is what the metrics read (`episodeRecord`), so the viewer's "fixed at turn k" and "broken at
 * turn k" counts are the report's turn-to-turn transitions. Responses longer than `TEXT_LIMIT` characters
 * are cut (`rise why RUN PROBLEM` prints them whole), and every text is stored once however many models or
 * turns repeat it, which keeps the page a few megabytes for hundreds of problems × turns × models.
 */

import type { Plan } from '../plan/plan.ts';
import { episodeRecord } from '../rise/evaluate.ts';
import { readEpisodes, type Store } from '../store/index.ts';
import { doneSteps } from './done-steps.ts';

export const TEXT_LIMIT = 1200;

export interface TrajectoryModel {
  arm: string;
  iteration: number;
  evalSet: string;
  /** Index into `Trajectories.steps`: arms sharing an evaluation share its conversations. */
  step: number;
}

/** [text index, extracted answer (null: unparsable), correct (1/0)] */
export type TurnCell = [number, string | null, 0 | 1];
/** [answer, correct] of one parallel sample */
export type AnswerCell = [string | null, 0 | 1];
/** [problem id, question text index, sequential turns, parallel samples] */
export type ProblemRow = [string, number, TurnCell[], AnswerCell[]];

export interface Trajectories {
  /** Every text once: questions and (cut) responses. */
  texts: string[];
  steps: { key: string; problems: ProblemRow[] }[];
  models: TrajectoryModel[];
  textLimit: number;
}

class Texts {
  readonly all: string[] = [];
  private readonly index = new Map<string, number>();
  add(text: string): number {
    const cut = text.length > TEXT_LIMIT ? `${text.slice(0, TEXT_LIMIT)} …[cut at ${TEXT_LIMIT} characters]` : text;
    let i = this.index.get(cut);
    if (i === undefined) {
      i = this.all.push(cut) - 1;
      this.index.set(cut, i);
    }
    return i;
  }
}

/** The conversations of every done evaluate step of the run's plan, in the plan's order of arms. */
export async function runTrajectories(store: Store, plan: Plan): Promise<Trajectories> {
  const texts = new Texts();
  const evaluations = await doneSteps(store, plan, ['evaluate']);
  const steps: { key: string; problems: ProblemRow[] }[] = [];
  for (const { key } of evaluations) {
    steps.push({
      key,
      problems: (await readEpisodes(store, key))
        .sort((a, b) => a.problemId.localeCompare(b.problemId, undefined, { numeric: true }))
        .map((episode): ProblemRow => {
          const record = episodeRecord(episode);
          const bit = (correct: boolean): 0 | 1 => (correct ? 1 : 0);
          return [
            episode.problemId,
            texts.add(episode.prompt ?? ''),
            episode.turns.map((t, i): TurnCell => [texts.add(t.samples[0].text), record.sequential[i].answer, bit(record.sequential[i].correct)]),
            record.parallel.map((a): AnswerCell => [a.answer, bit(a.correct)]),
          ];
        }),
    });
  }
  const stepIndex = new Map(evaluations.map((e, i) => [e.key, i]));
  const models = plan.arms.flatMap((arm) =>
    arm.steps.flatMap((use) => {
      const step = stepIndex.get(use.key);
      return step === undefined ? [] : [{ arm: arm.name, iteration: use.iteration, evalSet: use.evalSet ?? '', step }];
    }),
  );
  return { texts: texts.all, steps, models, textLimit: TEXT_LIMIT };
}
