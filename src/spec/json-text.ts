/**
 * A JSON parser that remembers where every value came from, so spec errors can name file:line:column
 * and not only a JSON path. It also reports duplicate keys, which JSON.parse silently resolves to the
 * last one: in a hand-edited spec a second "lr" is a mistake, not an override.
 *
 * Strict JSON (no comments, no trailing commas), so every spec also reads in any other tool.
 */

import { childPointer } from './pointer.ts';

export interface Location {
  /** 1-based. */
  line: number;
  /** 1-based, in UTF-16 code units. */
  column: number;
}

export class JsonSyntaxError extends Error {
  override name = 'JsonSyntaxError';
  constructor(
    readonly reason: string,
    readonly location: Location,
  ) {
    super(`${location.line}:${location.column}: ${reason}`);
  }
}

export interface DuplicateKey {
  pointer: string;
  location: Location;
  first: Location;
}

/**
 * Containers nested deeper than this are refused. Parsing, cloning, validating and merging a spec all
 * recurse, so an unbounded depth ends in a stack overflow; a real spec is under ten levels deep.
 */
export const MAX_DEPTH = 100;
export const TOO_DEEP = `nesting deeper than ${MAX_DEPTH} levels`;

/** Valid JSON nested deeper than `MAX_DEPTH`: the container at `pointer` is one level too deep. */
export class JsonDepthError extends Error {
  override name = 'JsonDepthError';
  constructor(
    readonly pointer: string,
    readonly location: Location,
  ) {
    super(`${location.line}:${location.column}: ${TOO_DEEP}`);
  }
}

export interface ParsedJson {
  value: unknown;
  duplicates: DuplicateKey[];
  /**
   * Where the value at `pointer` starts (its key, for an object member); the nearest ancestor's when
   * absent. A map lookup per ancestor, so locating every issue of a large spec stays linear.
   */
  locate(pointer: string): Location;
}

