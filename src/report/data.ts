/**
 * What a report shows about one run, read from the store into one plain JSON model (`RunReport`) that
 * the markdown, HTML and `--json` renderings share: the spec, every metric point, the turn-to-turn
 * transitions, the training loss of every boost and train step, and the timing of every step in the plan.
 *
 * Metrics are recomputed from the answers in the ledger (src/steps/evaluation.ts) under one tie rule for
 * every arm, so arms compare like with like whatever rule each run was launched with; each point also
 * carries its value under every other rule. One vote weighting likewise holds for the whole report. Runs
 * recorded before plans were stored report the metric rows they wrote.
 *
 * A run still in progress, or one that failed, reports what is done so far: steps not done have no
 * timings or losses, and metrics appear as their evaluations finish.
 */

import { planFromJson, type ModelRole, type Plan, type StepUse } from '../plan/plan.ts';
import { DEFAULT_TIE_BREAK, DEFAULT_VOTE, TIE_BREAKS, type TieBreak, type Transition, type VoteWeighting } from '../rise/metrics.ts';
import { recordedEvaluation, type RecordedEvaluation } from '../steps/evaluation.ts';
import { pairedDifferences, type DifferencePoint, type Evaluated } from './differences.ts';
import { replicatePoints, type ReplicatePoint } from './replicates.ts';
import { stepOfKind, type StepKind } from '../steps/index.ts';
import { doneOutputs } from '../steps/stored.ts';
import type { ExperimentSpec } from '../spec/types.ts';
import { getJson, getStep, quarantinedProblems, readMetrics, type QuarantineRecord, type RunRecord, type StepState, type Store } from '../store/index.ts';

export interface RunSummary {
  id: string;
  experiment: string;
  status: string;
  error: string | null;
  /** ISO 8601. */
  createdAt: string;
  finishedAt: string | null;
}

/** One metric value at one (arm, iteration, eval set) point; `value` is a fraction in 0..1. */
export interface MetricPoint {
  arm: string;
  iteration: number;
  evalSet: string;
  name: string;
  k: number;
  /** Under the report's tie rule. */
  value: number;
  /** Credit summed over the problems (fractional where expected credit split a tie). */
  correct: number | null;
  problems: number | null;
  /** Problems whose vote tied (always 0 for m1@t1 and p1@tk); null where the store does not say. */
  ties: number | null;
  /** The value under every tie rule; null for metric rows of a run recorded without its plan. */
  byRule: Record<TieBreak, number> | null;
}

/** Between consecutive sequential turns of one model on one eval set (metrics.ts). */
export interface TransitionPoint extends Transition {
  arm: string;
  iteration: number;
  evalSet: string;
  problems: number;
}

/** The losses of one boost or train step, which several arms may share. */
export interface TrainingCurve {
  key: string;
  kind: 'boost' | 'train';
  iteration: number;
  /**
   * The arms using the step, with the role a boost plays in each: one boost can be one arm's learner
   * and another's fixed rollout policy (weak-to-strong). Null for train steps.
   */
  uses: { arm: string; model: ModelRole | null }[];
  steps: number;
  /** Null when the step trained for no optimizer step (nothing to train on). */
  firstLoss: number | null;
  lastLoss: number | null;
  /** One per optimizer step. */
  losses: number[];
}

export interface StepTiming {
  key: string;
  /** What the step's random streams derive from (see `Step.seedKey`): equal seed keys draw equal samples. */
  seedKey: string;
  kind: StepKind;
  iteration: number;
  /** The boosted model's roles or the evaluation set, as `rise plan` shows them. */
  label: string;
  arms: string[];
  status: StepState;
  attempts: number;
  /** Compute seconds of the attempt that finished the step; null until it is done. */
  seconds: number | null;
  /** Problems the step gave up on (generation or scoring failed every try), with their errors. */
  quarantined: QuarantineRecord[];
}

export interface RunReport {
  run: RunSummary;
  spec: ExperimentSpec;
  arms: string[];
  evalSets: string[];
  /** The majority-vote tie rule of `metrics[].value`. */
  tieBreak: TieBreak;
  /** The majority-vote weighting of every metric and comparison. */
  vote: VoteWeighting;
  metrics: MetricPoint[];
  transitions: TransitionPoint[];
  /** The comparisons behind the paper's claims, under `tieBreak`, with standard errors (differences.ts). */
  differences: DifferencePoint[];
  /** Headline metrics and comparisons per declared arm over its seeds, under `tieBreak` (replicates.ts). */
  replicates: ReplicatePoint[];
  training: TrainingCurve[];
  steps: StepTiming[];
  /** False for runs recorded before plans were stored: those report metrics only. */
  planned: boolean;
}

