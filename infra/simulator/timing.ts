// The simulator's two clocks' worth of bookkeeping: a timing wheel that holds records until the
// millisecond they are due (so files come out in time order), and a heap of scheduled steps (fraud
// campaigns' actions), both deterministic.

/**
 * Items due at millisecond m wait in bucket m % size until the clock passes m. Pushing and draining
 * are O(1) per item, with no per-item allocation; the horizon (`size` ms) must exceed the longest
 * wait, or items would wrap around.
 */
export class TimingWheel<A, B> {
  private readonly firsts: A[][] = [];
  private readonly seconds: B[][] = [];
  private readonly mask: number;
  /** The next millisecond to drain. */
  position: number;

  constructor(
    startMs: number,
    readonly size = 32_768,
  ) {
    if ((size & (size - 1)) !== 0) throw new Error("the wheel's size must be a power of two");
    this.mask = size - 1;
    this.position = Math.floor(startMs);
    for (let i = 0; i < size; i++) {
      this.firsts.push([]);
      this.seconds.push([]);
    }
  }

  push(atMs: number, a: A, b: B): void {
    const bucket = Math.floor(atMs) & this.mask;
    (this.firsts[bucket] as A[]).push(a);
    (this.seconds[bucket] as B[]).push(b);
  }

  /** Hands every item due before millisecond `untilMs` to `each`, oldest millisecond first, in push order within one. */
  drain(untilMs: number, each: (a: A, b: B) => void): void {
    const target = Math.floor(untilMs);
    while (this.position < target) {
      const bucket = this.position & this.mask;
      const firsts = this.firsts[bucket] as A[];
      if (firsts.length > 0) {
        const seconds = this.seconds[bucket] as B[];
        for (let i = 0; i < firsts.length; i++) each(firsts[i] as A, seconds[i] as B);
        firsts.length = 0;
        seconds.length = 0;
      }
      this.position++;
    }
  }

  /** Everything still waiting, whenever it is due. */
  drainAll(each: (a: A, b: B) => void): void {
    this.drain(this.position + this.size, each);
  }
}

interface Step {
  t: number;
  seq: number;
  run: () => void;
}

/** Steps to run at given times; ties run in the order they were scheduled. */
export class Schedule {
  private readonly heap: Step[] = [];
  private seq = 0;

  get size(): number {
    return this.heap.length;
  }

  /** Time of the next step, Infinity when there is none. */
  peek(): number {
    return this.heap.length > 0 ? (this.heap[0] as Step).t : Number.POSITIVE_INFINITY;
  }

  add(t: number, run: () => void): void {
    const heap = this.heap;
    heap.push({ t, seq: this.seq++, run });
    let i = heap.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (before(heap[p] as Step, heap[i] as Step)) break;
      [heap[p], heap[i]] = [heap[i] as Step, heap[p] as Step];
      i = p;
    }
  }

  /** Removes and returns the next step's action. */
  next(): () => void {
    const heap = this.heap;
    const top = heap[0] as Step;
    const last = heap.pop() as Step;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && before(heap[l] as Step, heap[m] as Step)) m = l;
        if (r < heap.length && before(heap[r] as Step, heap[m] as Step)) m = r;
        if (m === i) break;
        [heap[m], heap[i]] = [heap[i] as Step, heap[m] as Step];
        i = m;
      }
    }
    return top.run;
  }
}

function before(a: Step, b: Step): boolean {
  return a.t < b.t || (a.t === b.t && a.seq < b.seq);
}
