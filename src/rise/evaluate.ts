/**
 * Evaluation (RISE.md step 5 and the metrics section): for every problem, `parallelK` independent turn-1
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
import type { RiseConfig } from './config.ts';
import { episodeContext, stateConversation } from './conversation.ts';
import { isCorrect, type Sample } from './episode.ts';
import { computeMetrics, type EvalRecord, type MetricsTable } from './metrics.ts';
import type { Policy, SamplingParams } from './policy.ts';
import type { BatchHooks } from './progress.ts';
import { drawSamples, type Slot } from './sampling.ts';

export interface EvaluateOptions {
  task: Task;
  config: Pick<RiseConfig, 'evaluate' | 'feedback' | 'instruction'>;
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

export interface EvaluateHooks extends BatchHooks {
  /** Called per problem once all its samples are drawn. */
  onTrace?: (trace: EvalTrace) => void | Promise<void>;
}

export interface EvaluationResult {
  traces: EvalTrace[];
  records: EvalRecord[];
  /**
   * Metrics over the problems evaluated in this call. A caller resuming with `skip` computes the table
   * over its stored records plus these with `computeMetrics`.
   */
  table: MetricsTable;
  /** Samples cut by maxTokens or the context rather than ending with the stop token. */
  truncated: number;
}

const toAnswer = (s: Sample) => ({ answer: s.answer, correct: isCorrect(s.reward) });

export async function evaluatePolicy(policy: Policy, problems: Problem[], o: EvaluateOptions, hooks: EvaluateHooks = {}): Promise<EvaluationResult> {
  const ev = o.config.evaluate;
  const skip = hooks.skip ?? new Set<string>();
  const todo = problems.filter((p) => !skip.has(p.id));
  const total = problems.length;
  const skipped = total - todo.length;
  const sampling: SamplingParams = { temperature: ev.temperature, topP: ev.topP, maxTokens: ev.maxTokens, seed: o.seed };
  const report = (stage: string) => (n: number, of: number) => hooks.onProgress?.({ done: skipped, total, unit: 'problems', stage: `${stage}: ${n}/${of} samples` });
  await hooks.onProgress?.({ done: skipped, total, unit: 'problems' });

  const firstSlots: Slot[] = todo.flatMap((problem) =>
    Array.from({ length: ev.parallelK }, (_, c) => ({ key: `${problem.id}|eval|t1|c${c}`, problem, conversation: stateConversation(episodeContext(o.config, problem), []), candidate: c })),
  );
  const first = await drawSamples(policy, firstSlots, { task: o.task, sampling, degenerate: null, onSamples: report('turn 1') });
  const parallel = todo.map((_, i) => first.slice(i * ev.parallelK, (i + 1) * ev.parallelK).map((d) => d[0]));
  const sequential = parallel.map((p) => [p[0]]);

  for (let turn = 2; turn <= ev.turns; turn++) {
    const slots: Slot[] = todo.map((problem, i) => ({
      key: `${problem.id}|eval|t${turn}|c0`,
      problem,
      conversation: stateConversation(episodeContext(o.config, problem), sequential[i].map((s) => s.text), ev.contextWindow),
      candidate: 0,
    }));
    const draws = await drawSamples(policy, slots, { task: o.task, sampling, degenerate: null, onSamples: report(`turn ${turn}`) });
    draws.forEach((d, i) => sequential[i].push(d[0]));
  }

  const traces: EvalTrace[] = [];
  for (const [i, problem] of todo.entries()) {
    const record: EvalRecord = { problemId: problem.id, parallel: parallel[i].map(toAnswer), sequential: sequential[i].map(toAnswer) };
    const trace = { problemId: problem.id, parallel: parallel[i], sequential: sequential[i], record };
    traces.push(trace);
    await hooks.onTrace?.(trace);
    await hooks.onProgress?.({ done: skipped + i + 1, total, unit: 'problems' });
  }
  const records = traces.map((t) => t.record);
  const all = new Set([...parallel.flat(), ...sequential.flat()]);
  return {
    traces,
    records,
    table: computeMetrics(records, { tieBreak: ev.tieBreak, seed: o.seed }),
    truncated: [...all].filter((s) => s.finishReason !== 'stop').length,
  };
}
