// Event-time timers: keys grouped by the time they fire, popped in time order. Many windows share
// an end (every key of one tumbling window), so a bucket per time keeps the heap small.

export class EventTimers {
  private readonly heap: number[] = [];
  private readonly buckets = new Map<number, Set<string>>();

  get size(): number {
    return this.buckets.size;
  }

  add(time: number, key: string): void {
    let bucket = this.buckets.get(time);
    if (!bucket) {
      bucket = new Set();
      this.buckets.set(time, bucket);
      this.push(time);
    }
    bucket.add(key);
  }

  remove(time: number, key: string): void {
    this.buckets.get(time)?.delete(key);
  }

  /** Fires every timer at or before `upTo`, oldest time first, keys in the order they were added. */
  popUntil(upTo: number, fire: (time: number, key: string) => void): void {
    while (this.heap.length > 0 && (this.heap[0] as number) <= upTo) {
      const time = this.pop();
      const bucket = this.buckets.get(time);
      this.buckets.delete(time);
      if (bucket) for (const key of bucket) fire(time, key);
    }
  }

  /** Removes and returns the earliest timer (the first key added at the earliest time), if any. */
  shift(): [number, string] | undefined {
    while (this.heap.length > 0) {
      const time = this.heap[0] as number;
      const bucket = this.buckets.get(time);
      const first = bucket?.values().next();
      if (bucket && first && !first.done) {
        bucket.delete(first.value);
        if (bucket.size === 0) {
          this.buckets.delete(time);
          this.pop();
        }
        return [time, first.value];
      }
      this.buckets.delete(time);
      this.pop();
    }
    return undefined;
  }

  clear(): void {
    this.heap.length = 0;
    this.buckets.clear();
  }

  private push(v: number): void {
    const h = this.heap;
    h.push(v);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if ((h[p] as number) <= v) break;
      h[i] = h[p] as number;
      i = p;
    }
    h[i] = v;
  }

  private pop(): number {
    const h = this.heap;
    const top = h[0] as number;
    const last = h.pop() as number;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= h.length) break;
        const r = l + 1;
        const c = r < h.length && (h[r] as number) < (h[l] as number) ? r : l;
        if ((h[c] as number) >= last) break;
        h[i] = h[c] as number;
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}
