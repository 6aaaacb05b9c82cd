/**
 * Reading user-supplied JSONL. Data files are written by people and other tools, so every error names
 * the file, the line and what was expected there: a week-long run should die at load time with a
 * message that says where to look, not hours later with a TypeError.
 */

import { readFile } from 'node:fs/promises';

export class DataError extends Error {
  constructor(
    readonly file: string,
    /** 1-based; absent when the error is about the whole file. */
    readonly line: number | undefined,
    readonly reason: string,
  ) {
    super(line === undefined ? `${file}: ${reason}` : `${file}:${line}: ${reason}`);
    this.name = 'DataError';
  }
}

export interface JsonlRecord {
  /** 1-based, as editors count. */
  line: number;
  value: Record<string, unknown>;
}

/** Each non-blank line of `text` as a JSON object; `file` is only used in error messages. */
export function parseJsonl(text: string, file: string): JsonlRecord[] {
  const records: JsonlRecord[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].replace(/\r$/, '');
    if (raw.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      throw new DataError(file, i + 1, `invalid JSON (${(err as Error).message})`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new DataError(file, i + 1, `expected a JSON object, got ${describe(value)}`);
    }
    records.push({ line: i + 1, value: value as Record<string, unknown> });
  }
  return records;
}

export async function readJsonl(file: string): Promise<JsonlRecord[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new DataError(file, undefined, `cannot read file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return parseJsonl(text, file);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${JSON.stringify(value)}`.slice(0, 60);
}

/** Field accessors that turn a missing or mistyped field into a DataError at the record's line. */
export function fields(record: JsonlRecord, file: string) {
  const fail = (reason: string): never => {
    throw new DataError(file, record.line, reason);
  };
  const get = (name: string): unknown => record.value[name];
  return {
    fail,
    has: (name: string): boolean => get(name) !== undefined && get(name) !== null,
    string(name: string): string {
      const v = get(name);
      if (v === undefined) return fail(`missing field "${name}" (expected a string)`);
      if (typeof v !== 'string') return fail(`field "${name}" must be a string, got ${describe(v)}`);
      return v;
    },
    stringArray(name: string): string[] {
      const v = get(name);
      if (v === undefined) return fail(`missing field "${name}" (expected an array of strings)`);
      if (!Array.isArray(v)) return fail(`field "${name}" must be an array of strings, got ${describe(v)}`);
      return v.map((item: unknown, i) =>
        typeof item === 'string' ? item : fail(`field "${name}[${i}]" must be a string, got ${describe(item)}`),
      );
    },
    /** An id-like field: a string or an integer, returned as a string; undefined when absent. */
    id(name: string): string | undefined {
      const v = get(name);
      if (v === undefined || v === null) return undefined;
      if (typeof v === 'string' || (typeof v === 'number' && Number.isInteger(v))) return String(v);
      return fail(`field "${name}" must be a string or an integer, got ${describe(v)}`);
    },
  };
}
