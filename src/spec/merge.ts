/**
 * How an arm's overrides apply to the base spec: objects merge key by key, everything else (arrays,
 * numbers, strings, null) replaces. Merging happens before defaults are filled, so a default never
 * masks an override and an arm's partial object is completed exactly as the base's would be.
 */

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

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
