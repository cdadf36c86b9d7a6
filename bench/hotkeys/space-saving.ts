// Space-Saving (Metwally, Agrawal, El Abbadi, "Efficient Computation of Frequent and Top-k Elements in
// Data Streams", ICDT 2005), the peer HeavyKeeper is measured against: m counters in the paper's
// Stream-Summary, so every update is O(1). Counters of equal count share a bucket; buckets form a list
// in ascending count. A key already counted moves its counter to the next bucket (count + 1); a new
// key takes a counter of the smallest bucket, inherits its count as its error, and counts one more.
// Counts never underestimate (the opposite of HeavyKeeper): count - error is the guaranteed part.
//
// No npm package implements it with the Stream-Summary (checked on the npm registry: bloom-filters'
// TopK is a count-min sketch with a heap, mnemonist has none), so it is written here from the paper.

export interface SpaceSavingEntry<K> {
  key: K;
  count: number;
  error: number;
}

/** Bytes one counter costs in the accounting of HeavyKeeper's reference code (432 bits). */
export const COUNTER_BYTES = 54;

export class SpaceSaving<K extends number | string> {
  private readonly keys: K[];
  private readonly count: Float64Array;
  private readonly error: Float64Array;
  /** Bucket of each counter; counters of a bucket in a doubly linked list. */
  private readonly bucketOf: Int32Array;
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  /** Buckets: their count, first counter, and neighbours in ascending count. */
  private readonly bCount: Float64Array;
  private readonly bHead: Int32Array;
  private readonly bPrev: Int32Array;
  private readonly bNext: Int32Array;
  private freeBuckets: number[] = [];
  private minBucket = -1;
  private used = 0;
  private readonly at = new Map<K, number>();
  total = 0;

  constructor(readonly m: number) {
    if (!Number.isInteger(m) || m < 1) throw new RangeError(`m must be a positive whole number, got ${m}`);
    this.keys = new Array<K>(m);
    this.count = new Float64Array(m);
    this.error = new Float64Array(m);
    this.bucketOf = new Int32Array(m);
    this.prev = new Int32Array(m);
    this.next = new Int32Array(m);
    // m + 1: a counter's new bucket is made before its old one (maybe its alone) is freed.
    this.bCount = new Float64Array(m + 1);
    this.bHead = new Int32Array(m + 1).fill(-1);
    this.bPrev = new Int32Array(m + 1).fill(-1);
    this.bNext = new Int32Array(m + 1).fill(-1);
    for (let b = m; b >= 0; b--) this.freeBuckets.push(b);
  }

  static countersFor(bytes: number): number {
    return Math.max(1, Math.floor(bytes / COUNTER_BYTES));
  }

  get bytes(): number {
    return this.m * COUNTER_BYTES;
  }

  add(key: K): void {
    this.total++;
    const i = this.at.get(key);
    if (i !== undefined) {
      this.increment(i);
      return;
    }
    if (this.used < this.m) {
      const c = this.used++;
      this.keys[c] = key;
      this.count[c] = 0;
      this.error[c] = 0;
      this.at.set(key, c);
      // A count of 0 sits before every bucket: increment() links it into the bucket of 1.
      this.bucketOf[c] = -1;
      this.increment(c);
      return;
    }
    const c = this.bHead[this.minBucket] as number;
    this.at.delete(this.keys[c] as K);
    this.keys[c] = key;
    this.error[c] = this.count[c] as number;
    this.at.set(key, c);
    this.increment(c);
  }

  /** The heaviest n, by count (an upper bound of the truth). */
  top(n: number): Array<SpaceSavingEntry<K>> {
    const out: Array<SpaceSavingEntry<K>> = [];
    for (let i = 0; i < this.used; i++) {
      out.push({ key: this.keys[i] as K, count: this.count[i] as number, error: this.error[i] as number });
    }
    out.sort((a, b) => b.count - a.count);
    return out.slice(0, n);
  }

  estimate(key: K): number {
    const i = this.at.get(key);
    return i === undefined ? 0 : (this.count[i] as number);
  }

  /** Moves counter i from its bucket to the bucket of count + 1, made if missing. */
  private increment(i: number): void {
    const from = this.bucketOf[i] as number;
    const c = (this.count[i] as number) + 1;
    this.count[i] = c;
    // The bucket after `from` (or the first bucket, for a new counter).
    const after = from === -1 ? this.minBucket : (this.bNext[from] as number);
    let to: number;
    if (after !== -1 && this.bCount[after] === c) to = after;
    else {
      to = this.freeBuckets.pop() as number;
      this.bCount[to] = c;
      this.bHead[to] = -1;
      // Linked between `from` and `after` (a new counter's bucket of 1 comes first).
      this.bPrev[to] = from;
      this.bNext[to] = after;
      if (after !== -1) this.bPrev[after] = to;
      if (from !== -1) this.bNext[from] = to;
      else this.minBucket = to;
    }
    if (from !== -1) this.unlink(i, from);
    // Into `to`, at its head.
    const head = this.bHead[to] as number;
    this.prev[i] = -1;
    this.next[i] = head;
    if (head !== -1) this.prev[head] = i;
    this.bHead[to] = i;
    this.bucketOf[i] = to;
  }

  private unlink(i: number, b: number): void {
    const p = this.prev[i] as number;
    const n = this.next[i] as number;
    if (p !== -1) this.next[p] = n;
    else this.bHead[b] = n;
    if (n !== -1) this.prev[n] = p;
    if (this.bHead[b] !== -1) return;
    // The bucket is empty: out of the list, back to the free ones.
    const bp = this.bPrev[b] as number;
    const bn = this.bNext[b] as number;
    if (bp !== -1) this.bNext[bp] = bn;
    else this.minBucket = bn;
    if (bn !== -1) this.bPrev[bn] = bp;
    this.freeBuckets.push(b);
  }
}