interface EvalDetails {
  correct?: number;
  problems?: number;
  ties?: number;
}

export function iterationLabel(iteration: number): string {
  return iteration === 0 ? 'boosted' : `iteration ${iteration}`;
}

/** Every step of the plan once, in the order the arms first use it: its place in each arm using it. */
function distinctSteps(plan: Plan): { arm: string; use: StepUse }[][] {
  const byKey = new Map<string, { arm: string; use: StepUse }[]>();
  for (const arm of plan.arms) {
    for (const use of arm.steps) {
      const uses = byKey.get(use.key) ?? [];
      if (!uses.some((u) => u.arm === arm.name)) uses.push({ arm: arm.name, use });
      byKey.set(use.key, uses);
    }
  }
  return [...byKey.values()];
}

export type RunMetrics = Pick<RunReport, 'arms' | 'evalSets' | 'tieBreak' | 'vote' | 'metrics' | 'transitions' | 'differences' | 'replicates'>;

/** The tie rule a report of the run uses unless told otherwise: the rule its spec chose. */
export function runTieBreak(run: RunRecord): TieBreak {
  return (run.spec as ExperimentSpec).evaluate?.tieBreak ?? DEFAULT_TIE_BREAK;
}

/** The vote weighting a report of the run uses unless told otherwise: the weighting its spec chose. */
export function runVote(run: RunRecord): VoteWeighting {
  return (run.spec as ExperimentSpec).evaluate?.vote ?? DEFAULT_VOTE;
}

/**
 * Metric points and transitions of every evaluation the run has reached (it wrote the metric rows; another
 * run may have computed the step), recomputed from the ledger.
 */
async function recomputed(store: Store, run: RunRecord, plan: Plan, tieBreak: TieBreak, vote: VoteWeighting): Promise<Pick<RunMetrics, 'metrics' | 'transitions' | 'differences' | 'replicates'> & { evaluated: Evaluated[] }> {
  const reached = new Set((await readMetrics(store, { runId: run.id })).map((m) => `${m.arm}\n${m.stepKey}`));
  const read = new Map<string, RecordedEvaluation>();
  const metrics: MetricPoint[] = [];
  const transitions: TransitionPoint[] = [];
  const evaluated: Evaluated[] = [];
  for (const arm of plan.arms) {
    for (const use of arm.steps) {
      if (use.kind !== 'evaluate' || !reached.has(`${arm.name}\n${use.key}`)) continue;
      let evaluation = read.get(use.key);
      if (evaluation === undefined) {
        evaluation = await recordedEvaluation(store, use.key, stepOfKind(plan.steps[use.key], 'evaluate').params, vote);
        read.set(use.key, evaluation);
      }
      const { byRule } = evaluation;
      const place = { arm: arm.name, iteration: use.iteration, evalSet: use.evalSet ?? '' };
      evaluated.push({ ...place, records: evaluation.records, seed: evaluation.seed, vote, metrics: new Set(byRule[tieBreak].rows.map((r) => r.name)) });
      const table = byRule[tieBreak];
      table.rows.forEach((r, i) => {
        metrics.push({
          ...place,
          name: r.name,
          k: r.k,
          value: r.value,
          correct: r.correct,
          problems: r.problems,
          ties: r.ties,
          byRule: Object.fromEntries(TIE_BREAKS.map((rule) => [rule, byRule[rule].rows[i].value])) as Record<TieBreak, number>,
        });
      });
      for (const t of table.transitions) transitions.push({ ...place, ...t, problems: table.problems });
    }
  }
  const arms = plan.arms.map((a) => a.name);
  const spec = run.spec as ExperimentSpec;
  return {
    metrics,
    transitions,
    differences: pairedDifferences(evaluated, arms, tieBreak),
    replicates: replicatePoints(evaluated, arms, tieBreak, (arm) => spec.arms[arm]?.seed ?? spec.seed),
    evaluated,
  };
}

/** The metric rows a run wrote, for runs recorded without their plan. */
async function storedRows(store: Store, run: RunRecord): Promise<MetricPoint[]> {
  return (await readMetrics(store, { runId: run.id })).map((m): MetricPoint => {
    const details = (m.details ?? {}) as EvalDetails;
    return {
      arm: m.arm,
      iteration: m.iteration,
      evalSet: m.evalSet,
      name: m.name,
      k: m.k,
      value: m.value,
      correct: details.correct ?? null,
      problems: details.problems ?? null,
      ties: details.ties ?? null,
      byRule: null,
    };
  });
}

/**
 * The run's metric points and transitions under `tieBreak` and `vote` (default: the run's own), with its
 * arms and eval sets in the spec's order (then any others the metrics name).
 */
