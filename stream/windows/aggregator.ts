// How an aggregation folds values. Accumulators may be mutated in place by `add` (and must then be
// returned): the runtime writes the accumulator back to state and, at each checkpoint, encodes the
// changed ones for the changelog with `serde` (JSON by default).
import type { Serde } from "../types.ts";

export interface Aggregator<V, A, R = A> {
  init(): A;
  add(acc: A, value: V, ts: number): A;
  /** Combines two accumulators; session windows need it (merging sessions), roll-ups use it. */
  merge?(a: A, b: A): A;
  /** Turns the accumulator into the emitted value; identity when absent. */
  result?(acc: A): R;
  serde?: Serde<A>;
}

/** Counts records. */
export function counting<V>(): Aggregator<V, number> {
  return { init: () => 0, add: (n) => n + 1, merge: (a, b) => a + b };
}
