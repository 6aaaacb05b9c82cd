/**
 * GGML's tensor encodings decoded to float32, one function per block format, written from the block
 * layouts of ggml-common.h: a tensor is a run of fixed-size blocks, each holding a few scales and the
 * packed integer codes of `elements` values, all little-endian.
 *
 * GGML dequantizes in float32 arithmetic. JavaScript computes in doubles; one double operation on
 * float32 inputs rounded back to float32 (Math.fround, or a store into a Float32Array) is exactly the
 * float32 operation, so rounding after every step that feeds another reproduces GGML's values bit for bit.
 */

/** The encodings this importer reads, by GGML's names. */
export const BLOCK_FORMATS = {
  F32: { elements: 1, bytes: 4 },
  F16: { elements: 1, bytes: 2 },
  BF16: { elements: 1, bytes: 2 },
  Q4_0: { elements: 32, bytes: 18 },
  Q4_1: { elements: 32, bytes: 20 },
  Q5_0: { elements: 32, bytes: 22 },
  Q5_1: { elements: 32, bytes: 24 },
  Q8_0: { elements: 32, bytes: 34 },
  Q4_K: { elements: 256, bytes: 144 },
  Q5_K: { elements: 256, bytes: 176 },
  Q6_K: { elements: 256, bytes: 210 },
} as const;

export type GgmlType = keyof typeof BLOCK_FORMATS;

export function isGgmlType(name: string): name is GgmlType {
  return Object.hasOwn(BLOCK_FORMATS, name);
}

/** Bytes that `count` values take in `type`; throws when they do not fill whole blocks. */
export function encodedBytes(type: GgmlType, count: number): number {
  const { elements, bytes } = BLOCK_FORMATS[type];
  if (count % elements !== 0) throw new Error(`${type}: ${count} values do not fill whole blocks of ${elements}`);
  return (count / elements) * bytes;
}

/** Decodes `count` values of `type` from `bytes`, which must hold exactly their encoding. */
export function dequantize(type: GgmlType, bytes: Uint8Array, count: number): Float32Array {
  const expected = encodedBytes(type, count);
  if (bytes.byteLength !== expected) {
    throw new Error(`${type}: ${count} values take ${expected} bytes, got ${bytes.byteLength}`);
  }
  const out = new Float32Array(count);
  DECODERS[type](new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), out);
  return out;
}

type Decoder = (src: DataView, out: Float32Array) => void;

const DECODERS: Record<GgmlType, Decoder> = { F32: f32, F16: f16, BF16: bf16, Q4_0: q4_0, Q4_1: q4_1, Q5_0: q5_0, Q5_1: q5_1, Q8_0: q8_0, Q4_K: q4_k, Q5_K: q5_k, Q6_K: q6_k };

const fround = Math.fround;

/** IEEE half precision; every value is exact in float32. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

const half = (src: DataView, at: number) => halfToFloat(src.getUint16(at, true));

function f32(src: DataView, out: Float32Array): void {
  for (let i = 0; i < out.length; i++) out[i] = src.getFloat32(4 * i, true);
}

function f16(src: DataView, out: Float32Array): void {
  for (let i = 0; i < out.length; i++) out[i] = half(src, 2 * i);
}

/** bfloat16 is the top half of a float32. */
function bf16(src: DataView, out: Float32Array): void {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < out.length; i++) bits[i] = src.getUint16(2 * i, true) << 16;
}

/** d: f16, 16 bytes of nibbles; value j is nibble j of the low halves, then of the high halves, minus 8. */
function q4_0(src: DataView, out: Float32Array): void {
  for (let b = 0, o = 0; o < out.length; b += 18, o += 32) {
    const d = half(src, b);
    for (let j = 0; j < 16; j++) {
      const q = src.getUint8(b + 2 + j);
      out[o + j] = d * ((q & 15) - 8);
      out[o + j + 16] = d * ((q >> 4) - 8);
    }
  }
}

/** d, m: f16, then nibbles as Q4_0, unsigned: d·q + m. */
function q4_1(src: DataView, out: Float32Array): void {
  for (let b = 0, o = 0; o < out.length; b += 20, o += 32) {
    const d = half(src, b);
    const m = half(src, b + 2);
    for (let j = 0; j < 16; j++) {
      const q = src.getUint8(b + 4 + j);
      out[o + j] = fround(d * (q & 15)) + m;
      out[o + j + 16] = fround(d * (q >> 4)) + m;
    }
  }
}

/** d: f16, 32 fifth bits (one u32, bit j for value j), nibbles as Q4_0: d·(q − 16). */
function q5_0(src: DataView, out: Float32Array): void {
  for (let b = 0, o = 0; o < out.length; b += 22, o += 32) {
    const d = half(src, b);
    const high = src.getUint32(b + 2, true);
    for (let j = 0; j < 16; j++) {
      const q = src.getUint8(b + 6 + j);
      out[o + j] = d * (((q & 15) | (((high >>> j) & 1) << 4)) - 16);
      out[o + j + 16] = d * (((q >> 4) | (((high >>> (j + 16)) & 1) << 4)) - 16);
    }
  }
}

