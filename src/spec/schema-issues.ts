/**
 * Turns ajv's errors into messages a researcher can act on: the path, what the schema expects (read
 * from the schema itself, so the message cannot drift from it), what was found, and the nearest key or
 * value for a typo. A key that exists elsewhere in the spec is pointed there ("belongs in "filter""),
 * the usual slip when writing an arm's overrides.
 *
 * ajv reports every branch of a conditional; when the selector itself is wrong (an unknown task kind,
 * a policy that is neither a string nor an object) the errors of the branch it happened to select
 * are noise and are dropped.
 */

import type { ErrorObject, SchemaObject } from 'ajv';
import { isPlainObject } from '../util/objects.ts';
import { describeValue, type SpecIssue } from './issues.ts';
import { childPointer, pointerSegments } from './pointer.ts';
import { nearest } from './suggest.ts';

type Schema = SchemaObject;

/** The schema with its local `$ref` followed (the referring schema's own keywords win). */
export function resolveSchema(schema: Schema, root: Schema): Schema {
  const ref = schema.$ref;
  if (typeof ref !== 'string' || !ref.startsWith('#/')) return schema;
  let target: unknown = root;
  for (const segment of pointerSegments(ref.slice(1))) target = isPlainObject(target) ? target[segment] : undefined;
  if (!isPlainObject(target)) return schema;
  const { $ref: _, ...own } = schema;
  return { ...resolveSchema(target as Schema, root), ...own };
}

function range(s: Schema): string {
  const lower = s.minimum !== undefined ? `>= ${s.minimum}` : s.exclusiveMinimum !== undefined ? `> ${s.exclusiveMinimum}` : '';
  const upper = s.maximum !== undefined ? `<= ${s.maximum}` : s.exclusiveMaximum !== undefined ? `< ${s.exclusiveMaximum}` : '';
  if (s.minimum !== undefined && s.maximum !== undefined) return ` from ${s.minimum} to ${s.maximum}`;
  return [lower, upper].filter(Boolean).map((r) => ` ${r}`).join(' and');
}

function describeType(type: string, s: Schema): string {
  switch (type) {
    case 'integer':
      return `an integer${range(s)}`;
    case 'number':
      return `a number${range(s)}`;
    case 'string': {
      const parts = [s.minLength ? 'a non-empty string' : 'a string'];
      if (s.pattern) parts.push(`matching ${s.pattern}`);
      if (s.maxLength !== undefined) parts.push(`of at most ${s.maxLength} characters`);
      return parts.join(' ');
    }
    case 'array': {
      const parts = ['an array'];
      if (s.minItems) parts.push(`of at least ${s.minItems} item${s.minItems === 1 ? '' : 's'}`);
      if (s.uniqueItems) parts.push('without duplicates');
      return parts.join(' ');
    }
    case 'object':
      return Array.isArray(s.required) && s.required.length > 0 ? `an object with ${s.required.map((k: string) => JSON.stringify(k)).join(', ')}` : 'an object';
    case 'boolean':
      return 'true or false';
    default:
      return type;
  }
}

/** What a schema accepts, in words: "an integer >= 1 or null", "one of "self", "expert"". */
export function expectation(schema: Schema, root: Schema): string {
  const s = resolveSchema(schema, root);
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (Array.isArray(s.enum)) return `one of ${s.enum.map((v) => JSON.stringify(v)).join(', ')}`;
  const types: string[] = s.type === undefined ? [] : [s.type].flat();
  return types.length === 0 ? 'a valid value' : types.map((t) => describeType(t, s)).join(' or ');
}

/** Every schema object reachable from `schema`, local `$ref`s followed. */
function reachable(schema: unknown, root: Schema, seen = new Set<unknown>()): Set<unknown> {
  if (!isPlainObject(schema) || seen.has(schema)) return seen;
  seen.add(schema);
  if (typeof schema.$ref === 'string') {
    let target: unknown = root;
    for (const segment of pointerSegments(schema.$ref.slice(1))) target = isPlainObject(target) ? target[segment] : undefined;
    reachable(target, root, seen);
  }
  for (const value of Object.values(schema)) {
    if (Array.isArray(value)) value.forEach((v) => reachable(v, root, seen));
    else reachable(value, root, seen);
  }
  return seen;
}

/** Where each property name occurs in the spec (e.g. "criteria" → ["/filter"]), for misplaced keys. */
function keyHomes(root: Schema): Map<string, string[]> {
  const homes = new Map<string, string[]>();
  // The depth bound only guards against a recursive $ref, which the schema does not have today.
  const visit = (raw: Schema, pointer: string, depth: number) => {
    const s = resolveSchema(raw, root);
    if (depth > 8) return;
    for (const part of [s, s.then, s.else]) {
      if (!isPlainObject(part) || !isPlainObject(part.properties)) continue;
      for (const [key, child] of Object.entries(part.properties as Record<string, Schema>)) {
        if (pointer === '' && (key === 'arms' || key === '$schema')) continue;
        const list = homes.get(key) ?? [];
        if (!list.includes(pointer)) list.push(pointer);
        homes.set(key, list);
        visit(child, childPointer(pointer, key), depth + 1);
      }
    }
  };
  visit(root, '', 0);
  return homes;
}

