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
 * as wrong. When several answers share the most votes, which one "wins" is a convention that the paper
 * does not state, and it moves headline numbers by several points (with k = 2 any two different answers
 * tie). The default, `expected`, gives a tie among m answers 1/m credit for each right one among them:
 * the expectation over a uniformly random pick, with no seed. `latest` and `earliest` pick the answer
 * whose occurrence is last or first; `random` draws from a stream seeded by (seed, problem id, metric).
 * Each row counts the problems whose vote tied, so a reader sees how much the rule could matter.
 *
 * Vote weighting: each answer's vote may count for more than one. `uniform` (every answer 1) is the
 * paper's plain majority. `recency` weighs sequential turn t by t: RISE conditions each turn on the earlier
 * ones, so a late revision has seen more of the conversation than an early slip. Parallel samples are
 * exchangeable (independent draws of one distribution; their order is only the order they were drawn), so
 * recency leaves mk@t1 a plain majority. `confidence` weighs an answer by the geometric mean of its tokens'
 * probabilities under the sampling model, exp(log-prob / tokens): the model's own per-token certainty, which
 * does not favour short answers as the summed log-prob would; it applies to both families. Tie rules then
 * decide among the answers with the greatest weight.
 *
 * Turn-to-turn transitions (right→wrong, wrong→right, … between consecutive sequential turns) are what
 * RISE exists to change: a model that improves its answers turns wrong into right and keeps right.
 */

import { Rng } from '../engine/random.ts';

/** How a majority vote credits answers tied for the most votes. */
export const TIE_BREAKS = ['expected', 'latest', 'earliest', 'random'] as const;
export type TieBreak = (typeof TIE_BREAKS)[number];
export const DEFAULT_TIE_BREAK: TieBreak = 'expected';

/** How tables and reports name each rule. */
export const TIE_BREAK_LABELS: Record<TieBreak, string> = {
  expected: 'expected credit (a tie among m answers counts 1/m per right one)',
  latest: 'latest (the tied answer given last wins)',
  earliest: 'earliest (the tied answer given first wins)',
  random: 'random (a seeded draw among the tied answers)',
};

/** How much each answer's vote counts. */
export const VOTE_WEIGHTINGS = ['uniform', 'recency', 'confidence'] as const;
export type VoteWeighting = (typeof VOTE_WEIGHTINGS)[number];
export const DEFAULT_VOTE: VoteWeighting = 'uniform';

/** How tables and reports name each weighting. */
export const VOTE_LABELS: Record<VoteWeighting, string> = {
  uniform: 'uniform (one answer, one vote)',
  recency: 'recency (sequential turn t weighs t)',
  confidence: 'confidence (exp of the answer\'s mean token log-prob)',
};

/** Whether a metric votes over more than one answer (mk@t1, m1@tk with k ≥ 2), so a tie rule can decide it. */
export function isVoted(name: string): boolean {
  const m = /^m(\d+)@t(\d+)$/.exec(name);
  return m !== null && Number(m[1]) * Number(m[2]) > 1;
}

/** The metrics every table leads with: one turn, five parallel samples, five turns, five turns with the oracle. */
export const HEADLINE_METRICS = ['m1@t1', 'm5@t1', 'm1@t5', 'p1@t5'] as const;

export interface AnswerRecord {
  /** The task's extracted, canonical answer; null if unparsable. */
  answer: string | null;
  correct: boolean;
  /** Summed log-probability of the sample's tokens and their count: what `confidence` weighting reads. */
  logprob?: number;
  tokens?: number;
}

export interface EvalRecord {
  problemId: string;
  /** Independent turn-1 samples (evaluate.ts makes sample 0 the first sequential turn as well). */
  parallel: AnswerRecord[];
  /** Turn 1..T of one conversation, the retry message sent after every turn. */
  sequential: AnswerRecord[];
}

export interface Vote {
  /** The answers with the most votes, in order of first occurrence; empty when every answer was unparsable. */
  top: string[];
  /** 1 for a right vote, 0 for a wrong one; under `expected`, the share of right answers among `top`. */
  credit: number;
  unparsable: number;
}

export interface VoteOptions {
  tieBreak: TieBreak;
  /** Default `uniform`. */
  weighting?: VoteWeighting;
  /** Whether the answers are sequential turns (recency weighs them) rather than exchangeable samples. */
  sequential?: boolean;
  /** Random tie-breaking only: the seed and names of the stream (e.g. problem id and metric). */
  seed?: number;
  streamParts?: (string | number)[];
}

