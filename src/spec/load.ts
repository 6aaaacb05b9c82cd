/**
 * Reading a spec file: parse (syntax errors at file:line:column), validate, locate every issue in the
 * file, resolve data and model paths against the spec's directory and check that they exist, so a typo
 * in a path fails at `rise validate`, not hours into a run.
 */

import { readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { JsonDepthError, JsonSyntaxError, parseJson, TOO_DEEP, type ParsedJson } from './json-text.ts';
import { SpecError, type SpecIssue } from './issues.ts';
import { dataFiles } from './data-files.ts';
import { childPointer } from './pointer.ts';
import { isPolicyModel, type ArmSpec, type ExperimentSpec, type ModelSpec } from './types.ts';
import { validateSpec } from './validate.ts';

function filesOf(config: ArmSpec, prefix: string) {
  return dataFiles(config).map(({ pointer, set }) => ({ path: `${prefix}${pointer}/path`, set }));
}

function located(issues: SpecIssue[], parsed: ParsedJson): SpecIssue[] {
  return issues
    .map((issue) => ({ ...issue, location: issue.location ?? parsed.locate(issue.path) }))
    .sort((a, b) => a.location.line - b.location.line || a.location.column - b.location.column);
}

/** Every pretrained model of every arm that names a path to import, with where it is in the file. */
function modelPaths(spec: ExperimentSpec): { pointer: string; model: ModelSpec & { path: string } }[] {
  const arms: [string, ArmSpec][] = [['', spec], ...Object.entries(spec.arms).map(([name, arm]): [string, ArmSpec] => [childPointer('/arms', name), arm])];
  return arms.flatMap(([prefix, arm]) =>
    [
      { pointer: `${prefix}/model`, model: arm.model as ModelSpec },
      ...(arm.expert !== null ? [{ pointer: `${prefix}/expert`, model: arm.expert as ModelSpec }] : []),
      ...(isPolicyModel(arm.rollout.policy) ? [{ pointer: `${prefix}/rollout/policy`, model: arm.rollout.policy as ModelSpec }] : []),
    ].filter((m): m is { pointer: string; model: ModelSpec & { path: string } } => m.model.path !== null),
  );
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/**
 * The validated spec in `file`, data paths made absolute; throws `SpecError` (every issue, each
 * located in the file) when the file is not valid JSON or not a valid spec.
 */
export async function loadSpec(file: string): Promise<ExperimentSpec> {
  const text = await readFile(file, 'utf8');
  let parsed: ParsedJson;
  try {
    parsed = parseJson(text);
  } catch (err) {
    if (err instanceof JsonDepthError) throw new SpecError([{ path: err.pointer, message: TOO_DEEP, location: err.location }], file);
    if (!(err instanceof JsonSyntaxError)) throw err;
    throw new SpecError([{ path: '', message: `invalid JSON: ${err.reason}`, location: err.location }], file);
  }
  const duplicates: SpecIssue[] = parsed.duplicates.map((d) => ({
    path: d.pointer,
    location: d.location,
    message: `duplicate key (first at line ${d.first.line}); JSON keeps only the last, so one of them is a mistake`,
  }));
  let spec: ExperimentSpec;
  try {
    spec = validateSpec(parsed.value);
  } catch (err) {
    if (!(err instanceof SpecError)) throw err;
    throw new SpecError(located([...duplicates, ...err.issues], parsed), file);
  }

  const base = dirname(file);
  const entries = [...filesOf(spec, ''), ...Object.entries(spec.arms).flatMap(([name, arm]) => filesOf(arm, childPointer('/arms', name)))];
  const missing: SpecIssue[] = [];
  const checked = new Set<string>();
  for (const entry of entries) {
    const absolute = isAbsolute(entry.set.path) ? entry.set.path : resolve(base, entry.set.path);
    entry.set.path = absolute;
    if (checked.has(absolute)) continue;
    checked.add(absolute);
    if (!(await isFile(absolute))) missing.push({ path: entry.path, message: `expected a JSONL file; found no file at ${absolute}` });
  }
  for (const { pointer, model } of modelPaths(spec)) {
    model.path = isAbsolute(model.path) ? model.path : resolve(base, model.path);
    if (!(await exists(model.path))) missing.push({ path: `${pointer}/path`, message: `expected a Hugging Face checkpoint directory or a GGUF file; found nothing at ${model.path}` });
  }
  if (duplicates.length + missing.length > 0) throw new SpecError(located([...duplicates, ...missing], parsed), file);
  return spec;
}
