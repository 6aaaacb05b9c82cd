/**
 * The cost section of `rise plan SPEC`: every distinct step's tokens and seconds (src/plan/estimate.ts),
 * from the store's history at RISE_HOME when there is one (opened only if it exists: planning creates no
 * store) and from a calibration with `--calibrate`; then what would run against what is reused.
 */

import { readFile } from 'node:fs/promises';
import { estimatePlan, graphOf, NO_CALIBRATION, stepBound, WORK, type PlanEstimate, type SetSizes, type StepEstimate, type StepHistory, type Totals } from '../plan/estimate.ts';
import { planFromJson, type Plan } from '../plan/plan.ts';
import { shortKey, type EvaluateParams, type Step } from '../steps/index.ts';
import { finishedStepCosts, listRuns, openStore, storeExists } from '../store/index.ts';

/**
 * Problems in each data file the plan reads (non-empty JSONL lines), for sets that take a whole file;
 * and the problems of each evaluation of `steps` (the plan's, or the store's history) once training
 * prompts are held out, built as the step builds them. An evaluation whose file is gone is left out.
 */
export async function setSizes(plan: Plan, steps: Record<string, Step> = plan.steps): Promise<SetSizes> {
  const sizes: SetSizes = {};
  for (const [digest, path] of Object.entries(plan.files)) {
    sizes[digest] = (await readFile(path, 'utf8')).split('\n').filter((line) => line.trim() !== '').length;
  }
  const { evaluationProblems } = await import('../../activities/problems.ts');
  const counted = new Map<string, number>();
  for (const step of Object.values(steps)) {
    if (step.kind !== 'evaluate') continue;
    const { seed, set, train } = step.params as EvaluateParams;
    const id = JSON.stringify([seed, set, train]);
    if (!counted.has(id)) {
      const count = await evaluationProblems({ seed, set, train }, plan.files).then((problems) => problems.length, () => undefined);
      if (count === undefined) continue;
      counted.set(id, count);
    }
    sizes[step.key] = counted.get(id)!;
  }
  return sizes;
}

export interface StoreCosts {
  history: StepHistory[];
  /** Recorded compute seconds of finished steps, by key. */
  seconds: Map<string, number>;
}

/** Every finished step of the store at RISE_HOME whose run's plan the store keeps; empty without a store. */
export async function storeCosts(plan: Plan): Promise<StoreCosts> {
  if (!storeExists()) return { history: [], seconds: new Map() };
  const store = await openStore();
  try {
    const steps: Record<string, Step> = {};
    for (const run of await listRuns(store)) Object.assign(steps, planFromJson(run.plan)?.steps ?? {});
    const costs = await finishedStepCosts(store);
    const finished = new Set(costs.map((c) => c.key));
    const sizes = await setSizes(plan, Object.fromEntries(Object.entries(steps).filter(([key]) => finished.has(key))));
    const history = costs.flatMap((c): StepHistory[] => {
      const step = steps[c.key];
      if (step === undefined || c.seconds === null) return [];
      let bound;
      try {
        bound = stepBound(steps, c.key, sizes);
      } catch {
        return []; // a file set of another spec, whose size is not known here
      }
      const tokens = bound.work === 'sample' ? c.sampledTokens : bound.work === 'train' ? c.trainedTokens : null;
      return [{ kind: step.kind, graph: graphOf(step), bound, tokens, seconds: c.seconds }];
    });
    return { history, seconds: new Map(costs.flatMap((c) => (c.seconds === null ? [] : [[c.key, c.seconds]]))) };
  } finally {
    await store.close();
  }
}

const compact = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : String(Math.round(n)));

function duration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${Math.round(seconds - m * 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function tokensText(e: StepEstimate): string {
  if (e.work === 'none') return '-';
  const bound = e.basis === 'bound';
  return `${e.work === 'sample' ? 'sample' : 'train'} ${bound ? '≤ ' : e.basis === 'counted' ? '' : '≈ '}${compact(e.tokens)}${bound ? '' : ` (≤ ${compact(e.bound.tokens)})`}`;
}

function totalsText(t: Totals): string {
  const unknown = t.unknown > 0 ? ` + ${t.unknown} step${t.unknown === 1 ? '' : 's'} with no rate` : '';
  return `${t.steps} step${t.steps === 1 ? '' : 's'}, ${compact(t.sampled)} tokens to sample, ${compact(t.trained)} to train, ≈ ${duration(t.seconds)}${unknown}`;
}

/** The estimate, per arm and iteration in plan order (a shared step at its first use), then the totals. */
export function formatEstimate(plan: Plan, estimate: PlanEstimate, done: (key: string) => boolean, measured: Map<string, number>): string {
  const byKey = new Map(estimate.steps.map((e) => [e.key, e]));
  const lines = ['', 'estimate on this machine: tokens to sample or train (≤ an upper bound from the spec, ≈ scaled by history) and seconds'];
  const seen = new Set<string>();
  for (const arm of plan.arms) {
    for (const use of arm.steps) {
      if (seen.has(use.key)) continue;
      seen.add(use.key);
      const e = byKey.get(use.key)!;
      const took = measured.get(use.key);
      const state = done(use.key) ? `reused${took !== undefined ? ` (took ${duration(took)})` : ''}` : 'to run';
      const label = `${arm.name} ${use.iteration} ${use.kind} ${use.model ?? use.evalSet ?? ''}`.trimEnd();
      lines.push(`  ${shortKey(use.key)}  ${label.padEnd(28)} ${state.padEnd(20)} ${tokensText(e).padEnd(28)} ${e.seconds === null ? '?' : `≈ ${duration(e.seconds)}`}`);
      const from = [e.tokensFrom !== '' ? `tokens: ${e.tokensFrom}` : '', `time: ${e.secondsFrom}`].filter((s) => s !== '');
      lines.push(`        ${from.join('; ')}`);
    }
  }
  lines.push('', `to run: ${totalsText(estimate.toRun)}`, `reused: ${totalsText(estimate.reused)}`);
  const took = [...measured.entries()].filter(([key]) => key in plan.steps && done(key)).reduce((n, [, s]) => n + s, 0);
  if (took > 0) lines.push(`        (the reused steps took ${duration(took)} when they ran)`);
  return `${lines.join('\n')}\n`;
}

/** The cost section for `plan`: history from the store, and a calibration of the graphs to run when asked. */
export async function estimateSection(plan: Plan, done: (key: string) => boolean, calibrate: boolean, report: (line: string) => void): Promise<string> {
  const sizes = await setSizes(plan);
  const { history, seconds } = await storeCosts(plan);
  let calibration = NO_CALIBRATION;
  if (calibrate) {
    const { calibrate: run } = await import('../../activities/calibrate.ts');
    const { modelsHome } = await import('../models/store.ts');
    const measurable = Object.keys(plan.steps).filter((key) => WORK[plan.steps[key].kind] !== 'none');
    calibration = await run({ session: {}, generationBatchSize: 64, modelsHome: modelsHome() }, plan, measurable, report);
  }
  return formatEstimate(plan, estimatePlan(plan, done, sizes, history, calibration), done, seconds);
}