/** d, m: f16, fifth bits and nibbles as Q5_0, unsigned: d·q + m. */
function q5_1(src: DataView, out: Float32Array): void {
  for (let b = 0, o = 0; o < out.length; b += 24, o += 32) {
    const d = half(src, b);
    const m = half(src, b + 2);
    const high = src.getUint32(b + 4, true);
    for (let j = 0; j < 16; j++) {
      const q = src.getUint8(b + 8 + j);
      out[o + j] = fround(d * ((q & 15) | (((high >>> j) & 1) << 4))) + m;
      out[o + j + 16] = fround(d * ((q >> 4) | (((high >>> (j + 16)) & 1) << 4))) + m;
    }
  }
}

/** d: f16, then 32 signed bytes: d·q. */
function q8_0(src: DataView, out: Float32Array): void {
  for (let b = 0, o = 0; o < out.length; b += 34, o += 32) {
    const d = half(src, b);
    for (let j = 0; j < 32; j++) out[o + j] = d * src.getInt8(b + 2 + j);
  }
}

/**
 * The 6-bit scale and min of sub-block j (of 8) in the 12 packed bytes of Q4_K and Q5_K: sub-blocks 0–3
 * keep theirs in the low 6 bits of bytes j and j+4; sub-blocks 4–7 split theirs between a nibble of
 * byte j+4 and the top 2 bits of bytes j−4 and j.
 */
function scaleMin(src: DataView, at: number, j: number): [scale: number, min: number] {
  const byte = (i: number) => src.getUint8(at + i);
  if (j < 4) return [byte(j) & 63, byte(j + 4) & 63];
  return [(byte(j + 4) & 15) | ((byte(j - 4) >> 6) << 4), (byte(j + 4) >> 4) | ((byte(j) >> 6) << 4)];
}

/**
 * Q4_K and Q5_K: d, dmin (f16), 12 bytes of 6-bit scales and mins, for Q5_K 32 bytes of fifth bits (bit s
 * of byte l for value l of sub-block s), then 128 bytes of nibbles. Eight sub-blocks of 32; each 32 bytes
 * of nibbles serve two sub-blocks (low nibbles, then high): (d·scale)·q − dmin·min.
 */
function kQuant(src: DataView, out: Float32Array, fifthBits: boolean): void {
  const blockBytes = fifthBits ? 176 : 144;
  const nibbles = fifthBits ? 48 : 16;
  for (let b = 0, o = 0; o < out.length; b += blockBytes, o += 256) {
    const d = half(src, b);
    const dmin = half(src, b + 2);
    for (let s = 0; s < 8; s++) {
      const [scale, min] = scaleMin(src, b + 4, s);
      const step = fround(d * scale);
      const offset = fround(dmin * min);
      const codes = b + nibbles + 32 * (s >> 1);
      const shift = 4 * (s & 1);
      for (let l = 0; l < 32; l++) {
        const low = (src.getUint8(codes + l) >> shift) & 15;
        const q = fifthBits ? low | (((src.getUint8(b + 16 + l) >> s) & 1) << 4) : low;
        out[o + 32 * s + l] = fround(step * q) - offset;
      }
    }
  }
}

function q4_k(src: DataView, out: Float32Array): void {
  kQuant(src, out, false);
}

function q5_k(src: DataView, out: Float32Array): void {
  kQuant(src, out, true);
}

/**
 * 128 bytes of low nibbles, 64 bytes of high 2-bit pairs, 16 signed scales, d: f16. Each half of 128
 * values takes 64 low-nibble bytes and 32 high bytes: value l + 32·k of the half has nibble k >> 1 (low,
 * then high) of low byte l + 32·(k & 1) and bits 2k..2k+1 of high byte l. (d·scale)·(q − 32), one scale
 * per 16 values.
 */
function q6_k(src: DataView, out: Float32Array): void {
  for (let b = 0, o = 0; o < out.length; b += 210, o += 256) {
    const d = half(src, b + 208);
    for (let h = 0; h < 2; h++) {
      const low = b + 64 * h;
      const high = b + 128 + 32 * h;
      for (let k = 0; k < 4; k++) {
        for (let l = 0; l < 32; l++) {
          const e = 128 * h + 32 * k + l;
          const nibble = (src.getUint8(low + l + 32 * (k & 1)) >> (4 * (k >> 1))) & 15;
          const q = nibble | (((src.getUint8(high + l) >> (2 * k)) & 3) << 4);
          out[o + e] = fround(d * src.getInt8(b + 192 + (e >> 4))) * (q - 32);
        }
      }
    }
  }
}
