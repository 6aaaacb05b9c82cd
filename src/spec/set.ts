/**
 * `--set path=value` on a validated spec, as `rise fork` changes a run's stored spec: a dotted path
 * (`relabel.samples`, `task.eval.0.count`, `arms.uniform.train.lr`) and a JSON value. The stored spec
 * has every arm resolved (the base merged in, defaults filled), so a path outside `arms` is set on the
 * base and on every arm alike, as if the base file had said it; `arms.NAME.path` sets one arm. The result
 * goes through `validateSpec`, so a value the schema refuses fails with its usual message.
 *
 * Every path must name a field the spec already has: every knob is filled in after validation, so a
 * missing one is a typo, and the error names the path and the fields there are.
 */

import { isPlainObject } from '../util/objects.ts';
import { SpecError } from './issues.ts';
import { EXPERIMENT_KEYS } from './schema.ts';
import { declaredSpec } from './seeds.ts';
import type { ExperimentSpec } from './types.ts';
import { validateSpec } from './validate.ts';

export interface Setting {
  /** As written, for messages. */
  text: string;
  path: string[];
  value: unknown;
}

/** A bad `--set`: names the setting and what is wrong with it. */
export class SettingError extends Error {
  override name = 'SettingError';
}

/** Parses `a.b.c=JSON`; a value that is not JSON is taken as a string (`task.kind=gsm8k`). */
export function parseSetting(text: string): Setting {
  const eq = text.indexOf('=');
  const path = eq < 0 ? '' : text.slice(0, eq).trim();
  if (eq < 0 || path === '' || path.split('.').some((s) => s === '')) throw new SettingError(`--set ${text}: expected PATH=VALUE with a dotted spec path, e.g. relabel.samples=32`);
  const raw = text.slice(eq + 1);
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    value = raw;
  }
  return { text, path: path.split('.'), value };
}

/** Sets `path` inside `doc` (in place); throws naming the first segment that is not there. */
function setAt(doc: Record<string, unknown>, setting: Setting, path: string[], where: string): void {
  let at: unknown = doc;
  for (const [i, segment] of path.entries()) {
    const container = at as Record<string, unknown> | unknown[];
    const here = path.slice(0, i + 1).join('.');
    const has = Array.isArray(container) ? /^\d+$/.test(segment) && Number(segment) < container.length : Object.hasOwn(container, segment);
    if (!has) {
      const fields = Array.isArray(container) ? `indices 0..${container.length - 1}` : `fields: ${Object.keys(container).join(', ')}`;
      throw new SettingError(`--set ${setting.text}: ${where}${here} is not in the spec (${fields})`);
    }
    if (i === path.length - 1) {
      (container as Record<string, unknown>)[segment] = structuredClone(setting.value);
      return;
    }
    at = (container as Record<string, unknown>)[segment];
    if (!isPlainObject(at) && !Array.isArray(at)) throw new SettingError(`--set ${setting.text}: ${where}${here} is ${JSON.stringify(at)}, not an object to set a field in`);
  }
}

/**
 * The spec with the settings applied, validated again; throws `SettingError` for a path that is not in
 * the spec and `SpecError` for a value the spec refuses. `spec` is not modified.
 */
export function applySettings(spec: ExperimentSpec, settings: readonly Setting[]): ExperimentSpec {
  const doc = declaredSpec(spec);
  for (const setting of settings) {
    const [head, arm, ...rest] = setting.path;
    if (head === 'arms') {
      if (arm === undefined || !Object.hasOwn(doc.arms, arm)) throw new SettingError(`--set ${setting.text}: no arm ${JSON.stringify(arm ?? '')}; arms: ${Object.keys(doc.arms).join(', ')}`);
      if (rest.length === 0) throw new SettingError(`--set ${setting.text}: name a field of arm ${arm}, e.g. arms.${arm}.train.lr=0.001`);
      setAt(doc.arms[arm], setting, rest, `arms.${arm}.`);
      continue;
    }
    if ((EXPERIMENT_KEYS as readonly string[]).includes(head)) {
      // The experiment's own keys are not in its arms; a run stored before a key existed lacks it.
      if (setting.path.length === 1) doc[head] = structuredClone(setting.value);
      else setAt(doc, setting, setting.path, '');
      continue;
    }
    setAt(doc, setting, setting.path, '');
    for (const [name, config] of Object.entries(doc.arms)) setAt(config, setting, setting.path, `arms.${name}.`);
  }
  // Replication gives every arm its seed: a spec given seeds keeps none of its own unless a setting says so.
  if (Array.isArray(doc.seeds) && !settings.some((s) => s.path[0] === 'seed')) {
    delete doc.seed;
    for (const arm of Object.values(doc.arms)) delete arm.seed;
  }
  try {
    return validateSpec(doc);
  } catch (err) {
    if (!(err instanceof SpecError)) throw err;
    // The issues name JSON pointers; say which settings led there.
    throw new SpecError(err.issues, `the spec after --set ${settings.map((s) => s.text).join(' --set ')}`);
  }
}

