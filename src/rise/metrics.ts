/**
 * All evaluation metrics, computed from stored per-turn answers only (so a report can recompute them from
 * the ledger without the model):
 *
 *   mk@t1  majority vote over the first k independent turn-1 samples (m1@t1 = p1@t1 = one sample)
 *   m1@tk  majority vote over the answers of sequential turns 1..k (no oracle: the retry message was sent
 *          after every turn whatever the answer)
 *   p1@tk  correct at any turn ≤ k (with an oracle). Until the first correct turn the oracle and no-oracle
 *          conversations are identical, so this is read off the same sequential log.
 *
 * Majority vote: unparsable answers (null) do not vote; a problem whose answers are all unparsable counts
 * as wrong; among answers tied for the most votes, `latest` picks the one that occurs last, `earliest` the
 * one that occurs first, `random` one drawn from a stream seeded by (seed, problem id, metric), so it is
 * reproducible. Each row reports how many problems had a tie and how many answers were unparsable.
 */

import { Rng } from '../engine/random.ts';

/** How a majority vote picks among answers tied for the most votes. */
export const TIE_BREAKS = ['latest', 'earliest', 'random'] as const;
export type TieBreak = (typeof TIE_BREAKS)[number];

/** The metrics every table leads with: one turn, five parallel samples, five turns, five turns with the oracle. */
export const HEADLINE_METRICS = ['m1@t1', 'm5@t1', 'm1@t5', 'p1@t5'] as const;

export interface AnswerRecord {
  /** The task's extracted, canonical answer; null if unparsable. */
  answer: string | null;
  correct: boolean;
}

export interface EvalRecord {
  problemId: string;
  /** Independent turn-1 samples (evaluate.ts makes sample 0 the first sequential turn as well). */
  parallel: AnswerRecord[];
  /** Turn 1..T of one conversation, the retry message sent after every turn. */
  sequential: AnswerRecord[];
}

export interface Vote {
  /** The winning answer, null when every answer was unparsable. */
  answer: string | null;
  correct: boolean;
  /** More than one answer had the most votes. */
  tie: boolean;
  unparsable: number;
}

export interface VoteOptions {
  tieBreak: TieBreak;
  /** Random tie-breaking only: the seed and names of the stream (e.g. problem id and metric). */
  seed?: number;
  streamParts?: (string | number)[];
}

export function majorityVote(answers: readonly AnswerRecord[], o: VoteOptions): Vote {
  const tally = new Map<string, { votes: number; first: number; last: number; correct: boolean }>();
  let unparsable = 0;
  answers.forEach((a, i) => {
    if (a.answer === null) {
      unparsable++;
      return;
    }
    const t = tally.get(a.answer);
    if (t) {
      t.votes++;
      t.last = i;
      t.correct = a.correct;
    } else {
      tally.set(a.answer, { votes: 1, first: i, last: i, correct: a.correct });
    }
  });
  if (tally.size === 0) return { answer: null, correct: false, tie: false, unparsable };
  const most = Math.max(...[...tally.values()].map((t) => t.votes));
  const tied = [...tally.entries()].filter(([, t]) => t.votes === most);
  let winner = tied[0];
  if (tied.length > 1) {
    if (o.tieBreak === 'latest') winner = tied.reduce((a, b) => (b[1].last > a[1].last ? b : a));
    else if (o.tieBreak === 'earliest') winner = tied.reduce((a, b) => (b[1].first < a[1].first ? b : a));
    else {
      // Tied in order of first occurrence, so the draw does not depend on Map internals.
      tied.sort((a, b) => a[1].first - b[1].first);
      winner = tied[new Rng(o.seed ?? 0, 'tie', ...(o.streamParts ?? [])).int(tied.length)];
    }
  }
  return { answer: winner[0], correct: winner[1].correct, tie: tied.length > 1, unparsable };
}

export interface MetricRow {
  /** e.g. "m5@t1", "m1@t5", "p1@t5". */
  name: string;
  family: 'parallel' | 'sequential' | 'oracle';
  k: number;
  /** Fraction of problems correct. */
  value: number;
  correct: number;
  problems: number;
  /** Problems whose vote had a tie (0 for p1@tk, which does not vote). */
  ties: number;
  /** Unparsable answers among those the metric looked at. */
  unparsable: number;
  /** Problems where every answer looked at was unparsable. */
  allUnparsable: number;
}

