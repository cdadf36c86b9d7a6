// Window definitions, in Kafka Streams' terms. A window closes when the task's watermark reaches
// its last timestamp + grace (end - 1 + grace for [start, end)); a record for a closed window is
// late and goes to the late side output instead of into the result.
import { type Duration, ms, TopologyError } from "../types.ts";

export type WindowSpec =
  | { kind: "tumbling"; size: number; grace: number }
  | { kind: "hopping"; size: number; advance: number; grace: number }
  /** One window per record, ending at it: [t - size, t]. */
  | { kind: "sliding"; size: number; grace: number }
  /** Activity separated by less than `gap` forms one session. */
  | { kind: "session"; gap: number; grace: number };

/** A window definition with a fluent `.grace(...)`. */
export class WindowDef<S extends WindowSpec = WindowSpec> {
  constructor(readonly spec: S) {}

  /** How long after its end a window still accepts records (measured in watermark time). */
  grace(d: Duration): WindowDef<S> {
    return new WindowDef({ ...this.spec, grace: ms(d) });
  }
}

function positive(what: string, d: Duration): number {
  const v = ms(d);
  if (v <= 0) throw new TopologyError(`${what} must be positive, got ${JSON.stringify(d)}`);
  return v;
}

export const Windows = {
  /** Fixed-size, non-overlapping windows aligned to the epoch: [k*size, (k+1)*size). */
  tumbling(size: Duration): WindowDef<Extract<WindowSpec, { kind: "tumbling" }>> {
    return new WindowDef({ kind: "tumbling", size: positive("tumbling window size", size), grace: 0 });
  },
  /** Fixed-size windows starting every `advance`; a record belongs to size/advance of them. */
  hopping(size: Duration, advance: Duration): WindowDef<Extract<WindowSpec, { kind: "hopping" }>> {
    const s = positive("hopping window size", size);
    const a = positive("hopping window advance", advance);
    if (a > s) throw new TopologyError(`hopping window advance (${a} ms) must not exceed its size (${s} ms)`);
    if (s % a !== 0)
      throw new TopologyError(`hopping window size (${s} ms) must be a multiple of its advance (${a} ms)`);
    return new WindowDef({ kind: "hopping", size: s, advance: a, grace: 0 });
  },
  /** For each record at t, the window [t - size, t] (both ends included): "in the last `size`, as of this event". */
  sliding(size: Duration): WindowDef<Extract<WindowSpec, { kind: "sliding" }>> {
    return new WindowDef({ kind: "sliding", size: positive("sliding window size", size), grace: 0 });
  },
  /** Sessions of activity: records less than `gap` apart (per key) fall into one window. */
  session(gap: Duration): WindowDef<Extract<WindowSpec, { kind: "session" }>> {
    return new WindowDef({ kind: "session", gap: positive("session gap", gap), grace: 0 });
  },
};

/** What a windowed aggregation emits: the window, its result, and whether this is the final value. */
export interface Windowed<R> {
  start: number;
  /** Exclusive for tumbling/hopping; the last record's time + 1 for sliding and session windows. */
  end: number;
  value: R;
  final: boolean;
}
