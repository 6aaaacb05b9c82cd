/**
 * The data files a spec reads, and their content digests: the plan keys file-based problem sets by
 * content (see plan.ts), so whoever builds a plan hashes the files first.
 */

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { ArmSpec, ExperimentSpec, FileSet } from './types.ts';

/** The file-based problem sets of one config, with their JSON paths relative to it. */
export function dataFiles(config: ArmSpec): { pointer: string; set: FileSet }[] {
  const { task } = config;
  if (task.kind === 'arithmetic') return [];
  return [{ pointer: '/task/train', set: task.train }, ...task.eval.map((set, i) => ({ pointer: `/task/eval/${i}`, set }))];
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** SHA-256 of every data file any arm reads, by path: `PlanOptions.dataDigests`. */
export async function digestDataFiles(spec: ExperimentSpec): Promise<Record<string, string>> {
  const paths = new Set(Object.values(spec.arms).flatMap((arm) => dataFiles(arm).map((f) => f.set.path)));
  const digests: Record<string, string> = {};
  for (const path of paths) digests[path] = await sha256File(path);
  return digests;
}
