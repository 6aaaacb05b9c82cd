/** Plain-object checks shared by every layer that reads untyped JSON (specs, checkpoints, safetensors headers). */

/** A JSON object: not null, not an array. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
