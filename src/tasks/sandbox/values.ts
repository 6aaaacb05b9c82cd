/**
 * Python values as the sandbox's harness encodes them (`encode` in harness.py: `["type", payload]`),
 * decoded strictly and compared with Python's `==` semantics, so that the verdict on a test is computed
 * here, in the trusted process, from plain data. What arrives from a sandbox is whatever the candidate
 * chose to send: anything that is not a well-formed encoding of a value Python could hold (a bad tag, a
 * dict with two equal keys, a list used as a key, nesting past the limit) is rejected with an error.
 */

/** Same bound as harness.py's MAX_DEPTH. */
const MAX_DEPTH = 100;

/** A real number exactly: integers (and integral floats) as bigint, other floats as number. */
type Real = bigint | number;

export type PyValue =
  | { type: 'none' }
  | { type: 'number'; real: Real; imag: Real }
  | { type: 'str'; value: string }
  | { type: 'bytes'; value: string }
  | { type: 'list' | 'tuple'; items: PyValue[] }
  /** Keyed by `hashKey`: equal keys are equal elements. */
  | { type: 'set' | 'frozenset'; items: Map<string, PyValue> }
  | { type: 'dict'; entries: Map<string, PyValue> }
  | { type: 'other'; name: string };

export class MalformedValue extends Error {}

function fail(why: string): never {
  throw new MalformedValue(why);
}

function real(x: number): Real {
  return Number.isInteger(x) ? BigInt(x) : x;
}

function decodeFloat(x: unknown): Real {
  if (typeof x === 'number') return real(x);
  if (x === 'inf') return Infinity;
  if (x === '-inf') return -Infinity;
  if (x === 'nan') return NaN;
  return fail(`not a float: ${JSON.stringify(x)}`);
}

function decodeInt(x: unknown): bigint {
  if (typeof x !== 'string' || !/^-?[0-9a-f]+$/.test(x)) return fail(`not an int: ${JSON.stringify(x)}`);
  const magnitude = BigInt(`0x${x.replace('-', '')}`);
  return x.startsWith('-') ? -magnitude : magnitude;
}

function array(x: unknown): unknown[] {
  return Array.isArray(x) ? x : fail(`not an array: ${JSON.stringify(x)?.slice(0, 80)}`);
}

let nanKeys = 0;

function realKey(x: Real): string {
  if (typeof x === 'bigint') return `i${x}`;
  // A NaN equals nothing, not even another NaN decoded from elsewhere.
  return Number.isNaN(x) ? `nan${nanKeys++}` : `f${x}`;
}

/**
 * A string that two hashable values share exactly when Python's `==` holds between them (so True, 1,
 * 1.0 and 1+0j share one), or a MalformedValue for a value Python cannot hash.
 */
function hashKey(v: PyValue): string {
  switch (v.type) {
    case 'none':
      return 'N';
    case 'number':
      return v.imag === 0n ? `n${realKey(v.real)}` : `c${realKey(v.real)},${realKey(v.imag)}`;
    case 'str':
      return `s${JSON.stringify(v.value)}`;
    case 'bytes':
      return `b${v.value}`;
    case 'tuple':
      return `t${JSON.stringify(v.items.map(hashKey))}`;
    case 'frozenset':
      return `F${JSON.stringify([...v.items.keys()].sort())}`;
    case 'other':
      return fail(`an object of type ${v.name} used as a key`);
    default:
      return fail(`unhashable ${v.type} used as a key`);
  }
}

function keyed(items: PyValue[], what: string): Map<string, PyValue> {
  const map = new Map<string, PyValue>();
  for (const item of items) {
    const key = hashKey(item);
    if (map.has(key)) fail(`a ${what} with two equal elements`);
    map.set(key, item);
  }
  return map;
}

