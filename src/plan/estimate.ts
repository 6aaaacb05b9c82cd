/**
 * What a plan would cost to run, before running it: per step, the tokens it samples (rollout, relabel,
 * evaluate) or trains on (boost, train), and the seconds that takes on this machine.
 *
 * Tokens start from an upper bound the step's params give (problems × episodes × candidates × turns ×
 * maxTokens; examples × epochs × the model's context), scaled by how much of its bound the same kind of
 * step filled in the store's history (rollouts stop at the end token; relabel only redraws wrong
 * attempts). Seconds are tokens over a throughput measured on this machine: the store's finished steps
 * run by the same graph (same model and optimizer, so the same compute digest), or a calibration of that
 * graph. Every figure says where it came from; without history or calibration a step's tokens are its
 * bound and its seconds unknown.
 */

import type { Plan } from './plan.ts';
import type { BoostParams, EvaluateParams, ProblemSetParams, RelabelParams, RolloutParams, Step, StepKind, TrainParams } from '../steps/index.ts';

/** What a step's compute is measured in: generated tokens, trained tokens, or nothing worth counting (filter). */
export type Work = 'sample' | 'train' | 'none';

export const WORK: Record<StepKind, Work> = { boost: 'train', rollout: 'sample', relabel: 'sample', filter: 'none', train: 'train', evaluate: 'sample' };

/**
 * Problem counts the params leave open: a file read whole, by its content digest; and the problems an
 * evaluation has once the training prompts are held out of a generated set, by the evaluate step's key.
 */
export type SetSizes = Record<string, number>;

/** The most work a step can do, from its params and its inputs' params. */
export interface Bound {
  work: Work;
  /** Sampling steps: samples drawn at most. Training steps: examples at most, once per epoch. */
  items: number;
  tokens: number;
}

function setSize(set: ProblemSetParams, sizes: SetSizes): number {
  if (set.kind === 'arithmetic') return set.count;
  const size = sizes[set.sha256];
  if (size === undefined) throw new Error(`estimate: no size for data file ${set.sha256.slice(0, 12)}`);
  return set.count === null ? size : Math.min(set.count, size);
}

/** The longest sequence a training step's model takes: its examples are at most this long. */
function contextOf(steps: Record<string, Step>, key: string): number {
  const step = steps[key];
  if (step.kind === 'boost') {
    const { model } = step.params as BoostParams;
    return model.kind === 'builtin' ? model.config.context : model.config.context;
  }
  if (step.kind === 'train') return contextOf(steps, step.inputs[1]);
  throw new Error(`estimate: step ${key.slice(0, 12)} (${step.kind}) is not a model`);
}

/** Episodes a rollout step collects. */
function episodes(p: RolloutParams, sizes: SetSizes): number {
  return setSize(p.train, sizes) * p.samples;
}

/** The upper bound of one step of `steps` (a plan's, or a stored run's). */
export function stepBound(steps: Record<string, Step>, key: string, sizes: SetSizes): Bound {
  const step = steps[key];
  switch (step.kind) {
    case 'rollout': {
      const p = step.params as RolloutParams;
      const items = episodes(p, sizes);
      return { work: 'sample', items, tokens: items * p.maxTokens };
    }
    case 'relabel': {
      const p = step.params as RelabelParams;
      // Every episode wrong at every turn, every candidate drawn.
      const items = episodes(steps[step.inputs[0]].params as RolloutParams, sizes) * (p.turns - 1) * p.samples;
      return { work: 'sample', items, tokens: items * p.maxTokens };
    }
    case 'evaluate': {
      const p = step.params as EvaluateParams;
      // Sample 0 of the parallel draws is also turn 1 of the sequential chain.
      const items = (sizes[key] ?? setSize(p.set, sizes)) * (p.evaluate.parallelK + p.evaluate.turns - 1);
      return { work: 'sample', items, tokens: items * p.evaluate.maxTokens };
    }
    case 'boost': {
      const p = step.params as BoostParams;
      const items = Math.ceil(setSize(p.train, sizes) / p.boost.pack) * p.boost.epochs;
      return { work: 'train', items, tokens: items * contextOf(steps, key) };
    }
    case 'train': {
      const p = step.params as TrainParams;
      // One example per turn of every episode the filter reads.
      const examples = steps[step.inputs[0]].inputs.reduce((n, relabel) => {
        const r = steps[relabel];
        return n + episodes(steps[r.inputs[0]].params as RolloutParams, sizes) * (r.params as RelabelParams).turns;
      }, 0);
      const items = examples * p.optimizer.epochs;
      return { work: 'train', items, tokens: items * contextOf(steps, key) };
    }
    case 'filter':
      return { work: 'none', items: 0, tokens: 0 };
  }
}

/** Which graph computes a step: the compute digest its throughput is a property of. */
export function graphOf(step: Step): string | null {
  const compute = step.compute as Record<string, unknown>;
  const digest = WORK[step.kind] === 'sample' ? compute.decode : WORK[step.kind] === 'train' ? compute.train_step : undefined;
  return typeof digest === 'string' ? digest : null;
}

/** A finished step as history: its bound (from the plan it ran in) against what it did, and its seconds. */
export interface StepHistory {
  kind: StepKind;
  graph: string | null;
  bound: Bound;
  /** Tokens sampled or trained; null when the step did not record them (training before they were). */
  tokens: number | null;
  seconds: number;
}

/** Tokens a graph processes per second on this machine, measured by `rise plan --calibrate`. */
export interface CalibratedRate {
  graph: string;
  work: Exclude<Work, 'none'>;
  tokensPerSecond: number;
}