export async function readRunMetrics(store: Store, run: RunRecord, tieBreak = runTieBreak(run), vote = runVote(run)): Promise<RunMetrics> {
  const { evaluated: _, ...metrics } = await readRunEvaluations(store, run, tieBreak, vote);
  return metrics;
}

/** `readRunMetrics` with the answers behind them, one `Evaluated` per evaluation reached: what `rise compare` pairs. */
export async function readRunEvaluations(store: Store, run: RunRecord, tieBreak = runTieBreak(run), vote = runVote(run)): Promise<RunMetrics & { evaluated: Evaluated[] }> {
  const spec = run.spec as ExperimentSpec;
  const plan = planFromJson(run.plan);
  const { metrics, transitions, differences, replicates, evaluated } =
    plan === null ? { metrics: await storedRows(store, run), transitions: [], differences: [], replicates: [], evaluated: [] } : await recomputed(store, run, plan, tieBreak, vote);
  const arms = Object.keys(spec.arms);
  for (const m of metrics) if (!arms.includes(m.arm)) arms.push(m.arm);
  const evalSets = spec.task.eval.map((set) => set.name);
  for (const m of metrics) if (!evalSets.includes(m.evalSet)) evalSets.push(m.evalSet);
  return { arms, evalSets, tieBreak, vote, metrics, transitions, differences, replicates, evaluated };
}

/** The report as if made under another tie rule (the HTML page's switch); points without per-rule values stay. */
export function underTieBreak<R extends Pick<RunReport, 'metrics' | 'tieBreak'>>(report: R, tieBreak: TieBreak): R {
  return {
    ...report,
    tieBreak,
    metrics: report.metrics.map((m) => (m.byRule === null ? m : { ...m, value: m.byRule[tieBreak], correct: m.problems === null ? null : m.byRule[tieBreak] * m.problems })),
  };
}

export async function loadRunReport(store: Store, run: RunRecord, tieBreak = runTieBreak(run), vote = runVote(run)): Promise<RunReport> {
  const spec = run.spec as ExperimentSpec;
  const plan = planFromJson(run.plan);
  const steps: StepTiming[] = [];
  const training: TrainingCurve[] = [];
  const quarantine = await quarantinedProblems(store, plan ? Object.keys(plan.steps) : []);
  for (const { uses, seedKey } of plan ? distinctSteps(plan).map((uses) => ({ uses, seedKey: plan.steps[uses[0].use.key].seedKey })) : []) {
    const { use } = uses[0];
    const arms = uses.map((u) => u.arm);
    const info = await getStep(store, use.key);
    const outputs = await doneOutputs(store, use.key, use.kind);
    steps.push({
      key: use.key,
      seedKey,
      kind: use.kind,
      iteration: use.iteration,
      label: [...new Set(uses.map((u) => u.use.model ?? u.use.evalSet ?? ''))].join(' / '),
      arms,
      status: info?.status ?? 'pending',
      attempts: info?.attempts ?? 0,
      seconds: outputs?.seconds ?? null,
      quarantined: quarantine.get(use.key) ?? [],
    });
    const kind = use.kind === 'boost' || use.kind === 'train' ? use.kind : undefined;
    const fitted = kind === undefined ? undefined : await doneOutputs(store, use.key, kind);
    if (kind !== undefined && fitted !== undefined) {
      training.push({
        key: use.key,
        kind,
        iteration: use.iteration,
        uses: uses.map((u) => ({ arm: u.arm, model: u.use.model ?? null })),
        ...fitted.train,
        losses: await getJson<number[]>(store, fitted.losses),
      });
    }
  }

  return {
    run: {
      id: run.id,
      experiment: run.experiment,
      status: run.status,
      error: run.error,
      createdAt: run.createdAt.toISOString(),
      finishedAt: run.finishedAt?.toISOString() ?? null,
    },
    spec,
    ...await readRunMetrics(store, run, tieBreak, vote),
    training,
    steps,
    planned: plan !== null,
  };
}

/** The metric points of one (arm, iteration, eval set), by name. */
export function pointsAt(report: Pick<RunReport, 'metrics'>, arm: string, iteration: number, evalSet: string): Map<string, MetricPoint> {
  return new Map(report.metrics.filter((m) => m.arm === arm && m.iteration === iteration && m.evalSet === evalSet).map((m) => [m.name, m]));
}

/** The iterations with at least one metric for an arm, ascending. */
export function iterationsOf(report: Pick<RunReport, 'metrics'>, arm: string): number[] {
  return [...new Set(report.metrics.filter((m) => m.arm === arm).map((m) => m.iteration))].sort((a, b) => a - b);
}
