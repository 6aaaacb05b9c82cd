/**
 * The problem sets a step reads, rebuilt from the step's params: generated arithmetic from its knobs, or
 * a user's JSONL file found by the content digest the plan recorded (and checked against it, so a file
 * edited after planning is an error rather than silently different data).
 */

import { hashSeed } from '../src/engine/random.ts';
import { heldOut } from '../src/rise/evaluate.ts';
import { sha256File } from '../src/spec/data-files.ts';
import type { ProblemSetParams } from '../src/steps/index.ts';
import { DataError, generateArithmetic, loadProblems, type Problem } from '../src/tasks/index.ts';

type GeneratedSet = Extract<ProblemSetParams, { kind: 'arithmetic' }>;
type FileSet = Exclude<ProblemSetParams, GeneratedSet>;

function generated(set: GeneratedSet, experimentSeed: number): Problem[] {
  const { count, ops, min, max, operators } = set;
  const seed = set.seed ?? (set.role === 'train' ? hashSeed(experimentSeed, 'train') : hashSeed(experimentSeed, 'eval', set.name ?? ''));
  return generateArithmetic({ seed, count, ops, min, max, operators });
}

async function loaded(set: FileSet, files: Record<string, string>): Promise<Problem[]> {
  const path = files[set.sha256];
  if (path === undefined) throw new DataError('(plan)', undefined, `no file recorded for data digest ${set.sha256}`);
  const digest = await sha256File(path).catch((err: Error) => {
    throw new DataError(path, undefined, `cannot read the data file (${err.message})`);
  });
  if (digest !== set.sha256) throw new DataError(path, undefined, 'the file changed after the run was planned (its SHA-256 differs); re-run the spec to plan it anew');
  const problems = await loadProblems(set.kind, path);
  return set.count === null ? problems : problems.slice(0, set.count);
}

export async function problemSet(set: ProblemSetParams, experimentSeed: number, files: Record<string, string>): Promise<Problem[]> {
  return set.kind === 'arithmetic' ? generated(set, experimentSeed) : loaded(set, files);
}

/** An evaluation set; a generated one is held out from the training set (see `heldOut`). */
export async function evaluationProblems(params: { seed: number; set: ProblemSetParams; train?: ProblemSetParams }, files: Record<string, string>): Promise<Problem[]> {
  const problems = await problemSet(params.set, params.seed, files);
  if (params.set.kind !== 'arithmetic') return problems;
  const training = params.train === undefined ? [] : await problemSet(params.train, params.seed, files);
  return heldOut(problems, training);
}

/** With `samples` > 1 every problem is collected that many times, as episodes `<id>#<n>` with their own random streams. */
export function rolloutProblems(problems: Problem[], samples: number): Problem[] {
  if (samples === 1) return problems;
  return problems.flatMap((p) => Array.from({ length: samples }, (_, n) => ({ ...p, id: `${p.id}#${n}` })));
}