/** What `rise plan --calibrate` measured: rates per graph, and the exact tokens of steps it could count (boosts), by key. */
export interface Calibration {
  rates: CalibratedRate[];
  tokens: Record<string, number>;
}

export const NO_CALIBRATION: Calibration = { rates: [], tokens: {} };

export interface StepEstimate {
  key: string;
  kind: StepKind;
  work: Work;
  bound: Bound;
  /** Expected tokens: counted by calibration, the bound scaled by history, or the bound itself. */
  tokens: number;
  basis: 'counted' | 'history' | 'bound';
  tokensFrom: string;
  /** Null when no throughput is known for the step's graph. */
  seconds: number | null;
  secondsFrom: string;
}

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** A rate (tokens per second) from history: every finished step on the same graph doing the same work, this kind first. */
function historyRate(kind: StepKind, work: Work, graph: string | null, history: readonly StepHistory[]): { rate: number; from: string } | null {
  const usable = history.filter((h) => h.graph !== null && h.graph === graph && h.tokens !== null && h.seconds > 0 && WORK[h.kind] === work);
  const own = usable.filter((h) => h.kind === kind);
  const pick = own.length > 0 ? own : usable;
  if (pick.length === 0) return null;
  const rate = sum(pick.map((h) => h.tokens!)) / sum(pick.map((h) => h.seconds));
  const kinds = [...new Set(pick.map((h) => h.kind))].join('/');
  return { rate, from: `${Math.round(rate)} tok/s over ${plural(pick.length, `finished ${kinds} step`)} on this graph` };
}

/** How full its bound a step of this kind ran, over the history that recorded its tokens. */
function historyFill(kind: StepKind, history: readonly StepHistory[]): { fill: number; n: number } | null {
  const own = history.filter((h) => h.kind === kind && h.tokens !== null && h.bound.tokens > 0);
  if (own.length === 0) return null;
  return { fill: sum(own.map((h) => h.tokens!)) / sum(own.map((h) => h.bound.tokens)), n: own.length };
}

/** The estimate of one step of `plan`. */
export function estimateStep(plan: Plan, key: string, sizes: SetSizes, history: readonly StepHistory[], calibration: Calibration): StepEstimate {
  const step = plan.steps[key];
  const bound = stepBound(plan.steps, key, sizes);
  const base = { key, kind: step.kind, work: bound.work, bound };
  if (bound.work === 'none') {
    const own = history.filter((h) => h.kind === step.kind);
    return own.length === 0
      ? { ...base, tokens: 0, basis: 'bound', tokensFrom: '', seconds: null, secondsFrom: `no finished ${step.kind} step to time` }
      : { ...base, tokens: 0, basis: 'bound', tokensFrom: '', seconds: sum(own.map((h) => h.seconds)) / own.length, secondsFrom: `mean of ${plural(own.length, `finished ${step.kind} step`)}` };
  }
  const exact = calibration.tokens[key];
  const fill = historyFill(step.kind, history);
  const tokens = exact ?? (fill === null ? bound.tokens : Math.round(bound.tokens * fill.fill));
  const basis = exact !== undefined ? 'counted' : fill === null ? 'bound' : 'history';
  const tokensFrom =
    exact !== undefined
      ? 'counted: its examples × epochs'
      : fill === null
        ? 'the bound (no history of this kind)'
        : `${(fill.fill * 100).toFixed(1)} % of the bound, as in ${plural(fill.n, `finished ${step.kind} step`)}`;
  const graph = graphOf(step);
  const fromHistory = historyRate(step.kind, bound.work, graph, history);
  const calibrated = calibration.rates.find((c) => c.graph === graph && c.work === bound.work);
  const rate = fromHistory ?? (calibrated ? { rate: calibrated.tokensPerSecond, from: `${Math.round(calibrated.tokensPerSecond)} tok/s calibrated on this graph` } : null);
  if (rate === null) return { ...base, tokens, basis, tokensFrom, seconds: null, secondsFrom: 'no rate for this graph: no finished step ran it here (try --calibrate)' };
  return { ...base, tokens, basis, tokensFrom, seconds: tokens / rate.rate, secondsFrom: rate.from };
}

export interface PlanEstimate {
  steps: StepEstimate[];
  /** Sums over distinct steps that would run, and over those the store has done (reused). */
  toRun: Totals;
  reused: Totals;
}

export interface Totals {
  steps: number;
  sampled: number;
  trained: number;
  /** Seconds of the steps whose rate is known, and how many steps have none. */
  seconds: number;
  unknown: number;
}

function totals(estimates: readonly StepEstimate[]): Totals {
  return {
    steps: estimates.length,
    sampled: sum(estimates.filter((e) => e.work === 'sample').map((e) => e.tokens)),
    trained: sum(estimates.filter((e) => e.work === 'train').map((e) => e.tokens)),
    seconds: sum(estimates.map((e) => e.seconds ?? 0)),
    unknown: estimates.filter((e) => e.seconds === null).length,
  };
}

/** Every distinct step of `plan` estimated, with totals of what would run (`done` false) and what is reused. */
export function estimatePlan(plan: Plan, done: (key: string) => boolean, sizes: SetSizes, history: readonly StepHistory[], calibration: Calibration): PlanEstimate {
  const steps = Object.keys(plan.steps).map((key) => estimateStep(plan, key, sizes, history, calibration));
  return { steps, toRun: totals(steps.filter((e) => !done(e.key))), reused: totals(steps.filter((e) => done(e.key))) };
}