export interface MetricsTable {
  problems: number;
  parallelK: number;
  turns: number;
  rows: MetricRow[];
}

export interface MetricsOptions {
  tieBreak: TieBreak;
  seed?: number;
}

/**
 * Rows: m1@t1 … mK@t1 (K = fewest parallel samples over the problems), then m1@t2 … m1@tT and p1@t1 …
 * p1@tT (T = fewest sequential turns). m1@t1 comes from parallel sample 0; evaluate.ts makes that the same
 * sample as sequential turn 1, so it is also m1@t1 of the sequential family.
 */
export function computeMetrics(records: readonly EvalRecord[], o: MetricsOptions): MetricsTable {
  const n = records.length;
  const parallelK = n === 0 ? 0 : Math.min(...records.map((r) => r.parallel.length));
  const turns = n === 0 ? 0 : Math.min(...records.map((r) => r.sequential.length));
  const rows: MetricRow[] = [];
  const row = (name: string, family: MetricRow['family'], k: number, outcomes: { correct: boolean; tie: boolean; unparsable: number; seen: number }[]) => {
    const correct = outcomes.filter((x) => x.correct).length;
    rows.push({
      name,
      family,
      k,
      value: n === 0 ? 0 : correct / n,
      correct,
      problems: n,
      ties: outcomes.filter((x) => x.tie).length,
      unparsable: outcomes.reduce((a, x) => a + x.unparsable, 0),
      allUnparsable: outcomes.filter((x) => x.seen > 0 && x.unparsable === x.seen).length,
    });
  };
  const vote = (r: EvalRecord, answers: AnswerRecord[], name: string) => ({
    ...majorityVote(answers, { tieBreak: o.tieBreak, seed: o.seed, streamParts: [r.problemId, name] }),
    seen: answers.length,
  });
  for (let k = 1; k <= parallelK; k++) {
    const name = `m${k}@t1`;
    row(name, 'parallel', k, records.map((r) => vote(r, r.parallel.slice(0, k), name)));
  }
  for (let k = parallelK > 0 ? 2 : 1; k <= turns; k++) {
    const name = `m1@t${k}`;
    row(name, 'sequential', k, records.map((r) => vote(r, r.sequential.slice(0, k), name)));
  }
  for (let k = 1; k <= turns; k++) {
    row(`p1@t${k}`, 'oracle', k, records.map((r) => {
      const firstCorrect = r.sequential.findIndex((a) => a.correct);
      // With an oracle the conversation ends at the first correct turn: later answers are never seen.
      const seen = r.sequential.slice(0, firstCorrect >= 0 ? Math.min(k, firstCorrect + 1) : k);
      return { correct: firstCorrect >= 0 && firstCorrect < k, tie: false, unparsable: seen.filter((a) => a.answer === null).length, seen: seen.length };
    }));
  }
  return { problems: n, parallelK, turns, rows };
}

/** A metric's value by name; throws if the table lacks it, so a typo cannot read as 0. */
export function metricValue(table: MetricsTable, name: string): number {
  const r = table.rows.find((x) => x.name === name);
  if (!r) throw new Error(`metrics table has no "${name}" (has ${table.rows.map((x) => x.name).join(', ')})`);
  return r.value;
}

const pct = (v: number) => (100 * v).toFixed(1);

/** Markdown: one row per metric with its counts. */
export function formatMetricsTable(table: MetricsTable): string {
  const lines = ['| metric | value (%) | correct | problems | ties | unparsable | all unparsable |', '|---|---:|---:|---:|---:|---:|---:|'];
  for (const r of table.rows) lines.push(`| ${r.name} | ${pct(r.value)} | ${r.correct} | ${r.problems} | ${r.ties} | ${r.unparsable} | ${r.allUnparsable} |`);
  return lines.join('\n');
}

/** Markdown: chosen metrics (columns) for several labelled tables (rows), e.g. iterations side by side. */
export function formatComparison(entries: readonly { label: string; table: MetricsTable }[], names: readonly string[]): string {
  const lines = [`| model | ${names.join(' | ')} |`, `|---|${names.map(() => '---:').join('|')}|`];
  for (const e of entries) lines.push(`| ${e.label} | ${names.map((nm) => pct(metricValue(e.table, nm))).join(' | ')} |`);
  return lines.join('\n');
}
