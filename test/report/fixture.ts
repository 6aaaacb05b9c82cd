/**
 * A run recorded in a temporary store the way the workflow records one: the real ablations spec and
 * its real plan, every step started and finished with the outputs its activity stores (seconds;
 * training summaries and loss arrays for boost and train; the answers in the ledger for evaluate), and
 * the metric rows. Evaluation answers are synthetic but scored by the real metrics, so the families are
 * consistent with each other (p1@tk ≥ m1@t1, rising in k) as in a real run. Rollout, relabel and filter
 * steps record their ledger and filter decisions (training-data.ts), for lineage.
 */

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { Rng } from '../../src/engine/random.ts';
import { DEFAULT_TIE_BREAK, type AnswerRecord, type EvalRecord, type TieBreak } from '../../src/rise/metrics.ts';
import { readRunEvaluations, runTieBreak } from '../../src/report/data.ts';
import { recordedEvaluation } from '../../src/steps/evaluation.ts';
import { stepOfKind } from '../../src/steps/index.ts';
import { currentCompute } from '../../src/plan/compute.ts';
import { validateSpec } from '../../src/spec/validate.ts';
import { planExperiment, type Plan } from '../../src/plan/plan.ts';
import type { ExperimentSpec } from '../../src/spec/types.ts';
import { recordTrainingData } from './training-data.ts';
import { createRun, finishStep, getRun, putJson, recordEpisodes, startStep, stepStatus, upsertMetrics, type LedgerEpisode, type Store } from '../../src/store/index.ts';

export const SPEC_FILE = 'experiments/arithmetic-ablations.json';

/** The ablations spec at one seed (the file replicates every arm over three), so arms keep their names. */
export async function ablations(): Promise<{ spec: ExperimentSpec; plan: Plan }> {
  const { seeds: _seeds, ...json } = JSON.parse(fs.readFileSync(SPEC_FILE, 'utf8')) as Record<string, unknown>;
  const spec = validateSpec({ ...json, seed: 1 });
  return { spec, plan: planExperiment(spec, { compute: currentCompute() }) };
}

export function tempHome(t: TestContext): string {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'rise-report-'));
  t.after(() => fs.rmSync(home, { recursive: true, force: true }));
  return home;
}

export { tempStore } from '../store/helpers.ts';

const PROBLEMS = 40;

function answer(rng: Rng, pCorrect: number): AnswerRecord {
  if (rng.uniform() < pCorrect) return { answer: 'right', correct: true };
  // Some unparsable answers, and wrong ones that sometimes agree, so votes have ties.
  return rng.uniform() < 0.1 ? { answer: null, correct: false } : { answer: `wrong-${rng.int(3)}`, correct: false };
}

/** A model that gets better with iterations and (with `skill`) from run to run, and fixes answers over turns. */
function evalRecords(seed: string, skill: number, turns: number, samples: number): EvalRecord[] {
  const rng = new Rng(seed);
  return Array.from({ length: PROBLEMS }, (_, i) => {
    const parallel = Array.from({ length: samples }, () => answer(rng, skill));
    const sequential = [parallel[0]];
    while (sequential.length < turns) sequential.push(answer(rng, Math.min(0.95, skill + 0.05 * sequential.length)));
    return { problemId: `p${i}`, parallel, sequential };
  });
}

/** As the evaluate activity records them: turn 1 holds the parallel samples, turn t ≥ 2 the chain's t-th attempt. */
function ledgerEpisode(r: EvalRecord): LedgerEpisode {
  const sample = (a: AnswerRecord) => ({ text: a.answer ?? 'no answer', answer: a.answer, reward: a.correct ? 1 : 0, tokens: 4, logprob: -2 });
  return {
    problemId: r.problemId,
    prompt: `What is problem ${r.problemId}?`,
    turns: [
      { turn: 1, kind: 'parallel', chosen: 0, samples: r.parallel.map(sample) },
      ...r.sequential.slice(1).map((a, i) => ({ turn: i + 2, kind: 'sequential', chosen: 0, samples: [sample(a)] })),
    ],
  };
}

function lossCurve(seed: string, steps: number, start: number): number[] {
  const rng = new Rng(seed);
  return Array.from({ length: steps }, (_, i) => start * Math.exp(-i / 25) + 0.3 + 0.05 * rng.uniform());
}

export interface RecordOptions {
  runId: string;
  /** Added to every model's accuracy, to tell runs apart. */
  skill?: number;
  /** Steps (and metrics) of this arm's last iteration stay undone, as in a run still going. */
  unfinishedArm?: string;
}

export async function recordRun(store: Store, spec: ExperimentSpec, plan: Plan, options: RecordOptions): Promise<void> {
  const { runId, skill = 0 } = options;
  await createRun(store, { id: runId, experiment: spec.name, spec, plan, arms: spec.arms });
  const unfinished = new Set(
    plan.arms.find((a) => a.name === options.unfinishedArm)?.steps.filter((s) => s.iteration === spec.arms[options.unfinishedArm!].iterations).map((s) => s.key),
  );
  for (const arm of plan.arms) {
    const config = spec.arms[arm.name];
    for (const use of arm.steps) {
      if (unfinished.has(use.key)) continue;
      const armSkill = 0.3 + skill + 0.1 * use.iteration + (arm.name === 'expert' ? 0.05 : 0);
      if (use.kind === 'evaluate') {
        if (await stepStatus(store, use.key) !== 'done') {
          const records = evalRecords(`${runId}/${use.key}`, armSkill, config.evaluate.turns, config.evaluate.parallelK);
          await startStep(store, plan.steps[use.key], runId);
          await recordEpisodes(store, use.key, records.map(ledgerEpisode), runId);
          await finishStep(store, use.key, { seconds: 12.5, resumed: 0, problems: records.length });
        }
        const tieBreak = use.tieBreak ?? DEFAULT_TIE_BREAK;
        const table = (await recordedEvaluation(store, use.key, stepOfKind(plan.steps[use.key], 'evaluate').params)).byRule[tieBreak];
        await upsertMetrics(
          store,
          table.rows.map((r) => ({
            runId,
            arm: arm.name,
            iteration: use.iteration,
            evalSet: use.evalSet,
            name: r.name,
            k: r.k,
            value: r.value,
            details: { family: r.family, correct: r.correct, problems: r.problems, ties: r.ties, unparsable: r.unparsable, tieBreak },
            stepKey: use.key,
          })),
        );
        continue;
      }
      if (await stepStatus(store, use.key) === 'done') continue;
      await startStep(store, plan.steps[use.key], runId);
      await recordTrainingData(store, plan, use, runId);
      let outputs: Record<string, unknown> = { seconds: 30 + use.iteration };
      if (use.kind === 'boost' || use.kind === 'train') {
        const losses = lossCurve(use.key, use.kind === 'boost' ? 125 : 60, use.kind === 'boost' ? 2.5 : 0.8);
        outputs = {
          ...outputs,
          train: { steps: losses.length, firstLoss: losses[0], lastLoss: losses.at(-1)! },
          losses: await putJson(store, losses, 'losses'),
        };
      }
      await finishStep(store, use.key, outputs);
    }
  }
}

/** What `rise compare` reads for each run: its metrics with the answers behind them. */
export async function evaluationsOf(store: Store, ids: readonly string[], tieBreak?: TieBreak) {
  const runs = [];
  for (const id of ids) {
    const run = (await getRun(store, id))!;
    runs.push({ id, ...(await readRunEvaluations(store, run, tieBreak ?? runTieBreak(run))) });
  }
  return runs;
}
