/**
 * Spec validation: JSON Schema (ajv, defaults filled in), then the cross-field rules, then every arm
 * merged onto the base and validated the same way. All issues are collected before anything fails.
 *
 * Arms are validated after merging, so an arm's partial objects complete exactly as the base's do. An
 * arm inherits the base's mistakes; those are reported once, at the base's path, and an arm's path
 * names only what the arm itself breaks (its own keys, or a base value its overrides make invalid).
 */

import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import schema from '../../schemas/experiment.schema.json' with { type: 'json' };
import { crossFieldIssues } from './checks.ts';
import { describeValue, SpecError, type SpecIssue } from './issues.ts';
import { mergeOverrides } from './merge.ts';
import { childPointer, pointerSegments } from './pointer.ts';
import { schemaIssues } from './schema-issues.ts';
import { DEFAULT_ARM, type ArmSpec, type ExperimentSpec } from './types.ts';

export const EXPERIMENT_SCHEMA = schema;

/** Keys that belong to the experiment as a whole, which an arm cannot override. */
const EXPERIMENT_KEYS = ['$schema', 'name', 'description', 'arms'] as const;

let compiled: ValidateFunction | undefined;

function validator(): ValidateFunction {
  // strictTypes is off because nullable `$ref`s ({"type": ["object", "null"], "$ref": ...}) are how the
  // schema says "null or this object" without oneOf, whose errors would come from every branch.
  compiled ??= new Ajv2020({ allErrors: true, useDefaults: true, verbose: true, strict: true, strictTypes: false }).compile(schema);
  return compiled;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function hasPointer(value: unknown, pointer: string): boolean {
  let at = value;
  for (const segment of pointerSegments(pointer)) {
    if (!isPlainObject(at) && !Array.isArray(at)) return false;
    if (!Object.hasOwn(at, segment)) return false;
    at = (at as Record<string, unknown>)[segment];
  }
  return true;
}

/** Arithmetic evaluation sets leave knobs null to mean "as in training". */
function inheritTrainKnobs(spec: ArmSpec): void {
  const { task } = spec;
  if (task.kind !== 'arithmetic') return;
  for (const set of task.eval as unknown as Record<string, unknown>[]) {
    for (const knob of ['ops', 'min', 'max', 'operators'] as const) {
      if (set[knob] === null) set[knob] = structuredClone(task.train[knob]);
    }
  }
}

/** Schema defaults and checks for one config (the base without arms, or an arm merged onto it). */
function resolveConfig(raw: Record<string, unknown>): { spec: ArmSpec; issues: SpecIssue[] } {
  const doc = structuredClone(raw);
  const validate = validator();
  if (!validate(doc)) return { spec: doc as unknown as ArmSpec, issues: schemaIssues(validate.errors ?? [], schema) };
  const spec = doc as unknown as ArmSpec;
  inheritTrainKnobs(spec);
  return { spec, issues: crossFieldIssues(spec) };
}

function armConfig(spec: ArmSpec & Record<string, unknown>): ArmSpec {
  const { $schema: _s, name: _n, description: _d, arms: _a, ...config } = spec;
  return config;
}

/**
 * The spec with every default filled in and every arm resolved, or a `SpecError` listing every issue.
 * `json` is the parsed file; it is not modified.
 */
export function validateSpec(json: unknown): ExperimentSpec {
  if (!isPlainObject(json)) throw new SpecError([{ path: '', message: `expected an object; found ${describeValue(json)}` }]);
  const { arms: rawArms, ...rawBase } = json;
  // The whole document once, for the arms' names and shapes; the arms' contents are checked merged, below.
  const whole = validator()(structuredClone(json)) ? [] : schemaIssues(validator().errors ?? [], schema).filter((i) => i.path.startsWith('/arms'));
  const base = resolveConfig(rawBase);
  const issues = [...base.issues, ...whole];
  const seen = new Set(base.issues.map((i) => `${i.path}\n${i.message}`));

  const arms: Record<string, ArmSpec> = {};
  const overrides = isPlainObject(rawArms) ? Object.entries(rawArms).filter(([, o]) => isPlainObject(o)) : [];
  const { $schema: _s, name: _n, description: _d, ...template } = rawBase;
  for (const [name, override] of overrides as [string, Record<string, unknown>][]) {
    const prefix = childPointer('/arms', name);
    const own = { ...override };
    for (const key of EXPERIMENT_KEYS) {
      if (!Object.hasOwn(own, key)) continue;
      issues.push({ path: childPointer(prefix, key), message: `an arm cannot override ${JSON.stringify(key)}: it belongs to the experiment as a whole` });
      delete own[key];
    }
    const arm = resolveConfig(mergeOverrides(template, own) as Record<string, unknown>);
    for (const issue of arm.issues) {
      if (seen.has(`${issue.path}\n${issue.message}`) && !hasPointer(own, issue.path)) continue;
      issues.push({ ...issue, path: `${prefix}${issue.path}` });
    }
    arms[name] = armConfig(arm.spec as ArmSpec & Record<string, unknown>);
  }
  if (issues.length > 0) throw new SpecError(issues);

  const spec = base.spec as ArmSpec & Record<string, unknown>;
  const config = armConfig(spec);
  return {
    ...config,
    name: spec.name as string,
    description: spec.description as string,
    arms: overrides.length === 0 ? { [DEFAULT_ARM]: structuredClone(config) } : arms,
  };
}
