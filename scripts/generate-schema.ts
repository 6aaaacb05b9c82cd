/**
 * Publishes the spec's knob model (src/spec/schema.ts) in the two forms people read:
 *
 *   schemas/experiment.schema.json   the JSON Schema editors load through a spec's "$schema"
 *   docs/spec.md                     every knob: path, what it accepts, default, description
 *
 *   npm run generate
 *
 * Both files are committed, so they can be read without running anything; test/spec/schema-current.test.ts
 * fails when either differs from what this script writes now.
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXPERIMENT_SCHEMA } from '../src/spec/schema.ts';
import { expectation, resolveSchema } from '../src/spec/schema-issues.ts';
import { isPlainObject } from '../src/util/objects.ts';

type Schema = Record<string, unknown>;

const ROOT = JSON.parse(JSON.stringify(EXPERIMENT_SCHEMA)) as Schema;

export const SCHEMA_FILE = fileURLToPath(new URL('../schemas/experiment.schema.json', import.meta.url));
export const DOCS_FILE = fileURLToPath(new URL('../docs/spec.md', import.meta.url));

// Keywords first that say what a schema is, last those that hold other schemas; the rest keep their order.
const HEAD = ['$schema', '$id', 'title', 'description', 'type', 'enum', 'const', '$ref'];
const TAIL = ['additionalProperties', 'propertyNames', 'required', 'properties', 'items', 'if', 'then', 'else', '$defs'];
const SUBSCHEMA = new Set(['additionalProperties', 'propertyNames', 'items', 'if', 'then', 'else']);
const SUBSCHEMA_MAPS = new Set(['properties', '$defs']);

function rank(key: string): number {
  if (HEAD.includes(key)) return HEAD.indexOf(key) - HEAD.length;
  return TAIL.includes(key) ? TAIL.indexOf(key) + 1 : 0;
}

/** `schema` with its keywords in reading order; values that are data (defaults, enums) are left as they are. */
function ordered(schema: Schema): Schema {
  const out: Schema = {};
  for (const key of Object.keys(schema).sort((a, b) => rank(a) - rank(b))) {
    const value = schema[key];
    if (SUBSCHEMA.has(key) && isPlainObject(value)) out[key] = ordered(value);
    else if (SUBSCHEMA_MAPS.has(key) && isPlainObject(value)) out[key] = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, isPlainObject(v) ? ordered(v) : v]));
    else out[key] = value;
  }
  return out;
}

/** JSON indented by two spaces, with lists of plain values (enums, defaults) on one line. */
function pretty(value: unknown, indent = ''): string {
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.every((v) => typeof v !== 'object' || v === null)) return `[${value.map((v) => JSON.stringify(v)).join(', ')}]`;
    return `[\n${value.map((v) => `${inner}${pretty(v, inner)}`).join(',\n')}\n${indent}]`;
  }
  if (!isPlainObject(value)) return JSON.stringify(value);
  const entries = Object.entries(value);
  if (entries.length === 0) return '{}';
  return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${pretty(v, inner)}`).join(',\n')}\n${indent}}`;
}

/** The text of schemas/experiment.schema.json. */
export function schemaJson(): string {
  return `${pretty(ordered(ROOT))}\n`;
}

const resolve = (schema: Schema): Schema => resolveSchema(schema, ROOT);
const refName = (schema: Schema): string | undefined => (typeof schema.$ref === 'string' ? schema.$ref : undefined);
const hasKnobs = (schema: Schema): boolean => isPlainObject(resolve(schema).properties);
const code = (text: string) => `\`${text}\``;
/** A "|" would end a table cell (in a code span too); a "<" in prose could open an HTML tag ("rise/<name>"). */
const cell = (text: string) => text.replaceAll('|', '\\|');
const prose = (text: string) => cell(text).replaceAll('<', '\\<');

/** A GitHub heading anchor. */
const anchor = (heading: string) =>
  heading
    .toLowerCase()
    .replace(/[^a-z0-9 _-]/g, '')
    .replaceAll(' ', '-');

/** An object whose knobs get a section of their own. */
interface Target {
  path: string;
  heading: string;
  /** Unresolved, so a shared shape is recognised by its `$ref`. */
  schema: Schema;
}

/** One way a knob can be written; several when a selector (the task kind) picks its shape. */
interface Variant {
  label: string | null;
  /** The knob's schema, a branch's refinements merged in. */
  schema: Schema;
  /** The branch's own schema (the knob's, without branches), whose object gets the section. */
  own: Schema;
  required: boolean;
}

interface Knob {
  path: string;
  variants: Variant[];
}

/** The then/else of an object whose `if` tests one property's value, labelled by that property's values. */
function branchesOf(s: Schema): { label: string; schema: Schema }[] {
  const test = (s.if as Schema | undefined)?.properties;
  if (!isPlainObject(test) || !isPlainObject(s.then) || !isPlainObject(s.else)) return [];
  const [selector, condition] = Object.entries(test)[0] as [string, Schema];
  const values = (resolve((s.properties as Record<string, Schema>)[selector]).enum ?? []) as unknown[];
  const others = values.filter((v) => v !== condition.const).map((v) => JSON.stringify(v));
  return [
    { label: `${selector} ${JSON.stringify(condition.const)}`, schema: s.then },
    { label: `${selector} ${others.join(', ')}`, schema: s.else },
  ];
}

