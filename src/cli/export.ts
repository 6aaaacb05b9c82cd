/**
 * `rise export RUN --what rollouts|examples|metrics --format jsonl|csv`: a run's data as flat rows other
 * tools read. Rollouts: every sample drawn in the run's rollout and relabel steps (one row per sample,
 * `chosen` marking each turn's attempt); examples: every filter decision with its drop rule, the
 * conversation and target it trains on, the sample it came from, and its weight under each train step
 * that reads it (see src/report/examples.ts); metrics: every metric of every arm, iteration and evaluation
 * set. A step shared by arms is exported once, with the arms that use it.
 *
 * JSONL nests an example's `messages` ([{role, content}]); CSV flattens them into `context`, one text
 * with a `[role]` line before each message.
 */

import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { InvalidArgumentError, type Command } from 'commander';
import { stringify } from 'csv-stringify/sync';
import { planFromJson, stepArms } from '../plan/plan.ts';
import type { Message } from '../rise/conversation.ts';
import type { TieBreak, VoteWeighting } from '../rise/metrics.ts';
import { runTieBreak, runVote } from '../report/data.ts';
import { doneSteps } from '../report/done-steps.ts';
import { contextText, exampleRows } from '../report/examples.ts';
import { readEpisodes, readMetrics, type RunRecord, type Store } from '../store/index.ts';
import { UsageError } from './errors.ts';
import { findRun, withStore } from './runs.ts';

const WHAT = ['rollouts', 'examples', 'metrics'] as const;
const FORMATS = ['jsonl', 'csv'] as const;
type What = (typeof WHAT)[number];
type Format = (typeof FORMATS)[number];
type Row = Record<string, string | number | boolean | null | Message[]>;

function oneOf<T extends string>(values: readonly T[]) {
  return (value: string): T => {
    if (!(values as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${values.join(', ')}`);
    return value as T;
  };
}

async function* rows(store: Store, run: RunRecord, what: What): AsyncGenerator<Row> {
  if (what === 'metrics') {
    for (const m of await readMetrics(store, { runId: run.id })) {
      // Rows written before tie counts, rules and vote weightings were recorded lack them: the run's spec names the rule and weighting.
      const { ties = null, tieBreak = runTieBreak(run), vote = runVote(run) } = (m.details ?? {}) as { ties?: number; tieBreak?: TieBreak; vote?: VoteWeighting };
      yield { run: run.id, arm: m.arm, iteration: m.iteration, evalSet: m.evalSet, metric: m.name, k: m.k, value: m.value, ties, tieBreak, vote, step: m.stepKey };
    }
    return;
  }
  const plan = planFromJson(run.plan);
  if (plan === null) throw new UsageError(`run ${run.id} has no recorded plan, so its steps are unknown`);
  if (what === 'examples') {
    // An interface has no index signature, so each row is copied into a Row; its key order is the column order.
    for await (const row of exampleRows(store, plan, await doneSteps(store, plan, ['filter']), stepArms(plan))) yield { ...row };
    return;
  }
  for (const s of await doneSteps(store, plan, ['rollout', 'relabel'])) {
    for (const episode of await readEpisodes(store, s.key)) {
      for (const turn of episode.turns) {
        for (const [index, sample] of turn.samples.entries()) {
          yield {
            step: s.key,
            kind: s.kind,
            arms: s.arms,
            iteration: s.iteration,
            problemId: episode.problemId,
            prompt: episode.prompt ?? null,
            turn: turn.turn,
            sample: index,
            chosen: index === turn.chosen,
            source: sample.source ?? null,
            text: sample.text,
            answer: sample.answer,
            reward: sample.reward,
            tokens: sample.tokens,
            logprob: sample.logprob,
            finishReason: sample.finishReason ?? null,
            degenerate: sample.degenerate ?? null,
          };
        }
      }
    }
  }
}

/** A row for CSV: messages flattened into one `context` cell, in their column's place. */
function csvRow(row: Row): Record<string, string | number | boolean | null> {
  return Object.fromEntries(Object.entries(row).map(([k, v]) => (Array.isArray(v) ? [k === 'messages' ? 'context' : k, contextText(v)] : [k, v])));
}

async function exportRun(id: string, options: { what: What; format: Format; out?: string }): Promise<void> {
  await withStore(async (store) => {
    const run = await findRun(store, id);
    const sink = options.out === undefined ? process.stdout : createWriteStream(options.out);
    let header = true;
    let count = 0;
    for await (const row of rows(store, run, options.what)) {
      const line = options.format === 'jsonl' ? `${JSON.stringify(row)}\n` : stringify([csvRow(row)], { header, cast: { boolean: (b) => String(b) } });
      header = false;
      count++;
      if (!sink.write(line)) await once(sink, 'drain');
    }
    if (sink !== process.stdout) {
      sink.end();
      await once(sink, 'finish');
      process.stderr.write(`wrote ${count} ${options.what} rows to ${options.out}\n`);
    }
  });
}

export function registerExportCommand(program: Command): void {
  program
    .command('export')
    .description('write a run\'s rollouts (every sample), examples (every filter decision, with its text and weight) or metrics as JSONL or CSV')
    .argument('<run>', 'run id (as `rise run` printed it)')
    .requiredOption('--what <what>', `one of ${WHAT.join(', ')}`, oneOf(WHAT))
    .option('--format <format>', `one of ${FORMATS.join(', ')}`, oneOf(FORMATS), 'jsonl')
    .option('--out <file>', 'write to this file instead of stdout')
    .action(async (id: string, options: { what: What; format: Format; out?: string }) => {
      await exportRun(id, options);
    });
}
