/**
 * The safetensors format, by hand: an 8-byte little-endian header length, a JSON header naming each
 * tensor's dtype, shape and byte range, then the raw little-endian data. We write F32; we read F32, F16,
 * BF16 and F64 (converted to Float32) so HF checkpoints load too. Reading is strict, like the reference
 * implementation: byte ranges must tile the data exactly, which also catches duplicate header keys
 * (JSON.parse keeps only the last) and truncated or padded files.
 */
import { endianness } from 'node:os';
import { open, type FileHandle } from 'node:fs/promises';
import { isPlainObject } from '../util/objects.ts';
import { sizeOf, type NamedTensor } from './tensor.ts';

export type SafetensorsMetadata = Record<string, string>;

export interface SafetensorsContents {
  /** In data order, which is the order they were written in. */
  tensors: NamedTensor[];
  metadata: SafetensorsMetadata;
}

// Tensors are copied to and from files as views of their memory, which matches the format only on a
// little-endian host (every platform Node 20 ships for).
if (endianness() !== 'LE') throw new Error('safetensors: a little-endian host is required');

const METADATA_KEY = '__metadata__';
const BYTES_PER_ELEMENT = { F32: 4, F16: 2, BF16: 2, F64: 8 } as const;
type Dtype = keyof typeof BYTES_PER_ELEMENT;

interface HeaderEntry {
  name: string;
  dtype: Dtype;
  shape: number[];
  begin: number;
  end: number;
}

interface Header {
  entries: HeaderEntry[];
  metadata: SafetensorsMetadata;
}

export function serializeSafetensors(tensors: readonly NamedTensor[], metadata: SafetensorsMetadata = {}): Uint8Array {
  const header = encodeHeader(tensors, metadata);
  const out = new Uint8Array(header.length + tensors.reduce((n, t) => n + t.data.byteLength, 0));
  out.set(header, 0);
  let offset = header.length;
  for (const t of tensors) {
    out.set(bytesOf(t.data), offset);
    offset += t.data.byteLength;
  }
  return out;
}

/** `source` names the bytes in error messages (e.g. where they came from). */
export function parseSafetensors(bytes: Uint8Array, source = 'safetensors buffer'): SafetensorsContents {
  const headerLength = readHeaderLength(bytes.subarray(0, 8), bytes.length, source);
  const dataStart = 8 + headerLength;
  const header = decodeHeader(bytes.subarray(8, dataStart), bytes.length - dataStart, source);
  const tensors = header.entries.map((e) => ({
    name: e.name,
    shape: e.shape,
    // A copy, so the tensors neither alias the caller's bytes nor keep them alive.
    data: toFloat32(e.dtype, new Uint8Array(bytes.subarray(dataStart + e.begin, dataStart + e.end))),
  }));
  return { tensors, metadata: header.metadata };
}

