// Absence ("A and no B within T"): per key, a record that `starts` an absence is reported when event
// time has passed its time + `within` without a record that `cancels` it (a B at or after A's time and
// at most `within` later). Nothing triggers that moment but time, so it is decided on the watermark:
// once the watermark reaches A's time + within + grace no B that could cancel it can arrive any more
// (it would be late), and the absence is emitted with A's time + within as its time.
//
// Records of a key may be processed out of event-time order (two topics, out-of-orderness): a B can be
// processed before the A it cancels. So records that could cancel (`mayCancel`, a test that needs no
// A) are kept per key for within + grace, and a new A is checked against them too.
//
// State per key: the pending As (time and what `capture` kept) and the recent possible Bs (time and
// what `captureCancel` kept), at most `maxPending` of each (oldest dropped, counted). Timers are kept
// in memory and rebuilt from the store after a restore. The store expires keys in event time and
// bounds them (`maxKeys`).
import type { Operator, OperatorContext, Processor } from "../runtime/processor.ts";
import type { KeyValueStore } from "../state/store.ts";
import { EventTimers } from "../time/timers.ts";
import { json, type Rec, type Serde, TopologyError } from "../types.ts";

export interface AbsenceSpec<V> {
  /** Whether the record is an A. */
  starts(value: V, key: string | null): boolean;
  /** What is kept of an A (JSON-serialisable): given to `cancels` and emitted. */
  capture(value: V): unknown;
  /** Whether the record could be a B for some A (a test without the A). */
  mayCancel(value: V, key: string | null): boolean;
  /** What is kept of a possible B (JSON-serialisable), for `cancels`. */
  captureCancel(value: V): unknown;
  /** Whether a possible B (as captured) cancels an A (as captured). */
  cancels(cancel: unknown, started: unknown): boolean;
  within: number;
  grace: number;
  maxPending: number;
  maxKeys?: number;
}

/** What an absence emits. */
export interface AbsenceResult {
  /** What was captured of the A. */
  started: unknown;
  startTs: number;
  /** startTs + within: the result's time. */
  deadline: number;
}

export interface AbsenceState {
  /** Pending As: [time, captured], by time. */
  starts: Array<[number, unknown]>;
  /** Recent possible Bs: [time, captured], by time. */
  cancels: Array<[number, unknown]>;
}

export const MAX_ABSENCE_PENDING = 1000;

export function absence<V>(spec: AbsenceSpec<V>, store: string): Operator {
  if (!(spec.within > 0)) throw new TopologyError(`absence ${store}: within must be positive, got ${spec.within}`);
  if (!Number.isInteger(spec.maxPending) || spec.maxPending < 1 || spec.maxPending > MAX_ABSENCE_PENDING)
    throw new TopologyError(
      `absence ${store}: maxPending must be a whole number from 1 to ${MAX_ABSENCE_PENDING}, got ${spec.maxPending}`,
    );
  return {
    name: `absence ${store}`,
    stores: [
      {
        name: store,
        serde: json<AbsenceState>() as Serde<unknown>,
        // Everything of a key is decided within + grace after its newest record.
        ttl: spec.within + spec.grace,
        ...(spec.maxKeys !== undefined ? { maxEntries: spec.maxKeys } : {}),
      },
    ],
    create: (ctx) => new AbsenceProcessor(spec, ctx.store(store), ctx),
  };
}

class AbsenceProcessor<V> implements Processor {
  private readonly timers = new EventTimers();
  private pendingDrops = 0;
  private cancelDrops = 0;

  constructor(
    private readonly spec: AbsenceSpec<V>,
    private readonly store: KeyValueStore<AbsenceState>,
    private readonly ctx: OperatorContext,
  ) {}

  process(rec: Rec): void {
    const t = rec.ts;
    const { within, grace } = this.spec;
    if (t + grace <= this.ctx.watermark) {
      this.ctx.late(rec);
      return;
    }
    const value = rec.value as V;
    const isStart = this.spec.starts(value, rec.key);
    const isCancel = this.spec.mayCancel(value, rec.key);
    if (!isStart && !isCancel) return;
    const id = rec.key ?? "\u0000";
    const st = this.store.get(id) ?? { starts: [], cancels: [] };
    if (isCancel) {
      const c = this.spec.captureCancel(value);
      st.starts = st.starts.filter(([ts, started]) => !(ts <= t && t <= ts + within && this.spec.cancels(c, started)));
      insertByTime(st.cancels, [t, c]);
      if (st.cancels.length > this.spec.maxPending) {
        this.cancelDrops += st.cancels.length - this.spec.maxPending;
        st.cancels.splice(0, st.cancels.length - this.spec.maxPending);
      }
    }
    if (isStart) {
      const started = this.spec.capture(value);
      // A B processed before this A may already have cancelled it.
      const cancelled = st.cancels.some(([ts, c]) => t <= ts && ts <= t + within && this.spec.cancels(c, started));
      if (!cancelled) {
        insertByTime(st.starts, [t, started]);
        this.timers.add(t + within, id);
        if (st.starts.length > this.spec.maxPending) {
          this.pendingDrops += st.starts.length - this.spec.maxPending;
          st.starts.splice(0, st.starts.length - this.spec.maxPending);
        }
      }
    }
    this.save(id, st);
  }

  onWatermark(watermark: number): void {
    const { within, grace } = this.spec;
    this.timers.popUntil(watermark - grace, (_deadline, id) => {
      const st = this.store.get(id);
      if (!st) return;
      const due = st.starts.filter(([ts]) => ts + within + grace <= watermark);
      if (due.length === 0) return;
      for (const [ts, started] of due) {
        const result: AbsenceResult = { started, startTs: ts, deadline: ts + within };
        this.ctx.forward({ key: id === "\u0000" ? null : id, value: result, ts: ts + within });
      }
      st.starts = st.starts.filter(([ts]) => ts + within + grace > watermark);
      this.save(id, st);
    });
    // Possible Bs older than any A still undecided could cancel are no longer needed.
    this.store.expire(watermark);
  }

  restored(): void {
    this.timers.clear();
    for (const [id, st] of this.store.entries())
      for (const [ts] of st.starts) this.timers.add(ts + this.spec.within, id);
  }

  openCount(): number {
    return this.store.size;
  }

  dropped(): Record<string, number> {
    return { "pending-cap": this.pendingDrops, "cancel-cap": this.cancelDrops };
  }

  private save(id: string, st: AbsenceState): void {
    const horizon = this.ctx.watermark - this.spec.within - this.spec.grace;
    st.cancels = st.cancels.filter(([ts]) => ts > horizon);
    if (st.starts.length === 0 && st.cancels.length === 0) {
      if (this.store.has(id)) this.store.delete(id);
      return;
    }
    const newest = Math.max(
      st.starts.length > 0 ? ((st.starts[st.starts.length - 1] as [number, unknown])[0] as number) : -Infinity,
      st.cancels.length > 0 ? ((st.cancels[st.cancels.length - 1] as [number, unknown])[0] as number) : -Infinity,
    );
    this.store.put(id, st, newest);
  }
}

function insertByTime(list: Array<[number, unknown]>, entry: [number, unknown]): void {
  let i = list.length;
  while (i > 0 && (list[i - 1] as [number, unknown])[0] > entry[0]) i--;
  list.splice(i, 0, entry);
}
