// HeavyKeeper (Yang et al., "HeavyKeeper: An Accurate Algorithm for Finding Top-k Elephant Flows",
// USENIX ATC 2018): the k heaviest keys of a stream in fixed memory, counts that never exceed the
// truth (up to fingerprint collisions, 2^-32 per pair of keys in one bucket).
//
// `depth` rows of `width` buckets, each a (fingerprint, count) pair. A key maps to one bucket per row.
// A bucket holding the key's fingerprint counts it; an empty one is taken; a bucket held by another
// key decays by one with probability decay^-count ("count-with-exponential-decay"), so a light key
// soon loses its bucket to a newcomer while a heavy one almost never does, and is taken over when it
// reaches 0. The heaviest keys are kept in a min-heap of k (top-k-heap.ts) with the largest count
// their buckets show.
//
// Two details from the authors' reference code, not in the paper's pseudo-code:
// - a bucket holding the key's fingerprint is incremented only if the key is in the heap or the
//   bucket's count is at most the heap's minimum (`C <= nmin`): a key outside the heap can then never
//   show more than nmin + 1, which is exactly when it enters the heap; counts of keys that will never
//   enter stop growing, so a fingerprint shared by two keys cannot lift a light key over heavy ones;
// - a key outside the heap enters it only with exactly nmin + 1 (or while the heap is not full).
// decay = 1.08 is the paper's.
//
// Numbers and strings are hashed once per update (hash.ts); rows and fingerprint come from the two
// hashes. The random numbers are a seeded xorshift32, so a sketch with a seed is deterministic.
import { type HashSeeds, hashKey, type KeyHash, randomSeeds, type SketchKey } from "./hash.ts";
import { type KeyCount, TopKHeap } from "./top-k-heap.ts";

export interface HeavyKeeperOptions {
  /** Keys reported: the heap's size. */
  k: number;
  /** Buckets per row. */
  width: number;
  /** Rows (the paper uses 2). */
  depth?: number;
  /** The decay base b: a bucket of count C held by another key decays with probability b^-C. */
  decay?: number;
  /** Hash seeds; sketches that answer for the same keys together (a ring) share them. */
  seeds?: HashSeeds;
  /** Seed of the decay's random numbers. */
  randomSeed?: number;
}

export const DEFAULT_DECAY = 1.08;
/** Bytes one top-k entry costs in the paper's accounting (the reference code's 432 bits). */
export const HEAP_ENTRY_BYTES = 54;
const MAX_WIDTH = 1 << 26;
const MAX_DEPTH = 8;

/**
 * A 32-bit hash onto [0, width): Lemire's multiply-and-shift instead of a division (the product is a
 * double: its rounding never reaches width, since width <= 2^26).
 */
function bucketOf(h: number, width: number): number {
  return Math.floor((h >>> 0) * width * 2.3283064365386963e-10);
}

/** decay^-c scaled to 2^32, for c below the first count whose probability is under 2^-32. */
function decayThresholds(b: number): Float64Array {
  const out: number[] = [];
  for (let c = 0; ; c++) {
    const t = 2 ** 32 * b ** -c;
    if (t < 1) break;
    out.push(t);
  }
  return Float64Array.from(out);
}

export class HeavyKeeper<K extends SketchKey = SketchKey> {
  readonly k: number;
  readonly width: number;
  readonly depth: number;
  readonly decay: number;
  readonly seeds: HashSeeds;
  /** fps[j * width + i], counts[j * width + i]: bucket i of row j. */
  private readonly fps: Uint32Array;
  private readonly counts: Uint32Array;
  private readonly heap: TopKHeap<K>;
  private readonly thresholds: Float64Array;
  private rng: number;
  private readonly h: KeyHash = new Uint32Array(2);
  /** Updates seen (the stream's length). */
  total = 0;