/** Writes F32 tensors and flushes them to stable storage before resolving. */
export async function writeSafetensors(
  path: string,
  tensors: readonly NamedTensor[],
  metadata: SafetensorsMetadata = {},
): Promise<void> {
  const header = encodeHeader(tensors, metadata, path);
  const handle = await open(path, 'w');
  try {
    // writeFile on a handle continues from the current position, so successive calls append.
    await handle.writeFile(header);
    for (const t of tensors) await handle.writeFile(bytesOf(t.data));
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Reads tensor by tensor, so a file larger than one Buffer can hold still loads. */
export async function readSafetensors(path: string): Promise<SafetensorsContents> {
  const reader = await openSafetensors(path);
  try {
    const tensors: NamedTensor[] = [];
    for (const name of reader.entries.keys()) tensors.push(await reader.read(name));
    return { tensors, metadata: reader.metadata };
  } finally {
    await reader.close();
  }
}

/** One tensor's entry in a safetensors header. */
export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
}

/** A safetensors file opened for reading one tensor at a time, by name. */
export interface SafetensorsReader {
  /** Every tensor in the file, in data order. */
  readonly entries: ReadonlyMap<string, SafetensorsEntry>;
  readonly metadata: SafetensorsMetadata;
  /** The named tensor as float32; throws naming the file when it holds no such tensor. */
  read(name: string): Promise<NamedTensor>;
  close(): Promise<void>;
}

/**
 * Reads the header now and tensors on demand, so a caller that converts a checkpoint tensor by tensor
 * (a sharded Hugging Face model) never holds a whole file in memory.
 */
export async function openSafetensors(path: string): Promise<SafetensorsReader> {
  const handle = await open(path, 'r');
  try {
    const fileSize = (await handle.stat()).size;
    const headerLength = readHeaderLength(await readExactly(handle, 0, Math.min(8, fileSize), path), fileSize, path);
    const dataStart = 8 + headerLength;
    const header = decodeHeader(await readExactly(handle, 8, headerLength, path), fileSize - dataStart, path);
    const byName = new Map(header.entries.map((e) => [e.name, e]));
    return {
      entries: new Map(header.entries.map((e) => [e.name, { dtype: e.dtype, shape: [...e.shape] }])),
      metadata: header.metadata,
      async read(name) {
        const e = byName.get(name);
        if (e === undefined) throw new Error(`${path}: missing tensor "${name}"`);
        const bytes = await readExactly(handle, dataStart + e.begin, e.end - e.begin, path);
        return { name, shape: [...e.shape], data: toFloat32(e.dtype, bytes) };
      },
      close: () => handle.close(),
    };
  } catch (e) {
    await handle.close();
    throw e;
  }
}

function encodeHeader(tensors: readonly NamedTensor[], metadata: SafetensorsMetadata, source = 'safetensors'): Uint8Array {
  // No prototype, so a tensor named "__proto__" is an ordinary key.
  const json: Record<string, unknown> = Object.create(null);
  if (Object.keys(metadata).length > 0) {
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== 'string') {
        throw new Error(`${source}: metadata "${key}" must be a string, got ${typeof value}`);
      }
    }
    json[METADATA_KEY] = metadata;
  }
  let offset = 0;
  for (const t of tensors) {
    const where = `${source}: tensor "${t.name}"`;
    if (typeof t.name !== 'string' || t.name.length === 0 || t.name === METADATA_KEY) {
      throw new Error(`${where}: invalid tensor name`);
    }
    if (Object.hasOwn(json, t.name)) throw new Error(`${where}: duplicate tensor name`);
    if (!(t.data instanceof Float32Array)) throw new Error(`${where}: data must be a Float32Array`);
    checkShape(t.shape, where);
    if (t.data.length !== sizeOf(t.shape)) {
      throw new Error(`${where}: shape [${t.shape}] has ${sizeOf(t.shape)} elements but data has ${t.data.length}`);
    }
    json[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  const text = new TextEncoder().encode(JSON.stringify(json));
  // Spaces pad the header so the data starts 8-byte aligned, letting readers map it in place.
  const headerLength = Math.ceil(text.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength).fill(0x20, 8);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(text, 8);
  return out;
}

function readHeaderLength(prefix: Uint8Array, totalSize: number, source: string): number {
  if (prefix.length < 8) {
    throw new Error(`${source}: truncated: ${totalSize} bytes is too short for the 8-byte header length`);
  }
  const length = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (length > BigInt(totalSize - 8)) {
    throw new Error(`${source}: header length ${length} runs past the end of the data (${totalSize} bytes in all)`);
  }
  return Number(length);
}

function decodeHeader(bytes: Uint8Array, dataLength: number, source: string): Header {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw new Error(`${source}: header is not valid JSON: ${(e as Error).message}`);
  }
  if (!isPlainObject(json)) throw new Error(`${source}: header must be a JSON object`);

  const metadata: SafetensorsMetadata = {};
  const entries: HeaderEntry[] = [];
  for (const [name, value] of Object.entries(json)) {
    if (name === METADATA_KEY) {
      if (!isPlainObject(value)) throw new Error(`${source}: ${METADATA_KEY} must be an object of strings`);
      for (const [key, v] of Object.entries(value)) {
        if (typeof v !== 'string') throw new Error(`${source}: metadata "${key}" must be a string, got ${JSON.stringify(v)}`);
        metadata[key] = v;
      }
      continue;
    }
    entries.push(decodeEntry(name, value, dataLength, `${source}: tensor "${name}"`));
  }

  // Stable sort: writers lay tensors out in order, so data order is write order (empty tensors tie).
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous: HeaderEntry | undefined;
  for (const e of entries) {
    if (e.begin < cursor) {
      throw new Error(
        `${source}: tensor "${e.name}": data_offsets [${e.begin}, ${e.end}] overlap tensor "${previous!.name}" [${previous!.begin}, ${previous!.end}]`,
      );
    }
    if (e.begin > cursor) {
      throw new Error(`${source}: tensor "${e.name}": data bytes [${cursor}, ${e.begin}) before it belong to no tensor`);
    }
    cursor = e.end;
    previous = e;
  }
  if (cursor !== dataLength) {
    throw new Error(`${source}: tensors cover ${cursor} bytes of data but the file holds ${dataLength}`);
  }
  return { entries, metadata };
}

