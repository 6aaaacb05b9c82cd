/**
 * How an arm differs from the base spec: the leaves whose resolved values differ, by JSON pointer.
 * Arrays count as leaves because an arm's override replaces an array whole (src/spec/merge.ts), so
 * `/task/train/ops: [2,3] → [4]` says what the arm declared rather than an element-by-element edit.
 */

import type { ArmSpec, ExperimentSpec } from '../spec/types.ts';

export interface SpecChange {
  /** JSON pointer into the arm's config, e.g. `/train/weighting`. */
  path: string;
  /** Absent when only one side has the key. */
  base?: unknown;
  arm?: unknown;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const escapePointer = (key: string) => key.replaceAll('~', '~0').replaceAll('/', '~1');

export function diffJson(base: unknown, arm: unknown, path = ''): SpecChange[] {
  if (isObject(base) && isObject(arm)) {
    const keys = [...new Set([...Object.keys(base), ...Object.keys(arm)])];
    return keys.flatMap((key) => {
      const at = `${path}/${escapePointer(key)}`;
      if (!Object.hasOwn(arm, key)) return [{ path: at, base: base[key] }];
      if (!Object.hasOwn(base, key)) return [{ path: at, arm: arm[key] }];
      return diffJson(base[key], arm[key], at);
    });
  }
  return JSON.stringify(base) === JSON.stringify(arm) ? [] : [{ path, base, arm }];
}

/** The base an arm was merged onto: the spec without what belongs to the experiment as a whole. */
function baseConfig(spec: ExperimentSpec): ArmSpec {
  const { name: _name, description: _description, seeds: _seeds, budget: _budget, arms: _arms, ...base } = spec;
  return base;
}

/** Each arm's changes from the base, in the spec's arm order. */
export function armDiffs(spec: ExperimentSpec): { arm: string; changes: SpecChange[] }[] {
  const base = baseConfig(spec);
  return Object.entries(spec.arms).map(([arm, config]) => ({ arm, changes: diffJson(base, config) }));
}

export function formatChange(change: SpecChange): string {
  const show = (v: unknown) => (v === undefined ? '(absent)' : JSON.stringify(v));
  return `${change.path}: ${show(change.base)} → ${show(change.arm)}`;
}
