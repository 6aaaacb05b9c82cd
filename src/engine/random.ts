/**
 * Seeded pseudo-random streams. Every consumer (initialisation, sampling, data shuffles) derives its
 * own stream from named parts — e.g. (seed, item id) — so results never depend on the order or the
 * batch in which work happens.
 */

/** 32-bit FNV-1a over the parts, then a splitmix finaliser: a well-mixed seed from names and numbers. */
export function hashSeed(...parts: (string | number)[]): number {
  let h = 0x811c9dc5;
  for (const part of parts) {
    const s = `${typeof part}:${part}|`;
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
  }
  return mix32(h);
}

function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** xoshiro128**: small state, fast, and good enough statistically for sampling and initialisation. */
export class Rng {
  private s = new Uint32Array(4);
  private spare: number | null = null;

  constructor(...seedParts: (string | number)[]) {
    this.setKey(hashSeed(...seedParts));
  }

  /**
   * The stream whose key is `key`: `Rng.keyed(hashSeed(...parts))` is `new Rng(...parts)`. A stream's key
   * is one uint32, so it can name the stream where only a number travels (an API request's `seed`).
   */
  static keyed(key: number): Rng {
    const rng = new Rng();
    rng.setKey(key >>> 0);
    return rng;
  }

  private setKey(key: number): void {
    let x = key;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      this.s[i] = mix32(x);
    }
    if (this.s.every((v) => v === 0)) this.s[0] = 1;
  }

  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 bits. */
  uniform(): number {
    return (this.nextU32() * 2 ** 21 + (this.nextU32() >>> 11)) / 2 ** 53;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal (Box–Muller, caching the second value). */
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