function decodeEntry(name: string, value: unknown, dataLength: number, where: string): HeaderEntry {
  if (!isPlainObject(value)) throw new Error(`${where}: header entry must be an object`);
  const { dtype, shape, data_offsets: offsets } = value;
  if (typeof dtype !== 'string' || !Object.hasOwn(BYTES_PER_ELEMENT, dtype)) {
    throw new Error(`${where}: unsupported dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(BYTES_PER_ELEMENT).join(', ')})`);
  }
  checkShape(shape, where);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isByteCount) || offsets[0] > offsets[1]) {
    throw new Error(`${where}: data_offsets must be [begin, end] with 0 <= begin <= end, got ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (end > dataLength) {
    throw new Error(`${where}: data_offsets [${begin}, ${end}] run past the end of the data (${dataLength} bytes)`);
  }
  const expected = sizeOf(shape) * BYTES_PER_ELEMENT[dtype as Dtype];
  if (end - begin !== expected) {
    throw new Error(`${where}: shape [${shape}] of ${dtype} needs ${expected} bytes but data_offsets span ${end - begin}`);
  }
  return { name, dtype: dtype as Dtype, shape, begin, end };
}

function checkShape(shape: unknown, where: string): asserts shape is number[] {
  if (!Array.isArray(shape) || !shape.every(isByteCount) || !Number.isSafeInteger(sizeOf(shape))) {
    throw new Error(`${where}: shape must be a list of non-negative integers, got ${JSON.stringify(shape)}`);
  }
}

function isByteCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

function bytesOf(data: Float32Array): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** `bytes` must own its buffer from offset 0: the F32 result is a view over it, not a copy. */
function toFloat32(dtype: Dtype, bytes: Uint8Array): Float32Array {
  const count = bytes.byteLength / BYTES_PER_ELEMENT[dtype];
  switch (dtype) {
    case 'F32':
      return new Float32Array(bytes.buffer, bytes.byteOffset, count);
    case 'F64':
      return Float32Array.from(new Float64Array(bytes.buffer, bytes.byteOffset, count));
    case 'BF16': {
      // bfloat16 is the top half of a float32.
      const halves = new Uint16Array(bytes.buffer, bytes.byteOffset, count);
      const out = new Float32Array(count);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = halves[i] << 16;
      return out;
    }
    case 'F16': {
      const halves = new Uint16Array(bytes.buffer, bytes.byteOffset, count);
      const table = f16Table();
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = table[halves[i]];
      return out;
    }
  }
}

let f16Values: Float32Array | undefined;

/** Every half-precision value is exact in float32, so one 64K-entry table converts them all. */
function f16Table(): Float32Array {
  if (f16Values === undefined) {
    f16Values = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const sign = h & 0x8000 ? -1 : 1;
      const exponent = (h >> 10) & 0x1f;
      const mantissa = h & 0x3ff;
      f16Values[h] =
        exponent === 0
          ? sign * mantissa * 2 ** -24
          : exponent === 31
            ? mantissa === 0
              ? sign * Infinity
              : NaN
            : sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
    }
  }
  return f16Values;
}

async function readExactly(handle: FileHandle, position: number, length: number, source: string): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(out, filled, length - filled, position + filled);
    if (bytesRead === 0) throw new Error(`${source}: truncated: file ended at byte ${position + filled} while reading`);
    filled += bytesRead;
  }
  return out;
}
