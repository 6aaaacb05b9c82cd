/**
 * Evaluation (docs/rise.md, metrics): for every problem, `parallelK` independent turn-1
 * samples (for mk@t1) and one conversation of `turns` sequential turns in which the retry message follows
 * every attempt whatever its answer (for m1@tk, and p1@tk read off up to the first correct turn). Sample 0
 * of the parallel set is turn 1 of the sequential conversation, so m1@t1 is one number, and the parallel
 * baseline at k = T costs the same number of samples as T sequential turns.
 *
 * Turn t ≥ 2 sees the first question and, under `contextWindow` w, only the w most recent attempts (each
 * followed by the retry message), so with w = 1 every test context looks like a 2-turn training context.
 *
 * Degenerate samples are not resampled here: evaluation measures the model as it is.
 */

import type { Problem, Task } from '../tasks/types.ts';
import { episodeContext, stateConversation, type Prompting } from './conversation.ts';
import { isCorrect, type Episode, type Sample } from './episode.ts';
import type { EvalRecord } from './metrics.ts';
import { freshCacheScope, type Policy, type SamplingParams } from './policy.ts';
import type { ProgressHook } from './progress.ts';
import { drawSamples, type Slot } from './sampling.ts';

/** The knobs of an evaluation. */
export interface EvaluationKnobs {
  /** Sequential turns (m1@tk, p1@tk for k ≤ turns). */
  turns: number;
  /** Independent turn-1 samples (mk@t1 for k ≤ parallelK); sample 0 also starts the sequential chain. */
  parallelK: number;
  /**
   * Sliding window: the most recent attempts kept in the context (with the instruction and the first
   * question always kept); null = the whole history. 1 = test contexts look like 2-turn training ones.
   */
  contextWindow: number | null;
  temperature: number;
  topP: number;
  maxTokens: number;
}

export interface EvaluateOptions {
  task: Task;
  evaluate: EvaluationKnobs;
  prompting: Prompting;
  /** Seed of this evaluation; with the request ids it fixes every sample. */
  seed: number;
}

/** Everything sampled for one problem, for the ledger; `record` is what the metrics read. */
export interface EvalTrace {
  problemId: string;
  parallel: Sample[];
  /** sequential[0] is parallel[0]. */
  sequential: Sample[];
  record: EvalRecord;
}

export interface EvaluationResult {
  traces: EvalTrace[];
  /** What the metrics read (metrics.ts); a caller working in batches computes them over all its records. */
  records: EvalRecord[];
  /** Samples cut by maxTokens or the context rather than ending with the stop token. */
  truncated: number;
}

const toAnswer = (s: Pick<Sample, 'answer' | 'reward' | 'logprob' | 'tokens'>) => ({ answer: s.answer, correct: isCorrect(s.reward), logprob: s.logprob, tokens: s.tokens });

export async function evaluatePolicy(policy: Policy, todo: Problem[], o: EvaluateOptions, onProgress?: ProgressHook): Promise<EvaluationResult> {
  const ev = o.evaluate;
  const total = todo.length;
  const sampling: SamplingParams = { temperature: ev.temperature, topP: ev.topP, maxTokens: ev.maxTokens, seed: o.seed };
  const cacheScope = freshCacheScope();
  const report = (stage: string) => (n: number, of: number) => onProgress?.({ done: 0, total, unit: 'problems', stage: `${stage}: ${n}/${of} samples` });
  await onProgress?.({ done: 0, total, unit: 'problems' });

  const firstSlots: Slot[] = todo.flatMap((problem) =>
    Array.from({ length: ev.parallelK }, (_, c) => ({
      key: `${problem.id}|eval|t1|c${c}`,
      problem,
      conversation: stateConversation(episodeContext(o.prompting, problem), []),
      candidate: c,
      continued: c === 0 && ev.turns > 1,
    })),
  );
  const first = await drawSamples(policy, firstSlots, { task: o.task, sampling, cacheScope, degenerate: null, onSamples: report('turn 1') });
  const parallel = todo.map((_, i) => first.slice(i * ev.parallelK, (i + 1) * ev.parallelK).map((d) => d[0]));
  const sequential = parallel.map((p) => [p[0]]);

  for (let turn = 2; turn <= ev.turns; turn++) {
    const slots: Slot[] = todo.map((problem, i) => ({
      key: `${problem.id}|eval|t${turn}|c0`,
      problem,
      conversation: stateConversation(episodeContext(o.prompting, problem), sequential[i].map((s) => s.text), ev.contextWindow),
      candidate: 0,
      continued: turn < ev.turns,
    }));
    const draws = await drawSamples(policy, slots, { task: o.task, sampling, cacheScope, degenerate: null, onSamples: report(`turn ${turn}`) });
    draws.forEach((d, i) => sequential[i].push(d[0]));
  }

  const traces: EvalTrace[] = [];
  for (const [i, problem] of todo.entries()) {
    const record: EvalRecord = { problemId: problem.id, parallel: parallel[i].map(toAnswer), sequential: sequential[i].map(toAnswer) };
    const trace = { problemId: problem.id, parallel: parallel[i], sequential: sequential[i], record };
    traces.push(trace);
    await onProgress?.({ done: i + 1, total, unit: 'problems' });
  }
  const records = traces.map((t) => t.record);
  const all = new Set([...parallel.flat(), ...sequential.flat()]);
  return {
    traces,
    records,
    truncated: [...all].filter((s) => s.finishReason !== 'stop').length,
  };
}

/**
 * A held-out evaluation set: generated problems whose prompt is a training prompt, or repeats one
 * earlier in the set, are left out, so every problem is unseen and counted once.
 */
export function heldOut(problems: readonly Problem[], training: readonly Problem[]): Problem[] {
  const seen = new Set(training.map((p) => p.prompt));
  return problems.filter((p) => {
    if (seen.has(p.prompt)) return false;
    seen.add(p.prompt);
    return true;
  });
}

/**
 * An evaluation trace as an episode, the shape the ledger stores: turn 1 holds the parallel samples
 * (sample 0 is the chain's first turn), turn t ≥ 2 the sequential chain's t-th attempt.
 */
export function traceEpisode(trace: EvalTrace, prompt: string): Episode {
  return {
    problemId: trace.problemId,
    prompt,
    turns: [
      { turn: 1, kind: 'parallel', chosen: 0, samples: trace.parallel },
      ...trace.sequential.slice(1).map((s, i) => ({ turn: i + 2, kind: 'sequential' as const, chosen: 0, samples: [s] })),
    ],
  };
}

/** The parts of an evaluation episode the metrics read: an `Episode`, or the ledger's record of one. */
export interface RecordedEvaluation {
  problemId: string;
  turns: readonly { samples: readonly Pick<Sample, 'answer' | 'reward' | 'logprob' | 'tokens'>[] }[];
}

/** What the metrics read from an evaluation episode (see `traceEpisode`). */
export function episodeRecord(episode: RecordedEvaluation): EvalRecord {
  return { problemId: episode.problemId, parallel: episode.turns[0].samples.map(toAnswer), sequential: episode.turns.map((t) => toAnswer(t.samples[0])) };
}
