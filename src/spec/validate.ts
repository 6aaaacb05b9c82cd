/**
 * Spec validation: JSON Schema (ajv, defaults filled in), then the cross-field rules, then every arm
 * merged onto the base and validated the same way. All issues are collected before anything fails.
 *
 * Arms are validated after merging, so an arm's partial objects complete exactly as the base's do. An
 * arm inherits the base's mistakes; those are reported once, at the base's path, and an arm's path
 * names only what the arm itself breaks (its own keys, or a base value its overrides make invalid).
 */

import type { Static } from '@sinclair/typebox';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { isPlainObject } from '../util/objects.ts';
import { crossFieldIssues } from './checks.ts';
import { describeValue, SpecError, type SpecIssue } from './issues.ts';
import { MAX_DEPTH, TOO_DEEP } from './json-text.ts';
import { mergeOverrides } from './merge.ts';
import { childPointer, pointerSegments } from './pointer.ts';
import { EXPERIMENT_KEYS, EXPERIMENT_SCHEMA, type TaskInput } from './schema.ts';
import { schemaIssues } from './schema-issues.ts';
import { replicateArms } from './seeds.ts';
import { DEFAULT_ARM, type ArmSpec, type ExperimentSpec, type Filled, type TaskSpec } from './types.ts';

type SpecInput = Static<typeof EXPERIMENT_SCHEMA>;
/** A config resolved on its own: an arm's knobs plus the name and description it would carry. */
type Config = Omit<ExperimentSpec, 'arms'>;

let compiled: ValidateFunction<SpecInput> | undefined;

function validator(): ValidateFunction<SpecInput> {
  // strictTypes is off because nullable `$ref`s ({"type": ["object", "null"], "$ref": ...}) are how the
  // schema says "null or this object" without oneOf, whose errors would come from every branch.
  compiled ??= new Ajv2020({ allErrors: true, useDefaults: true, verbose: true, strict: true, strictTypes: false }).compile<SpecInput>(EXPERIMENT_SCHEMA);
  return compiled;
}

/**
 * The first array or object nested deeper than `MAX_DEPTH`, found without recursion: cloning,
 * validating and merging all recurse, and would overflow the stack on a deep enough value.
 */
function tooDeep(json: unknown): SpecIssue | null {
  const pending: { value: unknown; pointer: string; depth: number }[] = [{ value: json, pointer: '', depth: 1 }];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const { value, pointer, depth } = next;
    if (typeof value !== 'object' || value === null) continue;
    if (depth > MAX_DEPTH) return { path: pointer, message: TOO_DEEP };
    for (const [key, child] of Object.entries(value)) pending.push({ value: child, pointer: childPointer(pointer, key), depth: depth + 1 });
  }
  return null;
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
function inheritTrainKnobs(task: Filled<TaskInput>): TaskSpec {
  if (task.kind !== 'arithmetic') return task;
  const { train } = task;
  const evalSets = task.eval.map((set) => ({
    ...set,
    ops: set.ops ?? [...train.ops],
    min: set.min ?? train.min,
    max: set.max ?? train.max,
    operators: set.operators ?? [...train.operators],
  }));
  return { ...task, eval: evalSets };
}

/** Schema defaults and checks for one config (the base without arms, or an arm merged onto it). */
function resolveConfig(raw: Record<string, unknown>): { config: Config | null; issues: SpecIssue[] } {
  const doc = structuredClone(raw);
  const validate = validator();
  if (!validate(doc)) return { config: null, issues: schemaIssues(validate.errors ?? [], EXPERIMENT_SCHEMA) };
  const { $schema: _s, arms: _a, ...knobs } = doc;
  // ajv has filled in every default, which is all that Filled adds to the schema's type.
  const filled = knobs as Filled<typeof knobs>;
  const config: Config = { ...filled, task: inheritTrainKnobs(filled.task) };
  return { config, issues: crossFieldIssues(config) };
}

function armOf(config: Config): ArmSpec {
  const { name: _n, description: _d, seeds: _seeds, budget: _b, ...arm } = config;
  return arm;
}

/**
 * The spec with every default filled in and every arm resolved, or a `SpecError` listing every issue.
 * `json` is the parsed file; it is not modified.
 */
export function validateSpec(json: unknown): ExperimentSpec {
  if (!isPlainObject(json)) throw new SpecError([{ path: '', message: `expected an object; found ${describeValue(json)}` }]);
  const deep = tooDeep(json);
  if (deep !== null) throw new SpecError([deep]);
  const { arms: rawArms, ...rawBase } = json;
  // The arms' names and shapes, on their own; their contents are checked merged onto the base, below.
  const armsOnly = { arms: structuredClone(rawArms) };
  const armsIssues = validator()(armsOnly) ? [] : schemaIssues(validator().errors ?? [], EXPERIMENT_SCHEMA);
  const base = resolveConfig(rawBase);
  const issues = [...base.issues, ...armsIssues];
  const seen = new Set(base.issues.map((i) => `${i.path}\n${i.message}`));

  const arms: Record<string, ArmSpec> = {};
  const overrides = isPlainObject(rawArms) ? Object.entries(rawArms).filter((entry): entry is [string, Record<string, unknown>] => isPlainObject(entry[1])) : [];
  const { $schema: _s, name: _n, description: _d, seeds: _seeds, ...template } = rawBase;
  const replicated = base.config !== null && base.config.seeds !== null;
  if (replicated && Object.hasOwn(rawBase, 'seed')) {
    issues.push({ path: '/seed', message: 'expected no seed when "seeds" is given: each replicate runs at one of the seeds' });
  }
  for (const [name, override] of overrides) {
    const prefix = childPointer('/arms', name);
    const own = { ...override };
    for (const key of EXPERIMENT_KEYS) {
      if (!Object.hasOwn(own, key)) continue;
      issues.push({ path: childPointer(prefix, key), message: `an arm cannot override ${JSON.stringify(key)}: it belongs to the experiment as a whole` });
      delete own[key];
    }
    if (replicated && Object.hasOwn(own, 'seed')) {
      issues.push({ path: childPointer(prefix, 'seed'), message: 'an arm cannot set its seed when "seeds" is given: every arm runs once per seed' });
      delete own.seed;
    }
    const arm = resolveConfig(mergeOverrides(template, own));
    for (const issue of arm.issues) {
      if (seen.has(`${issue.path}\n${issue.message}`) && !hasPointer(own, issue.path)) continue;
      issues.push({ ...issue, path: `${prefix}${issue.path}` });
    }
    if (arm.config !== null) arms[name] = armOf(arm.config);
  }
  if (issues.length > 0 || base.config === null) throw new SpecError(issues);

  const config = armOf(base.config);
  const { seeds } = base.config;
  const declared = overrides.length === 0 ? { [DEFAULT_ARM]: structuredClone(config) } : arms;
  return {
    ...config,
    name: base.config.name,
    description: base.config.description,
    budget: base.config.budget,
    seeds,
    arms: seeds === null ? declared : replicateArms(declared, seeds),
  };
}
