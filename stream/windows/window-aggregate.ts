// Tumbling and hopping window aggregation. State: one accumulator per (key, window start), keyed
// "start|key" in the task's store; a timer per window end. A window emits its final value when the
// watermark reaches end + grace, and its state is deleted then (a tombstone in the changelog).
//
// With allowed lateness, a closed window is kept instead, its accumulator encoded (the changelog's
// bytes: far smaller than live objects), until the watermark passes end + grace + allowedLateness. A
// late record within that updates it, and at the task's next checkpoint the window's result is
// emitted again: `correction` n, with `delta`, the result of the late records alone (so a roll-up adds
// them instead of the whole window again). Late records for one window between two checkpoints make
// one correction. At most `maxClosed` closed windows are kept per task; past it the oldest is dropped
// early, and every window that ends no later than the latest dropped one takes no corrections any
// more (its late records go to the late side output): a correction of a window whose state is gone
// would replace its result with the late records' alone.
import {
  type CorrectionCounts,
  type Emit,
  type Operator,
  type OperatorContext,
  type Processor,
  packKeyed,
  unpackKeyed,
} from "../runtime/processor.ts";
import type { KeyValueStore } from "../state/store.ts";
import { EventTimers } from "../time/timers.ts";
import { json, type Rec, type Serde } from "../types.ts";
import type { Aggregator } from "./aggregator.ts";
import { DEFAULT_MAX_CLOSED_WINDOWS, type EmitMode, type Windowed } from "./window.ts";

export interface TumblingSpec {
  kind: "tumbling";
  size: number;
  grace: number;
  allowedLateness?: number;
  maxClosed?: number;
}

export interface HoppingSpec {
  kind: "hopping";
  size: number;
  advance: number;
  grace: number;
  allowedLateness?: number;
  maxClosed?: number;
}

/** Tumbling and hopping aggregation, its state in the store `store`. */
export function fixedWindowAggregate(
  spec: TumblingSpec | HoppingSpec,
  store: string,
  emit: EmitMode,
  aggregator: Aggregator<unknown, unknown, unknown>,
): Operator {
  return {
    name: `aggregate ${store}`,
    stores: [
      { name: store, serde: windowEntrySerde(aggregator.serde as Serde<unknown> | undefined) as Serde<unknown> },
    ],
    create: (ctx) => new FixedWindowAggregate(spec, emit, aggregator, store, ctx),
  };
}

export interface WindowEntry {
  key: string | null;
  start: number;
  /** The accumulator; null while a closed window rests encoded in `closed.bytes`. */
  acc: unknown;
  /** Set once the window's final result is out: it is kept for corrections (allowed lateness). */
  closed?: ClosedWindow;
}

interface ClosedWindow {
  /** The accumulator as the aggregator's serde encodes it, while no correction is pending. */
  bytes: Buffer | null;
  /** Corrections emitted so far. */
  corrections: number;
  /** The late records since the last emission, folded on their own; undefined when none. */
  delta: unknown;
}

/**
 * The store id of the latest window end dropped for room (maxClosed): windows ending at or before it
 * take no corrections. It survives restores in the changelog like the windows.
 */
const HORIZON_ID = "\u0001dropped-before";

// Changelog forms. An open window: packKeyed (its first byte is the high byte of a u32 key length,
// so 0). A closed window or the horizon: [u8 1][u8 flags][u32 corrections][u32 acc length][acc]
// [delta], then packKeyed's fields around that payload. Flags: 1 closed, 2 a pending delta follows.
const CLOSED_FORMAT = 1;
const HAS_DELTA = 2;

export function windowEntrySerde(accSerde: Serde<unknown> | undefined): Serde<WindowEntry> {
  const inner = accSerde ?? json<unknown>();
  const keyOf = (e: WindowEntry) => (e.key === null ? "\u0000" : `k${e.key}`);
  return {
    encode: (e) => {
      if (e.closed === undefined) return packKeyed(keyOf(e), e.start, inner.encode(e.acc));
      const c = e.closed;
      const acc = c.bytes ?? (e.acc === null ? Buffer.alloc(0) : inner.encode(e.acc));
      const delta = c.delta === undefined ? null : inner.encode(c.delta);
      const head = Buffer.allocUnsafe(10);
      head.writeUInt8(CLOSED_FORMAT, 0);
      head.writeUInt8(1 | (delta ? HAS_DELTA : 0), 1);
      head.writeUInt32BE(c.corrections, 2);
      head.writeUInt32BE(acc.length, 6);
      const body = packKeyed(keyOf(e), e.start, Buffer.concat(delta ? [acc, delta] : [acc]));
      return Buffer.concat([head, body]);
    },
    decode: (b) => {
      if (b.readUInt8(0) !== CLOSED_FORMAT) {
        const { key, time, payload } = unpackKeyed(b);
        return { key: key === "\u0000" ? null : key.slice(1), start: time, acc: inner.decode(payload) };
      }
      const flags = b.readUInt8(1);
      const corrections = b.readUInt32BE(2);
      const accLength = b.readUInt32BE(6);
      const { key, time, payload } = unpackKeyed(b.subarray(10));
      const bytes = ownBytes(payload.subarray(0, accLength));
      const delta = flags & HAS_DELTA ? inner.decode(payload.subarray(accLength)) : undefined;
      return {
        key: key === "\u0000" ? null : key.slice(1),
        start: time,
        acc: null,
        closed: { bytes, corrections, delta },
      };
    },
  };
}