const homesCache = new WeakMap<Schema, Map<string, string[]>>();

/** "/rollout/degenerate" → "rollout.degenerate": relative to the spec or arm, so arm messages need no prefix. */
const dotted = (pointer: string) => (pointer === '' ? 'the top level' : JSON.stringify(pointerSegments(pointer).join('.')));

function unknownKeyMessage(key: string, parent: string, known: string[], root: Schema): string {
  const suggestion = nearest(key, known);
  if (suggestion !== null) return `unknown key; did you mean ${JSON.stringify(suggestion)}?`;
  if (!homesCache.has(root)) homesCache.set(root, keyHomes(root));
  const elsewhere = (homesCache.get(root)!.get(key) ?? []).filter((home) => home !== parent).slice(0, 3);
  if (elsewhere.length > 0) return `unknown key; ${JSON.stringify(key)} belongs in ${elsewhere.map(dotted).join(' or ')}`;
  return `unknown key (expected one of: ${known.join(', ')})`;
}

const VALUE_KEYWORDS = new Set([
  'type', 'enum', 'const', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum',
  'pattern', 'minLength', 'maxLength', 'minItems', 'maxItems',
]);

function issueOf(e: ErrorObject, root: Schema): SpecIssue {
  const parent = (e.parentSchema ?? {}) as Schema;
  const at = e.instancePath;
  // Only when the message uses it: for an unknown key `e.data` is the whole parent object, and
  // serialising it once per unknown key made a spec with thousands of them quadratic.
  const found = () => `found ${describeValue(e.data)}`;
  if (e.keyword === 'additionalProperties') {
    const key = String(e.params.additionalProperty);
    const known = Object.keys(resolveSchema(parent, root).properties ?? {});
    return { path: childPointer(at, key), message: unknownKeyMessage(key, e.instancePath, known, root) };
  }
  if (e.keyword === 'required') {
    const key = String(e.params.missingProperty);
    const property = (resolveSchema(parent, root).properties?.[key] ?? {}) as Schema;
    return { path: childPointer(at, key), message: `required but missing; expected ${expectation(property, root)}` };
  }
  if (e.propertyName !== undefined) {
    // A property name breaking `propertyNames` (an arm's name).
    return { path: childPointer(at, e.propertyName), message: `invalid name; expected ${expectation({ type: 'string', ...parent }, root)}; found ${JSON.stringify(e.propertyName)}` };
  }
  if (e.keyword === 'uniqueItems') {
    const items = e.data as unknown[];
    const { i, j } = e.params as { i: number; j: number };
    return { path: at, message: `expected ${expectation(parent, root)}; found ${describeValue(items[i])} twice (items ${Math.min(i, j)} and ${Math.max(i, j)})` };
  }
  if (VALUE_KEYWORDS.has(e.keyword)) {
    const allowed = e.keyword === 'enum' ? (e.params.allowedValues as unknown[]) : [];
    const strings = allowed.filter((v): v is string => typeof v === 'string');
    const suggestion = typeof e.data === 'string' ? nearest(e.data, strings) : null;
    const hint = suggestion === null ? '' : `; did you mean ${JSON.stringify(suggestion)}?`;
    return { path: at, message: `expected ${expectation(parent, root)}; ${found()}${hint}` };
  }
  return { path: at, message: `${e.message ?? e.keyword}; ${found()}` };
}

/** Drops the errors of a conditional branch chosen by a selector that is itself invalid. */
function withoutNoise(errors: ErrorObject[], root: Schema): ErrorObject[] {
  const noise = new Set<ErrorObject>();
  for (const cond of errors.filter((e) => e.keyword === 'if')) {
    const owner = (cond.parentSchema ?? {}) as Schema;
    const selectorFailed = errors.some(
      (e) =>
        (e.instancePath === cond.instancePath && e.parentSchema === owner && e.keyword === 'type') ||
        (e.instancePath === `${cond.instancePath}/kind` && e.parentSchema === owner.properties?.kind),
    );
    if (!selectorFailed) continue;
    const branch = reachable(owner[String(cond.params.failingKeyword)], root);
    for (const e of errors) {
      if (e.instancePath.startsWith(cond.instancePath) && branch.has(e.parentSchema)) noise.add(e);
    }
  }
  // `if` and `propertyNames` only summarise the errors reported beside them.
  return errors.filter((e) => !noise.has(e) && e.keyword !== 'if' && e.keyword !== 'propertyNames');
}

/**
 * Issues for ajv errors from a validator compiled with `verbose: true` (so each error carries its
 * schema and data). Messages never embed a path, so an arm's issues compare equal to the base's.
 */
export function schemaIssues(errors: ErrorObject[], root: Schema): SpecIssue[] {
  const issues: SpecIssue[] = [];
  const seen = new Set<string>();
  for (const e of withoutNoise(errors, root)) {
    const issue = issueOf(e, root);
    const id = `${issue.path}\n${issue.message}`;
    if (seen.has(id)) continue;
    seen.add(id);
    issues.push(issue);
  }
  return issues;
}
