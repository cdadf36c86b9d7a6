// Two 32-bit hashes of a key, computed once per update and shared by every row of a sketch and every
// sketch of a ring (they all use the same seeds): the row indexes come from h1 + j * h2
// (Kirsch-Mitzenmacher double hashing) and the fingerprint from h2. Numbers that are 32-bit unsigned
// integers (room ids, uids) take a fast path of two integer finalizers; other numbers hash their
// IEEE-754 bits; strings one FNV-1a pass per hash, finished with murmur3's avalanche.
//
// Not a cryptographic hash: keys a client controls could be chosen to collide only if the seeds were
// known, and each process draws its own unless a test fixes them.

/** The scratch a hash is written to: [h1, h2]. Reused, so hashing allocates nothing. */
export type KeyHash = Uint32Array;

export type SketchKey = number | string;

export interface HashSeeds {
  s1: number;
  s2: number;
}

/** Seeds drawn once per process (a sketch given no seed uses these). */
export function randomSeeds(): HashSeeds {
  const a = new Uint32Array(2);
  crypto.getRandomValues(a);
  return { s1: a[0] as number, s2: a[1] as number };
}

/** murmur3's 32-bit finalizer: every input bit affects every output bit. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);

/** Writes the key's two hashes into `out`. */
export function hashKey(key: SketchKey, seeds: HashSeeds, out: KeyHash): void {
  if (typeof key === "number") {
    if (key >>> 0 === key) {
      out[0] = fmix32(key ^ seeds.s1);
      out[1] = fmix32(Math.imul(key, 0x9e3779b1) ^ seeds.s2);
      return;
    }
    f64[0] = key;
    const lo = u32[0] as number;
    const hi = u32[1] as number;
    out[0] = fmix32(lo ^ fmix32(hi ^ seeds.s1));
    out[1] = fmix32(hi ^ fmix32(Math.imul(lo, 0x9e3779b1) ^ seeds.s2));
    return;
  }
  let a = 0x811c9dc5 ^ seeds.s1;
  let b = 0x811c9dc5 ^ seeds.s2;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 13);
  }
  out[0] = fmix32(a ^ key.length);
  out[1] = fmix32(b ^ Math.imul(key.length, 0x9e3779b1));
}