function locationAt(text: string, offset: number): Location {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const NUMBER_LIKE = /[-+.\dA-Za-z]+/y;
const WORD = /[A-Za-z_$][\w$]*/y;
const ESCAPES = new Set(['"', '\\', '/', 'b', 'f', 'n', 'r', 't']);

function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  // A plain assignment of "__proto__" would replace the prototype instead of adding a key.
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

export function parseJson(input: string): ParsedJson {
  // A byte-order mark is invisible in editors; skipping it keeps columns as people see them.
  const text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  const locations = new Map<string, Location>();
  const duplicates: DuplicateKey[] = [];
  let i = 0;
  // Line breaks occur only between tokens (a string cannot hold one), so skipSpace alone counts them.
  let line = 1;
  let lineStart = 0;
  const here = (): Location => ({ line, column: i - lineStart + 1 });

  const fail = (reason: string, at = i): never => {
    throw new JsonSyntaxError(reason, locationAt(text, at));
  };
  const found = (): string => {
    if (i >= text.length) return 'the end of the file';
    WORD.lastIndex = i;
    const word = WORD.exec(text);
    return word ? JSON.stringify(word[0]) : JSON.stringify(text[i]);
  };
  const skipSpace = () => {
    while (i < text.length) {
      const c = text[i];
      if (c === '\n') {
        i++;
        line++;
        lineStart = i;
      } else if (c === ' ' || c === '\t' || c === '\r') i++;
      else if (c === '/' && (text[i + 1] === '/' || text[i + 1] === '*')) fail('comments are not allowed in JSON');
      else break;
    }
  };

  const parseString = (): string => {
    const start = i;
    i++;
    while (i < text.length && text[i] !== '"') {
      const code = text.charCodeAt(i);
      if (code < 0x20) fail(code === 10 ? 'unterminated string (a line break must be written \\n)' : 'control character in a string (escape it)');
      if (text[i] === '\\') {
        const e = text[i + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) fail('\\u must be followed by 4 hex digits');
          i += 6;
          continue;
        }
        if (e === undefined || !ESCAPES.has(e)) fail(`invalid escape \\${e ?? ''} in a string`);
        i += 2;
        continue;
      }
      i++;
    }
    if (i >= text.length) fail('unterminated string', start);
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };

  const parseNumber = (): number => {
    const start = i;
    NUMBER_LIKE.lastIndex = i;
    const token = NUMBER_LIKE.exec(text)?.[0] ?? text[i];
    NUMBER.lastIndex = i;
    const match = NUMBER.exec(text);
    if (!match || match[0].length !== token.length) fail(`invalid number ${JSON.stringify(token)}`, start);
    i += token.length;
    return Number(token);
  };

  const parseValue = (pointer: string, depth: number): unknown => {
    skipSpace();
    if (!locations.has(pointer)) locations.set(pointer, here());
    const c = text[i];
    if ((c === '{' || c === '[') && depth > MAX_DEPTH) throw new JsonDepthError(pointer, here());
    if (c === '{') return parseObject(pointer, depth);
    if (c === '[') return parseArray(pointer, depth);
    if (c === '"') return parseString();
    if (c === '-' || (c >= '0' && c <= '9')) return parseNumber();
    for (const [word, value] of [['true', true], ['false', false], ['null', null]] as const) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return value;
      }
    }
    if (c === "'") fail('strings must be in double quotes');
    if (/[A-Za-z_$]/.test(c ?? '')) fail(`unexpected ${found()}: JSON values are objects, arrays, "strings", numbers, true, false and null`);
    return fail(`expected a value, found ${found()}`);
  };

  const parseObject = (pointer: string, depth: number): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    const keyLocations = new Map<string, Location>();
    i++;
    skipSpace();
    if (text[i] === '}') {
      i++;
      return out;
    }
    for (;;) {
      skipSpace();
      if (text[i] !== '"') {
        if (text[i] === '}') fail('trailing comma before "}" (not allowed in JSON)');
        fail(text[i] === "'" ? 'keys must be in double quotes' : `expected a key in double quotes, found ${found()}`);
      }
      const keyAt = here();
      const key = parseString();
      const child = childPointer(pointer, key);
      const first = keyLocations.get(key);
      if (first !== undefined) {
        duplicates.push({ pointer: child, location: keyAt, first });
      } else {
        keyLocations.set(key, keyAt);
        locations.set(child, keyAt);
      }
      skipSpace();
      if (text[i] !== ':') fail(`expected ":" after the key ${JSON.stringify(key)}, found ${found()}`);
      i++;
      setOwn(out, key, parseValue(child, depth + 1));
      skipSpace();
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === '}') {
        i++;
        return out;
      }
      fail(`expected "," or "}" after the value of ${JSON.stringify(key)}, found ${found()}`);
    }
  };

  const parseArray = (pointer: string, depth: number): unknown[] => {
    const out: unknown[] = [];
    i++;
    skipSpace();
    if (text[i] === ']') {
      i++;
      return out;
    }
    for (;;) {
      skipSpace();
      if (text[i] === ']') fail('trailing comma before "]" (not allowed in JSON)');
      out.push(parseValue(childPointer(pointer, out.length), depth + 1));
      skipSpace();
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === ']') {
        i++;
        return out;
      }
      fail(`expected "," or "]" after an array item, found ${found()}`);
    }
  };

  skipSpace();
  if (i >= text.length) fail('the file is empty: expected a JSON object');
  const value = parseValue('', 1);
  skipSpace();
  if (i < text.length) fail(`unexpected ${found()} after the end of the JSON value`);

  const locate = (pointer: string): Location => {
    for (let p = pointer; ; p = p.slice(0, p.lastIndexOf('/'))) {
      const at = locations.get(p);
      if (at !== undefined) return at;
      if (p === '') return { line: 1, column: 1 };
    }
  };
  return { value, duplicates, locate };
}
