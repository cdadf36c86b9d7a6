// Tumbling and hopping window aggregation. State: one accumulator per (key, window start), keyed
// "start|key" in the task's store; a timer per window end. A window emits its final value when the
// watermark reaches end + grace, and its state is deleted then (a tombstone in the changelog).
import {
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
import type { EmitMode, Windowed } from "./window.ts";

export interface TumblingSpec {
  kind: "tumbling";
  size: number;
  grace: number;
}

export interface HoppingSpec {
  kind: "hopping";
  size: number;
  advance: number;
  grace: number;
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
  acc: unknown;
}

export function windowEntrySerde(accSerde: Serde<unknown> | undefined): Serde<WindowEntry> {
  const inner = accSerde ?? json<unknown>();
  return {
    encode: (e) => packKeyed(e.key === null ? "\u0000" : `k${e.key}`, e.start, inner.encode(e.acc)),
    decode: (b) => {
      const { key, time, payload } = unpackKeyed(b);
      return { key: key === "\u0000" ? null : key.slice(1), start: time, acc: inner.decode(payload) };
    },
  };
}

export class FixedWindowAggregate implements Processor {
  private readonly timers = new EventTimers();
  private readonly changed = new Set<string>();
  private nextEarly = Number.NEGATIVE_INFINITY;
  private readonly size: number;
  private readonly advance: number;
  private readonly grace: number;
  private readonly store: KeyValueStore<WindowEntry>;
  private readonly out: Emit;
  private readonly late: Emit;

  constructor(
    spec: TumblingSpec | HoppingSpec,
    private readonly emit: EmitMode,
    private readonly aggregator: Aggregator<unknown, unknown, unknown>,
    store: string,
    private readonly ctx: OperatorContext,
  ) {
    this.store = ctx.store(store);
    this.out = ctx.forward;
    this.late = ctx.late;
    this.size = spec.size;
    this.advance = spec.kind === "tumbling" ? spec.size : spec.advance;
    this.grace = spec.grace;
  }

  process(rec: Rec): void {
    const wm = this.ctx.watermark;
    const ts = rec.ts;
    const lastStart = ts - (((ts % this.advance) + this.advance) % this.advance);
    let accepted = false;
    for (let start = lastStart - this.size + this.advance; start <= lastStart; start += this.advance) {
      const end = start + this.size;
      if (end - 1 + this.grace <= wm) continue; // this window is closed
      accepted = true;
      const id = `${start}|${rec.key ?? "\u0000"}`;
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

  onStreamTime(streamTime: number): void {
    if (this.emit.mode !== "early" || this.emit.every === 0 || streamTime < this.nextEarly) return;
    const every = this.emit.every;
    this.nextEarly = streamTime - (streamTime % every) + every;
    for (const id of this.changed) {
      const entry = this.store.get(id);
      if (entry) this.emitEntry(entry, false);
    }
    this.changed.clear();
  }

  onWatermark(watermark: number): void {
    this.timers.popUntil(watermark - this.grace, (_end, id) => {
      const entry = this.store.get(id);
      if (!entry) return;
      this.emitEntry(entry, true);
      this.store.delete(id);
      this.changed.delete(id);
    });
  }

  restored(): void {
    this.timers.clear();
    for (const [id, entry] of this.store.entries()) this.timers.add(entry.start + this.size - 1, id);
  }

  openCount(): number {
    return this.store.size;
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