function decodeAt(x: unknown, depth: number): PyValue {
  if (depth > MAX_DEPTH) fail(`nested more than ${MAX_DEPTH} deep`);
  const [tag, ...payload] = array(x);
  const one = (): unknown => (payload.length === 1 ? payload[0] : fail(`${String(tag)} takes one payload`));
  const items = (): PyValue[] => array(one()).map((item) => decodeAt(item, depth + 1));
  switch (tag) {
    case 'none':
      return payload.length === 0 ? { type: 'none' } : fail('none takes no payload');
    case 'bool': {
      const b = one();
      return typeof b === 'boolean' ? { type: 'number', real: b ? 1n : 0n, imag: 0n } : fail('not a bool');
    }
    case 'int':
      return { type: 'number', real: decodeInt(one()), imag: 0n };
    case 'float':
      return { type: 'number', real: decodeFloat(one()), imag: 0n };
    case 'complex':
      if (payload.length !== 2) fail('complex takes two payloads');
      return { type: 'number', real: decodeFloat(payload[0]), imag: decodeFloat(payload[1]) };
    case 'str': {
      const s = one();
      return typeof s === 'string' ? { type: 'str', value: s } : fail('not a str');
    }
    case 'bytes': {
      const s = one();
      // Lower-case hexadecimal only, so that equal bytes have one spelling.
      return typeof s === 'string' && /^([0-9a-f]{2})*$/.test(s) ? { type: 'bytes', value: s } : fail('not bytes in hexadecimal');
    }
    case 'list':
    case 'tuple':
      return { type: tag, items: items() };
    case 'set':
    case 'frozenset':
      return { type: tag, items: keyed(items(), tag) };
    case 'dict': {
      const entries = new Map<string, PyValue>();
      const keys = new Map<string, PyValue>();
      for (const pair of array(one())) {
        const kv = array(pair);
        if (kv.length !== 2) fail('a dict entry is not a [key, value] pair');
        const [k, v] = kv;
        const key = decodeAt(k, depth + 1);
        const hash = hashKey(key);
        if (keys.has(hash)) fail('a dict with two equal keys');
        keys.set(hash, key);
        entries.set(hash, decodeAt(v, depth + 1));
      }
      return { type: 'dict', entries };
    }
    case 'other': {
      const name = one();
      return typeof name === 'string' ? { type: 'other', name } : fail('not a type name');
    }
    default:
      return fail(`unknown type tag ${JSON.stringify(tag)?.slice(0, 40)}`);
  }
}

/** The value `encoded` stands for; a MalformedValue when it stands for none. */
export function decodeValue(encoded: unknown): PyValue {
  return decodeAt(encoded, 0);
}

function realEqual(a: Real, b: Real): boolean {
  // An integer never equals a float with a fraction, an infinity or a NaN; integral floats are bigints.
  return typeof a === typeof b && a === b;
}

/** Python's `a == b` for values of the built-in types; an `other` value equals nothing. */
export function pyEqual(a: PyValue, b: PyValue): boolean {
  switch (a.type) {
    case 'none':
      return b.type === 'none';
    case 'number':
      return b.type === 'number' && realEqual(a.real, b.real) && realEqual(a.imag, b.imag);
    case 'str':
    case 'bytes':
      return b.type === a.type && b.value === a.value;
    case 'list':
    case 'tuple':
      return b.type === a.type && a.items.length === b.items.length && a.items.every((item, i) => pyEqual(item, b.items[i]));
    case 'set':
    case 'frozenset':
      // A set equals a frozenset with the same elements.
      return (b.type === 'set' || b.type === 'frozenset') && a.items.size === b.items.size && [...a.items.keys()].every((k) => b.items.has(k));
    case 'dict':
      return (
        b.type === 'dict' &&
        a.entries.size === b.entries.size &&
        [...a.entries].every(([k, v]) => {
          const other = b.entries.get(k);
          return other !== undefined && pyEqual(v, other);
        })
      );
    case 'other':
      return false;
  }
}
