// Sliding windows: for each record at t, the window [t - size, t] of its key, both ends included.
// State per key: the records of the last size + grace (timestamp and value), sorted by time. The
// final value of the window ending at t is folded from them when the watermark reaches t + grace,
// so records that arrive out of order still count in every open window they fall into.
// Unlike Kafka Streams' SlidingWindows there are no "right" windows (those starting just after a
// record): a window ending at a record is where any count over the window peaks, which is what
// velocity rules look at.
import type { Emit, Operator, OperatorContext, Processor } from "../runtime/processor.ts";
import type { KeyValueStore } from "../state/store.ts";
import { EventTimers } from "../time/timers.ts";
import { json, type Rec } from "../types.ts";
import type { Aggregator } from "./aggregator.ts";
import { type EmitMode, noLateness, type Windowed } from "./window.ts";

/** One window per record, ending at it: [t - size, t]. */
export interface SlidingSpec {
  kind: "sliding";
  size: number;
  grace: number;
  allowedLateness?: number;
}

/** Sliding-window aggregation, its buffers in the store `store` (JSON). */
export function slidingWindowAggregate(
  spec: SlidingSpec,
  store: string,
  emit: EmitMode,
  aggregator: Aggregator<unknown, unknown, unknown>,
): Operator {
  noLateness("sliding", store, spec.allowedLateness);
  return {
    name: `aggregate ${store}`,
    stores: [{ name: store, serde: json() }],
    create: (ctx) => new SlidingWindowAggregate(spec, emit, aggregator, ctx.store(store), ctx),
  };
}

/** [timestamp, value] pairs, sorted by timestamp. */
export interface SlidingBuffer {
  key: string | null;
  records: Array<[number, unknown]>;
}

export class SlidingWindowAggregate implements Processor {
  private readonly timers = new EventTimers();
  private readonly expiry = new EventTimers();
  private readonly out: Emit;

  constructor(
    private readonly spec: SlidingSpec,
    private readonly emit: EmitMode,
    private readonly aggregator: Aggregator<unknown, unknown, unknown>,
    private readonly store: KeyValueStore<SlidingBuffer>,
    private readonly ctx: OperatorContext,
  ) {
    this.out = ctx.forward;
  }

  process(rec: Rec): void {
    const ts = rec.ts;
    if (ts + this.spec.grace <= this.ctx.watermark) {
      this.ctx.late(rec);
      return;
    }
    const id = rec.key ?? "\u0000";
    let buf = this.store.get(id);
    if (!buf) buf = { key: rec.key, records: [] };
    const records = buf.records;
    let i = records.length;
    while (i > 0 && (records[i - 1] as [number, unknown])[0] > ts) i--;
    const isNewEnd = !records.some((r) => r[0] === ts);
    records.splice(i, 0, [ts, rec.value]);
    this.store.put(id, buf, ts);
    if (isNewEnd) this.timers.add(ts, id);
    this.expiry.add(ts, id);
    if (this.emit.mode === "early") this.emitWindow(buf, ts, false);
  }

  onWatermark(watermark: number): void {
    const closeUpTo = watermark - this.spec.grace;
    this.timers.popUntil(closeUpTo, (end, id) => {
      const buf = this.store.get(id);
      if (buf) this.emitWindow(buf, end, true);
    });
    // A record is needed until every window that can still be open starts after it.
    this.expiry.popUntil(closeUpTo - this.spec.size - 1, (_t, id) => {
      const buf = this.store.get(id);
      if (!buf) return;
      const keepFrom = closeUpTo - this.spec.size;
      const records = buf.records;
      let drop = 0;
      while (drop < records.length && (records[drop] as [number, unknown])[0] < keepFrom) drop++;
      if (drop === 0) return;
      if (drop === records.length) this.store.delete(id);
      else {
        records.splice(0, drop);
        this.store.put(id, buf, watermark);
      }
    });
  }

  restored(): void {
    this.timers.clear();
    this.expiry.clear();
    const closed = this.ctx.watermark - this.spec.grace;
    for (const [id, buf] of this.store.entries()) {
      for (const [t] of buf.records) {
        if (t > closed) this.timers.add(t, id);
        this.expiry.add(t, id);
      }
    }
  }

  openCount(): number {
    return this.timers.size;
  }

  private emitWindow(buf: SlidingBuffer, end: number, final: boolean): void {
    const start = end - this.spec.size;
    let acc = this.aggregator.init();
    for (const [t, v] of buf.records) {
      if (t < start) continue;
      if (t > end) break;
      acc = this.aggregator.add(acc, v, t);
    }
    const value: Windowed<unknown> = {
      start,
      end: end + 1,
      value: this.aggregator.result ? this.aggregator.result(acc) : acc,
      final,
    };
    this.out({ key: buf.key, value, ts: end });
  }
}