/** The weight of answer `i` (0-based) of a vote. */
function voteWeight(a: AnswerRecord, i: number, o: VoteOptions): number {
  const weighting = o.weighting ?? DEFAULT_VOTE;
  if (weighting === 'recency') return o.sequential ? i + 1 : 1;
  if (weighting === 'uniform') return 1;
  if (a.logprob === undefined || a.tokens === undefined) throw new Error('confidence-weighted vote over an answer without its log-probability');
  // A sample of no tokens says nothing of the model's certainty; only an engine fault makes one.
  return a.tokens > 0 ? Math.exp(a.logprob / a.tokens) : 0;
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
    const weight = voteWeight(a, i, o);
    if (t) {
      t.votes += weight;
      t.last = i;
      t.correct = a.correct;
    } else {
      tally.set(a.answer, { votes: weight, first: i, last: i, correct: a.correct });
    }
  });
  if (tally.size === 0) return { top: [], credit: 0, unparsable };
  const most = Math.max(...[...tally.values()].map((t) => t.votes));
  // In order of first occurrence (Map order), so no rule depends on Map internals.
  const tied = [...tally.entries()].filter(([, t]) => t.votes === most);
  const top = tied.map(([answer]) => answer);
  const right = (t: (typeof tied)[number]) => (t[1].correct ? 1 : 0);
  let credit: number;
  if (o.tieBreak === 'expected') credit = tied.reduce((sum, t) => sum + right(t), 0) / tied.length;
  else if (o.tieBreak === 'latest') credit = right(tied.reduce((a, b) => (b[1].last > a[1].last ? b : a)));
  else if (o.tieBreak === 'earliest') credit = right(tied[0]);
  else credit = right(tied.length === 1 ? tied[0] : tied[new Rng(o.seed ?? 0, 'tie', ...(o.streamParts ?? [])).int(tied.length)]);
  return { top, credit, unparsable };
}

export interface MetricRow {
  /** e.g. "m5@t1", "m1@t5", "p1@t5". */
  name: string;
  family: 'parallel' | 'sequential' | 'oracle';
  k: number;
  /** Fraction of problems correct: `correct / problems`. */
  value: number;
  /** Credit summed over the problems; a whole number except where expected credit split a tie. */
  correct: number;
  problems: number;
  /** Problems whose vote had a tie (0 for p1@tk, which does not vote). */
  ties: number;
  /** Unparsable answers among those the metric looked at. */
  unparsable: number;
  /** Problems where every answer looked at was unparsable. */
  allUnparsable: number;
}

/** Between sequential turn `turn` and the next: how many problems kept, lost or gained a right answer. */
export interface Transition {
  turn: number;
  rightToRight: number;
  rightToWrong: number;
  wrongToRight: number;
  wrongToWrong: number;
}

export interface MetricsTable {
  problems: number;
  parallelK: number;
  turns: number;
  tieBreak: TieBreak;
  rows: MetricRow[];
  /** One per pair of consecutive turns (none with fewer than two); unparsable answers count as wrong. */
  transitions: Transition[];
}

