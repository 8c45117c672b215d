/**
 * A small seeded PRNG (xoshiro128**) owned by the data layer, so splits and augmentation depend only
 * on the seed and never on Math.random, the engine's generator or the order workers finish in.
 */

/** Mixes 32-bit words into one (murmur3 finaliser): nearby seeds give unrelated streams. */
export function mix(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    // Two 32-bit halves so seeds and indices above 2^32 still count.
    const lo = p >>> 0, hi = Math.floor(p / 4294967296) >>> 0;
    for (const w of [lo, hi]) {
      h ^= Math.imul(w ^ (w >>> 16), 0x85ebca6b);
      h = Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64;
      h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b); h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35); h ^= h >>> 16;
    }
  }
  return h >>> 0;
}

export class Rng {
  private s0: number; private s1: number; private s2: number; private s3: number;

  /** A generator determined by any list of integers, e.g. (seed, epoch, sampleIndex). */
  constructor(...seed: number[]) {
    // splitmix32 expands the mixed seed into the four state words (never all zero).
    let x = mix(...seed);
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next(); this.s1 = next(); this.s2 = next(); this.s3 = next() | 1;
  }

  /** Next 32-bit unsigned integer. */
  u32(): number {
    const r = Math.imul(((Math.imul(this.s1, 5) << 7) | (Math.imul(this.s1, 5) >>> 25)), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0; this.s3 ^= this.s1; this.s1 ^= this.s2; this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = (this.s3 << 11) | (this.s3 >>> 21);
    return r;
  }

  /** Uniform in [0, 1), 32 bits of resolution. */
  float(): number { return this.u32() / 4294967296; }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number { return lo + (hi - lo) * this.float(); }

  /** Uniform integer in [0, n), without modulo bias. */
  int(n: number): number {
    if (n <= 0) throw new RangeError('Rng.int: n must be positive');
    const limit = 4294967296 - (4294967296 % n);
    for (;;) { const v = this.u32(); if (v < limit) return v % n; }
  }

  /** Fisher–Yates shuffle in place. */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) { const j = this.int(i + 1); const t = a[i]; a[i] = a[j]; a[j] = t; }
    return a;
  }
}
