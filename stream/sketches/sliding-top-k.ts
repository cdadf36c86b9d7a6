// Top-k over sliding windows: a ring of HeavyKeeper sketches, one per `slide` of event time, since a
// HeavyKeeper alone never forgets. A window of m slides ending at a slide boundary is the last m
// sketches: its candidates are the keys any of them keeps, and a candidate's count is the sum of its
// estimates in each (every sketch of the ring shares the hash seeds, so a key is hashed once per
// query). The longest window is the ring's length; shorter ones read its newest sketches.
//
// A record older than the ring's oldest slide counts in no window any more and is refused (add()
// returns false: the caller counts it). The slide a record belongs to may be any of the ring's, so
// disorder within the ring costs nothing.
import { type HashSeeds, hashKey, randomSeeds, type SketchKey } from "./hash.ts";
import { HeavyKeeper } from "./heavy-keeper.ts";
import type { KeyCount } from "./top-k-heap.ts";

export interface SlidingTopKOptions {
  /** Event time per sketch, ms. */
  slide: number;
  /** Sketches in the ring: the longest window is slide x slides. */
  slides: number;
  /** Keys each sketch keeps. */
  k: number;
  width: number;
  depth?: number;
  decay?: number;
  seeds?: HashSeeds;
  randomSeed?: number;
}

export interface WindowTop<K extends SketchKey = SketchKey> {
  /** The window: [start, end). */
  start: number;
  end: number;
  /** Records counted in the window (exact). */
  total: number;
  /** The heaviest keys, heaviest first, with their estimated counts (never above the truth). */
  keys: Array<KeyCount<K>>;
  /** The list was cut at n. */
  truncated: boolean;
  /**
   * No key missing from the list counted more than this in the window: the last count of a cut list,
   * or the sum of the sketches' heap minimums (a key no sketch keeps showed at most that).
   */
  floor: number;
  /** Slides of the window the ring holds (fewer than asked right after a start: the window fills). */
  slides: number;
}

export class SlidingTopK<K extends SketchKey = SketchKey> {
  readonly slide: number;
  readonly slides: number;
  readonly seeds: HashSeeds;
  private readonly ring: Array<HeavyKeeper<K>>;
  /** The slide number (floor(ts / slide)) each sketch of the ring holds; -Infinity: empty. */
  private readonly held: Float64Array;
  private newest = Number.NEGATIVE_INFINITY;
  private readonly h = new Uint32Array(2);

  constructor(options: SlidingTopKOptions) {
    if (!Number.isInteger(options.slide) || options.slide < 1) {
      throw new RangeError(`slide must be a whole number of ms, got ${options.slide}`);
    }
    if (!Number.isInteger(options.slides) || options.slides < 1 || options.slides > 3600) {
      throw new RangeError(`slides must be a whole number from 1 to 3600, got ${options.slides}`);
    }
    this.slide = options.slide;
    this.slides = options.slides;
    this.seeds = options.seeds ?? randomSeeds();
    this.ring = [];
    for (let i = 0; i < options.slides; i++) {
      this.ring.push(
        new HeavyKeeper<K>({
          k: options.k,
          width: options.width,
          ...(options.depth !== undefined ? { depth: options.depth } : {}),
          ...(options.decay !== undefined ? { decay: options.decay } : {}),
          seeds: this.seeds,
          randomSeed: ((options.randomSeed ?? this.seeds.s2) + i * 0x9e3779b9) >>> 0,
        }),
      );
    }
    this.held = new Float64Array(options.slides).fill(Number.NEGATIVE_INFINITY);
  }

  /** Memory in the paper's accounting, over the whole ring. */
  get bytes(): number {
    return this.ring.reduce((n, s) => n + s.bytes, 0);
  }

  /** The end of the newest slide holding records (exclusive), or -Infinity. */
  get newestEnd(): number {
    return (this.newest + 1) * this.slide;
  }

  /** Counts `key` at event time `ts`; false when ts is older than every slide the ring holds. */
  add(key: K, ts: number): boolean {
    const n = Math.floor(ts / this.slide);
    if (n > this.newest) this.advance(n);
    else if (n <= this.newest - this.slides) return false;
    (this.ring[this.index(n)] as HeavyKeeper<K>).add(key);
    return true;
  }

  /**
   * The heaviest `n` keys of the window of `slides` slides ending at `end` (a multiple of the slide):
   * [end - slides x slide, end).
   */
  top(end: number, slides: number, n: number): WindowTop<K> {
    if (end % this.slide !== 0) throw new RangeError(`end ${end} is not a multiple of the slide ${this.slide}`);
    if (slides > this.slides) throw new RangeError(`the ring holds ${this.slides} slides, not ${slides}`);
    const last = end / this.slide - 1;
    const sketches: Array<HeavyKeeper<K>> = [];
    let total = 0;
    let unkept = 0;
    for (let s = last - slides + 1; s <= last; s++) {
      const i = this.index(s);
      if (this.held[i] !== s) continue;
      const sk = this.ring[i] as HeavyKeeper<K>;
      sketches.push(sk);
      total += sk.total;
      unkept += sk.threshold;
    }
    const seen = new Set<K>();
    const all: Array<KeyCount<K>> = [];
    for (const sk of sketches) {
      for (const { key } of sk.candidates()) {
        if (seen.has(key)) continue;
        seen.add(key);
        hashKey(key, this.seeds, this.h);
        let count = 0;
        for (const other of sketches) count += other.estimateHashed(this.h);
        all.push({ key, count });
      }
    }
    all.sort((a, b) => b.count - a.count || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const truncated = all.length > n;
    if (truncated) all.length = n;
    const floor = Math.max(unkept, truncated ? (all[n - 1] as KeyCount<K>).count : 0);
    return { start: end - slides * this.slide, end, total, keys: all, truncated, floor, slides: sketches.length };
  }

  private index(slide: number): number {
    return ((slide % this.slides) + this.slides) % this.slides;
  }

  private advance(n: number): void {
    const from = Math.max(this.newest + 1, n - this.slides + 1);
    for (let s = from; s <= n; s++) {
      const i = this.index(s);
      (this.ring[i] as HeavyKeeper<K>).clear();
      this.held[i] = s;
    }
    this.newest = n;
  }
}
