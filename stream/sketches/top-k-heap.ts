// The k heaviest keys seen, as an indexed binary min-heap: the lightest of them at the root (the one to
// evict, and the threshold a new key must beat), and key -> position in a Map so a key already kept is
// found in O(1) and moved in O(log k) when its count changes. Counts only grow while a key is kept
// (HeavyKeeper's counters for a kept key only rise), so an update sifts down.
import type { SketchKey } from "./hash.ts";

export interface KeyCount<K extends SketchKey = SketchKey> {
  key: K;
  count: number;
}

export class TopKHeap<K extends SketchKey = SketchKey> {
  private readonly keys: K[];
  private readonly counts: Float64Array;
  private readonly at = new Map<K, number>();
  private n = 0;

  constructor(readonly k: number) {
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`k must be a positive whole number, got ${k}`);
    this.keys = new Array<K>(k);
    this.counts = new Float64Array(k);
  }

  get size(): number {
    return this.n;
  }

  get full(): boolean {
    return this.n === this.k;
  }

  /** The smallest count kept (0 while the heap is not full: any key may enter). */
  get min(): number {
    return this.n === this.k ? (this.counts[0] as number) : 0;
  }

  /** The key's position, or -1 when it is not kept. */
  indexOf(key: K): number {
    return this.at.get(key) ?? -1;
  }

  countAt(i: number): number {
    return this.counts[i] as number;
  }

  count(key: K): number {
    const i = this.at.get(key);
    return i === undefined ? 0 : (this.counts[i] as number);
  }

  /** Adds a key not kept yet; when full, it replaces the lightest. */
  push(key: K, count: number): void {
    if (this.n < this.k) {
      const i = this.n++;
      this.keys[i] = key;
      this.counts[i] = count;
      this.at.set(key, i);
      this.up(i);
      return;
    }
    this.at.delete(this.keys[0] as K);
    this.keys[0] = key;
    this.counts[0] = count;
    this.at.set(key, 0);
    this.down(0);
  }

  /** Sets the count of the key at position i (it may go either way). */
  setAt(i: number, count: number): void {
    const old = this.counts[i] as number;
    this.counts[i] = count;
    if (count > old) this.down(i);
    else if (count < old) this.up(i);
  }

  clear(): void {
    this.at.clear();
    this.keys.fill(undefined as unknown as K, 0, this.n);
    this.n = 0;
  }

  /** Every kept key, heaviest first. */
  sorted(): Array<KeyCount<K>> {
    const out: Array<KeyCount<K>> = new Array(this.n);
    for (let i = 0; i < this.n; i++) out[i] = { key: this.keys[i] as K, count: this.counts[i] as number };
    return out.sort((a, b) => b.count - a.count);
  }

  /** The kept keys in heap order (for candidates; no sorting). */
  *entries(): IterableIterator<KeyCount<K>> {
    for (let i = 0; i < this.n; i++) yield { key: this.keys[i] as K, count: this.counts[i] as number };
  }

  keyAt(i: number): K {
    return this.keys[i] as K;
  }

  private up(i: number): void {
    const { keys, counts, at } = this;
    const key = keys[i] as K;
    const c = counts[i] as number;
    const from = i;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if ((counts[p] as number) <= c) break;
      keys[i] = keys[p] as K;
      counts[i] = counts[p] as number;
      at.set(keys[i] as K, i);
      i = p;
    }
    counts[i] = c;
    // A key that did not move keeps its slot and its index entry (the common case: a heavy key's count rising).
    if (i !== from) {
      keys[i] = key;
      at.set(key, i);
    }
  }

  private down(i: number): void {
    const { keys, counts, at, n } = this;
    const key = keys[i] as K;
    const c = counts[i] as number;
    const from = i;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const m = r < n && (counts[r] as number) < (counts[l] as number) ? r : l;
      if ((counts[m] as number) >= c) break;
      keys[i] = keys[m] as K;
      counts[i] = counts[m] as number;
      at.set(keys[i] as K, i);
      i = m;
    }
    counts[i] = c;
    // A key that did not move keeps its slot and its index entry (the common case: a heavy key's count rising).
    if (i !== from) {
      keys[i] = key;
      at.set(key, i);
    }
  }
}