/**
 * A kept window's bytes in a buffer of their own: a small Buffer is a slice of a shared 8 KiB slab,
 * and a long-lived slice would keep the whole slab alive.
 */
function ownBytes(b: Buffer): Buffer {
  const out = Buffer.allocUnsafeSlow(b.length);
  b.copy(out);
  return out;
}

export class FixedWindowAggregate implements Processor {
  private readonly timers = new EventTimers();
  /** Closed windows by the time they are dropped for good (end - 1 + allowedLateness, compared with watermark - grace). */
  private readonly expiries = new EventTimers();
  private readonly changed = new Set<string>();
  /** Closed windows changed by late records since the last checkpoint. */
  private readonly pending = new Set<string>();
  private nextEarly = Number.NEGATIVE_INFINITY;
  private readonly size: number;
  private readonly advance: number;
  private readonly grace: number;
  private readonly lateness: number;
  private readonly maxClosed: number;
  private readonly store: KeyValueStore<WindowEntry>;
  private readonly accSerde: Serde<unknown>;
  private readonly out: Emit;
  private readonly late: Emit;
  private closed = 0;
  /** Windows ending at or before this were dropped for room: they take no corrections. */
  private droppedBefore = Number.NEGATIVE_INFINITY;
  private readonly counts: CorrectionCounts = { records: 0, emitted: 0, kept: 0, evicted: 0 };

  constructor(
    spec: TumblingSpec | HoppingSpec,
    private readonly emit: EmitMode,
    private readonly aggregator: Aggregator<unknown, unknown, unknown>,
    store: string,
    private readonly ctx: OperatorContext,
  ) {
    this.store = ctx.store(store);
    this.accSerde = (aggregator.serde as Serde<unknown> | undefined) ?? json<unknown>();
    this.out = ctx.forward;
    this.late = ctx.late;
    this.size = spec.size;
    this.advance = spec.kind === "tumbling" ? spec.size : spec.advance;
    this.grace = spec.grace;
    this.lateness = spec.allowedLateness ?? 0;
    this.maxClosed = spec.maxClosed ?? DEFAULT_MAX_CLOSED_WINDOWS;
  }

  process(rec: Rec): void {
    const wm = this.ctx.watermark;
    const ts = rec.ts;
    const lastStart = ts - (((ts % this.advance) + this.advance) % this.advance);
    let accepted = false;
    for (let start = lastStart - this.size + this.advance; start <= lastStart; start += this.advance) {
      const end = start + this.size;
      const id = `${start}|${rec.key ?? "\u0000"}`;
      if (end - 1 + this.grace <= wm) {
        // Closed: a correction while it is kept, else late.
        if (end - 1 + this.grace + this.lateness <= wm || end <= this.droppedBefore) continue;
        this.correct(id, rec, start);
        accepted = true;
        continue;
      }
      accepted = true;
      let entry = this.store.get(id);
      if (entry === undefined) {
        entry = { key: rec.key, start, acc: this.aggregator.init() };
        this.timers.add(end - 1, id);
      }
      entry.acc = this.aggregator.add(entry.acc, rec.value, ts);
      this.store.put(id, entry, ts);
      if (this.emit.mode === "early") {
        if (this.emit.every === 0) this.emitEntry(entry, false);
        else this.changed.add(id);
      }
    }
    if (!accepted) this.late(rec);
  }

  /** A late record for a closed window still kept: into the window, and into its pending delta. */
  private correct(id: string, rec: Rec, start: number): void {
    let entry = this.store.get(id);
    if (entry !== undefined && entry.closed === undefined) {
      // Still open in state (its timer fires at the next watermark): it takes the record as usual.
      entry.acc = this.aggregator.add(entry.acc, rec.value, rec.ts);
      this.store.put(id, entry, rec.ts);
      return;
    }
    if (entry === undefined) {
      // No on-time record made this window: the late ones do, and its first result is a correction.
      entry = {
        key: rec.key,
        start,
        acc: this.aggregator.init(),
        closed: { bytes: null, corrections: 0, delta: undefined },
      };
      this.keep(id, entry);
    }
    const c = entry.closed as ClosedWindow;
    if (c.bytes !== null) {
      entry.acc = this.accSerde.decode(c.bytes);
      c.bytes = null;
    }
    entry.acc = this.aggregator.add(entry.acc, rec.value, rec.ts);
    c.delta = this.aggregator.add(c.delta === undefined ? this.aggregator.init() : c.delta, rec.value, rec.ts);
    this.store.put(id, entry, rec.ts);
    this.pending.add(id);
    this.counts.records++;
  }

