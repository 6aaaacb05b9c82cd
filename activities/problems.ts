/**
 * The problem sets a step reads, rebuilt from the step's params: generated arithmetic from its knobs, or
 * a user's JSONL file found by the content digest the plan recorded (and checked against it, so a file
 * edited after planning is an error rather than silently different data).
 */

import { hashSeed } from '../src/engine/random.ts';
import { sha256File } from '../src/spec/data-files.ts';
import type { Json } from '../src/spec/hash.ts';
import type { Operator } from '../src/spec/types.ts';
import { DataError, generateArithmetic, loadProblems, type Problem, type TaskKind } from '../src/tasks/index.ts';

/** The `train` / `set` params of a step (see `PlanBuilder.problems` in src/spec/plan.ts). */
export type ProblemSetParams =
  | { kind: 'arithmetic'; role: 'train' | 'eval'; name?: string; count: number; ops: number[]; min: number; max: number; operators: Operator[]; seed: number | null }
  | { kind: Exclude<TaskKind, 'arithmetic'>; sha256: string; count: number | null };

function generated(set: Extract<ProblemSetParams, { kind: 'arithmetic' }>, experimentSeed: number): Problem[] {
  const { count, ops, min, max, operators } = set;
  const seed = set.seed ?? (set.role === 'train' ? hashSeed(experimentSeed, 'train') : hashSeed(experimentSeed, 'eval', set.name ?? ''));
  return generateArithmetic({ seed, count, ops, min, max, operators });
}

async function loaded(set: Extract<ProblemSetParams, { kind: Exclude<TaskKind, 'arithmetic'> }>, files: Record<string, string>): Promise<Problem[]> {
  const path = files[set.sha256];
  if (path === undefined) throw new DataError('(plan)', undefined, `no file recorded for data digest ${set.sha256}`);
  const digest = await sha256File(path).catch((err: Error) => {
    throw new DataError(path, undefined, `cannot read the data file (${err.message})`);
  });
  if (digest !== set.sha256) throw new DataError(path, undefined, 'the file changed after the run was planned (its SHA-256 differs); re-run the spec to plan it anew');
  const problems = await loadProblems(set.kind, path);
  return set.count === null ? problems : problems.slice(0, set.count);
}

export async function trainingProblems(params: { seed: Json; train: Json }, files: Record<string, string>): Promise<Problem[]> {
  const set = params.train as unknown as ProblemSetParams;
  return set.kind === 'arithmetic' ? generated(set, params.seed as number) : loaded(set, files);
}

/**
 * An evaluation set. Generated sets leave out prompts of the training set and repeats within the set, so
 * every problem is held out and counted once.
 */
export async function evaluationProblems(params: { seed: Json; set: Json; train?: Json }, files: Record<string, string>): Promise<Problem[]> {
  const set = params.set as unknown as ProblemSetParams;
  if (set.kind !== 'arithmetic') return loaded(set, files);
  const seen = new Set(params.train === undefined ? [] : (await trainingProblems({ seed: params.seed, train: params.train }, files)).map((p) => p.prompt));
  return generated(set, params.seed as number).filter((p) => {
    if (seen.has(p.prompt)) return false;
    seen.add(p.prompt);
    return true;
  });
}
