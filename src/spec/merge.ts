/**
 * How an arm's overrides apply to the base spec: objects merge key by key, everything else (arrays,
 * numbers, strings, null) replaces. Merging happens before defaults are filled, so a default never
 * masks an override and an arm's partial object is completed exactly as the base's would be.
 */

import { isPlainObject } from '../util/objects.ts';

export function mergeOverrides(base: Record<string, unknown>, override: Record<string, unknown>): Record<string, unknown>;
export function mergeOverrides(base: unknown, override: unknown): unknown;
export function mergeOverrides(base: unknown, override: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(override)) return structuredClone(override);
  const out: Record<string, unknown> = structuredClone(base);
  for (const [key, value] of Object.entries(override)) {
    Object.defineProperty(out, key, {
      value: Object.hasOwn(out, key) ? mergeOverrides(out[key], value) : structuredClone(value),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}