  onStreamTime(streamTime: number): void {
    if (this.emit.mode !== "early" || this.emit.every === 0 || streamTime < this.nextEarly) return;
    const every = this.emit.every;
    this.nextEarly = streamTime - (streamTime % every) + every;
    for (const id of this.changed) {
      const entry = this.store.get(id);
      if (entry && entry.closed === undefined) this.emitEntry(entry, false);
    }
    this.changed.clear();
  }

  onWatermark(watermark: number): void {
    this.timers.popUntil(watermark - this.grace, (_end, id) => {
      const entry = this.store.get(id);
      if (!entry || entry.closed !== undefined) return;
      this.emitEntry(entry, true);
      this.changed.delete(id);
      if (this.lateness === 0) {
        this.store.delete(id);
        return;
      }
      entry.closed = { bytes: ownBytes(this.accSerde.encode(entry.acc)), corrections: 0, delta: undefined };
      entry.acc = null;
      this.keep(id, entry);
    });
    if (this.lateness > 0) this.expiries.popUntil(watermark - this.grace, (_t, id) => this.drop(id));
  }

  /** Late records changed these closed windows since the last checkpoint: their corrections go out now. */
  onCheckpoint(): void {
    if (this.pending.size === 0) return;
    for (const id of this.pending) {
      const entry = this.store.get(id);
      if (entry?.closed !== undefined) this.emitCorrection(id, entry);
    }
    this.pending.clear();
  }

  restored(): void {
    this.timers.clear();
    this.expiries.clear();
    this.pending.clear();
    this.closed = 0;
    const horizon = this.store.get(HORIZON_ID);
    if (horizon) this.droppedBefore = horizon.start;
    for (const [id, entry] of this.store.entries()) {
      if (id === HORIZON_ID) continue;
      if (entry.closed === undefined) {
        this.timers.add(entry.start + this.size - 1, id);
        continue;
      }
      this.closed++;
      this.expiries.add(entry.start + this.size - 1 + this.lateness, id);
      if (entry.closed.delta !== undefined) {
        // Checkpointed with a correction not yet emitted (not done by this runtime, but the format allows it).
        entry.acc = this.accSerde.decode(entry.closed.bytes as Buffer);
        entry.closed.bytes = null;
        this.pending.add(id);
      }
    }
    this.counts.kept = this.closed;
  }

  openCount(): number {
    return this.store.size - this.closed - (this.store.has(HORIZON_ID) ? 1 : 0);
  }

  corrections(): CorrectionCounts {
    return this.counts;
  }

  /** A closed window kept for corrections, within the bound. */
  private keep(id: string, entry: WindowEntry): void {
    this.store.put(id, entry, entry.start);
    this.expiries.add(entry.start + this.size - 1 + this.lateness, id);
    this.closed++;
    while (this.closed > this.maxClosed) {
      const oldest = this.expiries.shift();
      if (!oldest) break;
      const dropped = this.store.get(oldest[1]);
      if (dropped?.closed === undefined) continue;
      this.drop(oldest[1]);
      this.counts.evicted++;
      const end = dropped.start + this.size;
      if (end > this.droppedBefore) {
        this.droppedBefore = end;
        this.store.put(HORIZON_ID, {
          key: null,
          start: end,
          acc: null,
          closed: { bytes: null, corrections: 0, delta: undefined },
        });
      }
    }
    this.counts.kept = this.closed;
  }

  /** A closed window's allowed lateness is over (or its room is needed): a pending correction goes out first. */
  private drop(id: string): void {
    const entry = this.store.get(id);
    if (entry?.closed === undefined) return;
    if (this.pending.delete(id)) this.emitCorrection(id, entry);
    this.store.delete(id);
    this.closed--;
    this.counts.kept = this.closed;
  }

  private emitCorrection(id: string, entry: WindowEntry): void {
    const c = entry.closed as ClosedWindow;
    if (c.delta === undefined) return;
    c.corrections++;
    const end = entry.start + this.size;
    const result = this.aggregator.result;
    const value: Windowed<unknown> = {
      start: entry.start,
      end,
      value: result ? result(entry.acc) : entry.acc,
      final: true,
      correction: c.corrections,
      delta: result ? result(c.delta) : c.delta,
    };
    this.counts.emitted++;
    this.out({ key: entry.key, value, ts: end - 1 });
    // At rest again: encoded, so a kept window costs its changelog bytes, not live objects.
    c.bytes = ownBytes(this.accSerde.encode(entry.acc));
    c.delta = undefined;
    entry.acc = null;
    this.store.put(id, entry, entry.start);
  }

  private emitEntry(entry: WindowEntry, final: boolean): void {
    const end = entry.start + this.size;
    const value: Windowed<unknown> = {
      start: entry.start,
      end,
      value: this.aggregator.result ? this.aggregator.result(entry.acc) : entry.acc,
      final,
    };
    this.out({ key: entry.key, value, ts: end - 1 });
  }
}
