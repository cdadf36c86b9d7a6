// Window definitions, in Kafka Streams' terms. A window closes when the task's watermark reaches
// its last timestamp + grace (end - 1 + grace for [start, end)); a record for a closed window is
// late and goes to the late side output instead of into the result. Each kind lives in its own file
// with its processor; this is where users find them.
import { type Duration, ms, TopologyError } from "../types.ts";
import { type SessionSpec, sessionWindowAggregate } from "./session.ts";
import { type SlidingSpec, slidingWindowAggregate } from "./sliding.ts";
import { WindowDef } from "./window.ts";
import { fixedWindowAggregate, type HoppingSpec, type TumblingSpec } from "./window-aggregate.ts";

function positive(what: string, d: Duration): number {
  const v = ms(d);
  if (v <= 0) throw new TopologyError(`${what} must be positive, got ${JSON.stringify(d)}`);
  return v;
}

export const Windows = {
  /** Fixed-size, non-overlapping windows aligned to the epoch: [k*size, (k+1)*size). */
  tumbling(size: Duration): WindowDef<TumblingSpec> {
    return new WindowDef<TumblingSpec>(
      { kind: "tumbling", size: positive("tumbling window size", size), grace: 0 },
      fixedWindowAggregate,
    );
  },
  /** Fixed-size windows starting every `advance`; a record belongs to size/advance of them. */
  hopping(size: Duration, advance: Duration): WindowDef<HoppingSpec> {
    const s = positive("hopping window size", size);
    const a = positive("hopping window advance", advance);
    if (a > s) throw new TopologyError(`hopping window advance (${a} ms) must not exceed its size (${s} ms)`);
    if (s % a !== 0)
      throw new TopologyError(`hopping window size (${s} ms) must be a multiple of its advance (${a} ms)`);
    return new WindowDef<HoppingSpec>({ kind: "hopping", size: s, advance: a, grace: 0 }, fixedWindowAggregate);
  },
  /** For each record at t, the window [t - size, t] (both ends included): "in the last `size`, as of this event". */
  sliding(size: Duration): WindowDef<SlidingSpec> {
    return new WindowDef<SlidingSpec>(
      { kind: "sliding", size: positive("sliding window size", size), grace: 0 },
      slidingWindowAggregate,
    );
  },
  /** Sessions of activity: records less than `gap` apart (per key) fall into one window. */
  session(gap: Duration): WindowDef<SessionSpec> {
    return new WindowDef<SessionSpec>(
      { kind: "session", gap: positive("session gap", gap), grace: 0 },
      sessionWindowAggregate,
    );
  },
};