export interface MetricsOptions {
  tieBreak: TieBreak;
  seed?: number;
  /** Default `uniform`. */
  vote?: VoteWeighting;
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
  const row = (name: string, family: MetricRow['family'], k: number) => {
    const outcomes = records.map((r) => outcome(r, family, k, name, o));
    const correct = outcomes.reduce((sum, x) => sum + x.credit, 0);
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
  for (let k = 1; k <= parallelK; k++) row(`m${k}@t1`, 'parallel', k);
  for (let k = parallelK > 0 ? 2 : 1; k <= turns; k++) row(`m1@t${k}`, 'sequential', k);
  for (let k = 1; k <= turns; k++) row(`p1@t${k}`, 'oracle', k);
  return { problems: n, parallelK, turns, tieBreak: o.tieBreak, rows, transitions: turnTransitions(records, turns) };
}

interface Outcome {
  credit: number;
  tie: boolean;
  unparsable: number;
  /** Answers the metric looked at. */
  seen: number;
}

/** One problem's outcome on metric `name`, of `family` at `k`. */
function outcome(r: EvalRecord, family: MetricRow['family'], k: number, name: string, o: MetricsOptions): Outcome {
  if (family === 'oracle') {
    const firstCorrect = r.sequential.findIndex((a) => a.correct);
    // With an oracle the conversation ends at the first correct turn: later answers are never seen.
    const seen = r.sequential.slice(0, firstCorrect >= 0 ? Math.min(k, firstCorrect + 1) : k);
    return { credit: firstCorrect >= 0 && firstCorrect < k ? 1 : 0, tie: false, unparsable: seen.filter((a) => a.answer === null).length, seen: seen.length };
  }
  const answers = (family === 'parallel' ? r.parallel : r.sequential).slice(0, k);
  const v = majorityVote(answers, { tieBreak: o.tieBreak, weighting: o.vote, sequential: family === 'sequential', seed: o.seed, streamParts: [r.problemId, name] });
  return { credit: v.credit, tie: v.top.length > 1, unparsable: v.unparsable, seen: answers.length };
}

/** Each problem's credit on metric `name` (m1@t1, m5@t1, m1@t5, p1@t5, …), by problem id. */
export function problemCredits(records: readonly EvalRecord[], name: string, o: MetricsOptions): Map<string, number> {
  const m = /^([mp])(\d+)@t(\d+)$/.exec(name);
  if (m === null || (m[2] !== '1' && m[3] !== '1') || (m[1] === 'p' && m[2] !== '1')) throw new Error(`"${name}" is no metric (mk@t1, m1@tk or p1@tk)`);
  const family: MetricRow['family'] = m[1] === 'p' ? 'oracle' : m[3] === '1' ? 'parallel' : 'sequential';
  const k = Number(family === 'parallel' ? m[2] : m[3]);
  return new Map(records.map((r) => [r.problemId, outcome(r, family, k, name, o).credit]));
}

/** The mean of `a − b` over the problems both score, with its standard error: a difference on the same problems. */
export interface PairedDifference {
  difference: number;
  /** Standard error of the mean difference (sample standard deviation over √n); 0 with fewer than 2 problems. */
  se: number;
  problems: number;
}

/**
 * Paired over problems, so the variation between problems, which both sides share, cancels: two models
 * on one eval set, or two metrics of one model. Both sides must score the same problems.
 */
export function pairedDifference(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): PairedDifference {
  if (!sameProblems(a, b)) throw new Error(`paired difference over different problems (${a.size} and ${b.size})`);
  const { mean, se } = meanSe([...a].map(([id, x]) => x - b.get(id)!));
  return { difference: mean, se, problems: a.size };
}

/** Whether two sides scored exactly the same problems, so they can be paired. */
export function sameProblems(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): boolean {
  return a.size === b.size && [...a.keys()].every((id) => b.has(id));
}

/** A mean with its standard error: the sample standard deviation over √n; 0 with fewer than 2 values. */
export function meanSe(xs: readonly number[]): { mean: number; se: number } {
  const n = xs.length;
  if (n === 0) return { mean: 0, se: 0 };
  const mean = xs.reduce((s, x) => s + x, 0) / n;
  const variance = n < 2 ? 0 : xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1);
  return { mean, se: Math.sqrt(variance / n) };
}

/**
 * `mean(a) − mean(b)` over different problems, which cannot be paired: each mean's standard error from its
 * own problems' credits (for 0/1 credits, the binomial √(p(1−p)/(n−1))), combined as independent.
 */
export function unpairedDifference(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): { difference: number; se: number } {
  const [x, y] = [meanSe([...a.values()]), meanSe([...b.values()])];
  return { difference: x.mean - y.mean, se: Math.hypot(x.se, y.se) };
}

/** Transitions between consecutive sequential turns 1..turns, over every problem. */
export function turnTransitions(records: readonly EvalRecord[], turns: number): Transition[] {
  return Array.from({ length: Math.max(0, turns - 1) }, (_, i) => {
    const t: Transition = { turn: i + 1, rightToRight: 0, rightToWrong: 0, wrongToRight: 0, wrongToWrong: 0 };
    for (const r of records) {
      const [before, after] = [r.sequential[i].correct, r.sequential[i + 1].correct];
      if (before) t[after ? 'rightToRight' : 'rightToWrong']++;
      else t[after ? 'wrongToRight' : 'wrongToWrong']++;
    }
    return t;
  });
}

/** A metric's value by name; throws if the table lacks it, so a typo cannot read as 0. */
export function metricValue(table: MetricsTable, name: string): number {
  const r = table.rows.find((x) => x.name === name);
  if (!r) throw new Error(`metrics table has no "${name}" (has ${table.rows.map((x) => x.name).join(', ')})`);
  return r.value;
}