  constructor(options: HeavyKeeperOptions) {
    const { k, width } = options;
    const depth = options.depth ?? 2;
    const decay = options.decay ?? DEFAULT_DECAY;
    if (!Number.isInteger(width) || width < 1 || width > MAX_WIDTH) {
      throw new RangeError(`width must be a whole number from 1 to ${MAX_WIDTH}, got ${width}`);
    }
    if (!Number.isInteger(depth) || depth < 1 || depth > MAX_DEPTH) {
      throw new RangeError(`depth must be a whole number from 1 to ${MAX_DEPTH}, got ${depth}`);
    }
    if (!(decay > 1) || !Number.isFinite(decay)) throw new RangeError(`decay must be above 1, got ${decay}`);
    this.k = k;
    this.width = width;
    this.depth = depth;
    this.decay = decay;
    this.heap = new TopKHeap<K>(k);
    this.seeds = options.seeds ?? randomSeeds();
    this.fps = new Uint32Array(width * depth);
    this.counts = new Uint32Array(width * depth);
    this.thresholds = decayThresholds(decay);
    this.rng = (options.randomSeed ?? this.seeds.s1 ^ 0x2545f491) >>> 0 || 1;
  }

  /** A width for `bytes` of memory in the paper's accounting (8 bytes a bucket, 54 a heap entry). */
  static widthFor(bytes: number, k: number, depth = 2): number {
    return Math.max(1, Math.floor((bytes - k * HEAP_ENTRY_BYTES) / (8 * depth)));
  }

  /** Memory in the paper's accounting: buckets plus heap entries. */
  get bytes(): number {
    return this.width * this.depth * 8 + this.k * HEAP_ENTRY_BYTES;
  }

  /** Counts one occurrence of `key`. */
  add(key: K): void {
    hashKey(key, this.seeds, this.h);
    this.addHashed(key, this.h);
  }

  /** add() with the key's hash already computed (hashKey with this sketch's seeds). */
  addHashed(key: K, hash: KeyHash): void {
    this.total++;
    const h1 = hash[0] as number;
    const h2 = hash[1] as number;
    const fp = h2;
    const step = h2 | 1;
    const { fps, counts, width, heap, thresholds } = this;
    const at = heap.indexOf(key);
    const nmin = heap.min;
    let maxv = 0;
    for (let j = 0, base = 0; j < this.depth; j++, base += width) {
      const slot = base + bucketOf(h1 + Math.imul(j, step), width);
      const c = counts[slot] as number;
      if (c === 0) {
        fps[slot] = fp;
        counts[slot] = 1;
        if (maxv < 1) maxv = 1;
      } else if (fps[slot] === fp) {
        if (at >= 0 || c <= nmin) {
          counts[slot] = c + 1;
          if (maxv < c + 1) maxv = c + 1;
        } else if (maxv < c) maxv = c;
      } else if (c < thresholds.length && this.next() < (thresholds[c] as number)) {
        if (c === 1) {
          fps[slot] = fp;
          counts[slot] = 1;
          if (maxv < 1) maxv = 1;
        } else counts[slot] = c - 1;
      }
    }
    if (at >= 0) {
      if (maxv > heap.countAt(at)) heap.setAt(at, maxv);
    } else if (maxv > 0 && (!heap.full || maxv === nmin + 1)) {
      heap.push(key, maxv);
    }
  }

  /** The key's estimated count: the largest count of a bucket holding its fingerprint. */
  estimate(key: K): number {
    hashKey(key, this.seeds, this.h);
    return this.estimateHashed(this.h);
  }

  estimateHashed(hash: KeyHash): number {
    const h1 = hash[0] as number;
    const fp = hash[1] as number;
    const step = fp | 1;
    let best = 0;
    for (let j = 0, base = 0; j < this.depth; j++, base += this.width) {
      const slot = base + bucketOf(h1 + Math.imul(j, step), this.width);
      if (this.fps[slot] === fp && (this.counts[slot] as number) > best) best = this.counts[slot] as number;
    }
    return best;
  }

  /** The kept keys, heaviest first. */
  top(): Array<KeyCount<K>> {
    return this.heap.sorted();
  }

  /** The kept keys in no particular order (candidates for a window's query). */
  candidates(): IterableIterator<KeyCount<K>> {
    return this.heap.entries();
  }

  /** The count a key outside the heap must reach to enter it. */
  get threshold(): number {
    return this.heap.min;
  }

  clear(): void {
    this.fps.fill(0);
    this.counts.fill(0);
    this.heap.clear();
    this.total = 0;
  }

  /** xorshift32: fast, and enough for coin flips. */
  private next(): number {
    let x = this.rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rng = x >>> 0;
    return this.rng;
  }
}
