/**
 * The training side of a recorded run, for lineage: rollout steps record attempt 1 of every problem,
 * relabel steps continue each wrong episode with the best of N candidates (the real `chooseBest`), and
 * filter steps run the real filter over their relabel steps' ledgers and record every decision as the
 * filter activity does. Answers are synthetic; the joins, rules and weights are the product's.
 */

import { Rng } from '../../src/engine/random.ts';
import type { StepUse, Plan } from '../../src/plan/plan.ts';
import { isCorrect, type Episode, type Sample } from '../../src/rise/episode.ts';
import { filterEpisodes } from '../../src/rise/filter.ts';
import { chooseBest } from '../../src/rise/relabel.ts';
import { filterOrigins } from '../../src/steps/filter.ts';
import { stepOfKind } from '../../src/steps/index.ts';
import { readEpisodes, recordEpisodes, recordExamples, type LedgerEpisode, type Store } from '../../src/store/index.ts';

export const TRAIN_PROBLEMS = 24;

function sample(rng: Rng, key: string, source: string, candidate: number, pCorrect: number): Sample {
  const right = rng.uniform() < pCorrect;
  // Some blank attempts, so the filter's `empty` rule has something to drop.
  const answer = right ? '7' : rng.uniform() < 0.15 ? null : String(rng.int(6));
  return {
    requestId: `${key}|c${candidate}`,
    source,
    candidate,
    resample: 0,
    text: answer === null ? ' ' : `3 + 4 = ${answer}. The answer is ${answer}.`,
    answer,
    reward: right ? 1 : 0,
    tokens: 12,
    logprob: -3,
    finishReason: 'stop',
    degenerate: null,
  };
}

/** A ledger episode read back as the algorithm's (as activities/episodes.ts reads it). */
function asEpisode(e: LedgerEpisode): Episode {
  return {
    problemId: e.problemId,
    prompt: e.prompt ?? '',
    turns: e.turns.map((t) => ({
      turn: t.turn,
      kind: t.kind as Episode['turns'][number]['kind'],
      chosen: t.chosen,
      samples: t.samples.map((s) => ({ ...s, requestId: s.requestId ?? '', source: s.source ?? '', candidate: s.candidate ?? 0, resample: s.resample ?? 0, finishReason: 'stop', degenerate: s.degenerate ?? null })),
    })),
  };
}

/** Records what a rollout, relabel or filter step writes to the ledger (the step must have been started). */
export async function recordTrainingData(store: Store, plan: Plan, use: StepUse, runId: string): Promise<void> {
  const step = plan.steps[use.key];
  if (step.kind === 'rollout') {
    const rng = new Rng(use.key);
    const episodes = Array.from({ length: TRAIN_PROBLEMS }, (_, i): Episode => ({
      problemId: `train-${i}`,
      prompt: `What is 3 + 4? (problem ${i})`,
      turns: [{ turn: 1, kind: 'onPolicy', chosen: 0, samples: [sample(rng, `train-${i}|t1`, 'learner', 0, 0.4)] }],
    }));
    await recordEpisodes(store, use.key, episodes, runId);
  } else if (step.kind === 'relabel') {
    const relabel = stepOfKind(step, 'relabel');
    const rng = new Rng(use.key);
    const source = relabel.params.strategy === 'expert' ? 'expert' : 'learner';
    const episodes = (await readEpisodes(store, relabel.inputs[0])).map((e) => {
      const episode = asEpisode(e);
      for (let turn = 2; turn <= relabel.params.turns && !isCorrect(episode.turns.at(-1)!.samples[episode.turns.at(-1)!.chosen].reward); turn++) {
        const samples = Array.from({ length: relabel.params.samples }, (_, c) => sample(rng, `${e.problemId}|t${turn}`, source, c, 0.25));
        episode.turns.push({ turn, kind: 'relabel', chosen: chooseBest(samples), samples });
      }
      return episode;
    });
    await recordEpisodes(store, use.key, episodes, runId);
  } else if (step.kind === 'filter') {
    const filter = stepOfKind(step, 'filter');
    const pool = [];
    for (const { relabel, origin } of filterOrigins(use.iteration, filter.inputs)) {
      for (const e of await readEpisodes(store, relabel)) pool.push({ episode: asEpisode(e), origin });
    }
    const { kept, dropped } = filterEpisodes(pool, filter.params);
    await recordExamples(store, use.key, [
      ...kept.map((e) => ({ problemId: e.problemId, turn: e.turn, reward: e.reward, origin: e.origin ?? '' })),
      ...dropped.map(({ example: e, rule }) => ({ problemId: e.problemId, turn: e.turn, reward: e.reward, origin: e.origin ?? '', dropRule: rule })),
    ]);
  }
}