/** The knobs of an object schema; a property that an if/then/else refines gets one variant per branch. */
function knobsOf(schema: Schema, path: string): Knob[] {
  const s = resolve(schema);
  const required = new Set((s.required ?? []) as string[]);
  const branches = branchesOf(s);
  return Object.entries((s.properties ?? {}) as Record<string, Schema>).map(([key, property]) => {
    const at = path === '' ? key : `${path}.${key}`;
    const refined = branches.flatMap((b) => {
      const branch = (b.schema.properties as Record<string, Schema> | undefined)?.[key];
      if (branch === undefined) return [];
      return [{ label: b.label, schema: { ...property, ...branch }, own: branch, required: ((b.schema.required ?? []) as string[]).includes(key) }];
    });
    return { path: at, variants: refined.length > 0 ? refined : [{ label: null, schema: property, own: property, required: required.has(key) }] };
  });
}

/** The objects a knob's value can be, each with a section: the value itself, its items, or a branch of a conditional. */
function targetsOf(knob: Knob): Target[] {
  return knob.variants.flatMap((variant) => {
    const label = variant.label === null ? '' : ` (${variant.label})`;
    const target = (path: string, schema: Schema): Target => ({ path, heading: `${code(path)}${label}`, schema });
    const s = resolve(variant.own);
    if (hasKnobs(variant.own)) return [target(knob.path, variant.own)];
    if (isPlainObject(s.items) && hasKnobs(s.items)) return [target(`${knob.path}[]`, s.items)];
    return [s.then, s.else].filter((b): b is Schema => isPlainObject(b) && hasKnobs(b)).map((b) => target(knob.path, b));
  });
}

function accepts(variant: Variant): string {
  const s = resolve(variant.schema);
  // A conditional on the value's JSON type (a policy's name or model) accepts what either branch does.
  if (isPlainObject(s.if) && s.if.type !== undefined && isPlainObject(s.then) && isPlainObject(s.else)) {
    return [s.then, s.else].map((b) => (hasKnobs(b) ? 'an object' : expectation(b, ROOT))).join(', or ');
  }
  if (hasKnobs(variant.schema) && s.type === undefined) return 'an object';
  if (isPlainObject(s.propertyNames)) return `an object whose keys are ${expectation({ type: 'string', ...s.propertyNames }, ROOT)}`;
  const items = isPlainObject(s.items) ? `; each ${hasKnobs(s.items) ? 'an object' : expectation(s.items, ROOT)}` : '';
  return `${expectation(variant.schema, ROOT)}${items}`;
}

function defaultOf(variant: Variant): string {
  if (variant.required) return 'required';
  const s = resolve(variant.schema);
  return 'default' in s ? code(JSON.stringify(s.default)) : '—';
}

/** One cell for all of a knob's variants, each after its label when there are several. */
function joined(knob: Knob, value: (v: Variant) => string): string {
  return knob.variants.map((v) => (v.label === null ? value(v) : `${v.label}: ${value(v)}`)).join('; ');
}

/**
 * Where each shared shape (a `$ref`: the model config, the boost) is documented: at its shallowest
 * path, so the top-level `boost` holds the boost's knobs and the expert's boost links there.
 */
function homes(): Map<string, string> {
  const home = new Map<string, string>();
  const queue: Target[] = [{ path: '', heading: 'Top level', schema: ROOT }];
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    for (const target of knobsOf(next.schema, next.path).flatMap(targetsOf)) {
      const name = refName(target.schema);
      if (name !== undefined && home.has(name)) continue;
      if (name !== undefined) home.set(name, target.heading);
      queue.push(target);
    }
  }
  return home;
}

function section(target: Target, home: Map<string, string>): string[] {
  const description = resolve(target.schema).description;
  const lines = [`## ${target.heading}`, ''];
  if (typeof description === 'string') lines.push(prose(description), '');
  lines.push('| Knob | Accepts | Default | Description |', '| --- | --- | --- | --- |');
  const nested: Target[] = [];
  for (const knob of knobsOf(target.schema, target.path)) {
    const see = targetsOf(knob).map((t) => {
      const name = refName(t.schema);
      const heading = name === undefined ? t.heading : home.get(name)!;
      if (heading === t.heading) nested.push(t);
      return `[${heading}](#${anchor(heading)})`;
    });
    const description = knob.variants.map((v) => resolve(v.schema).description).find((d) => typeof d === 'string') ?? '';
    const also = see.length === 0 ? '' : ` See ${see.join(', ')}.`;
    lines.push(`| ${code(knob.path)} | ${prose(joined(knob, accepts))} | ${cell(joined(knob, defaultOf))} | ${prose(String(description))}${also} |`);
  }
  return [lines.join('\n'), ...nested.flatMap((t) => section(t, home))];
}

/** The markdown of docs/spec.md. */
export function specDocs(): string {
  const sections = section({ path: '', heading: 'Top level', schema: ROOT }, homes());
  return `${[INTRO, ...sections].join('\n\n')}\n`;
}

const INTRO = `# Experiment spec

An experiment is one JSON file: a task, a model, the boost (SFT) that comes before iteration 1, and the
knobs of every RISE iteration (rollout, relabel, filter, train, evaluate). Every knob has a default, so
\`{}\` is a valid experiment; \`arms\` declares ablations as overrides merged onto the base.

\`rise validate SPEC\` checks a spec without running it and prints every problem at once, each with its
file position and JSON path. Starting a spec with \`"$schema": "../schemas/experiment.schema.json"\`
(relative to the spec) gives completion and these descriptions in editors that read JSON Schema.

This page and schemas/experiment.schema.json are generated from src/spec/schema.ts by \`npm run generate\`;
edit the schema there, not here. Paths are dotted (\`rollout.degenerate.maxTokenChars\`); \`[]\` marks the
items of a list.`;

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const [file, text] of [
    [SCHEMA_FILE, schemaJson()],
    [DOCS_FILE, specDocs()],
  ] as const) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
    console.log(`wrote ${file}`);
  }
}
