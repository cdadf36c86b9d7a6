// Session windows: per key, records less than `gap` apart belong to one session; a record that
// bridges two sessions merges them (the aggregator's merge). A session [first, last] closes when the
// watermark reaches last + gap - 1 + grace: no on-time record can extend it any more. A record is
// late when it is more than grace behind the watermark, which keeps every session it could join open.
import type { Emit, Operator, OperatorContext, Processor } from "../runtime/processor.ts";
import type { KeyValueStore } from "../state/store.ts";
import { EventTimers } from "../time/timers.ts";
import { json, type Rec, type Serde, TopologyError } from "../types.ts";
import type { Aggregator } from "./aggregator.ts";
import { type EmitMode, noLateness, type Windowed } from "./window.ts";

/** Activity separated by less than `gap` forms one session. */
export interface SessionSpec {
  kind: "session";
  gap: number;
  grace: number;
  allowedLateness?: number;
}

export interface Session {
  first: number;
  last: number;
  acc: unknown;
}

export interface SessionList {
  key: string | null;
  sessions: Session[];
}

/** Session-window aggregation, its session lists in the store `store`. */
export function sessionWindowAggregate(
  spec: SessionSpec,
  store: string,
  emit: EmitMode,
  aggregator: Aggregator<unknown, unknown, unknown>,
): Operator {
  noLateness("session", store, spec.allowedLateness);
  if (!aggregator.merge) {
    throw new TopologyError(`aggregate ${store}: session windows merge sessions, so the aggregator needs merge()`);
  }
  return {
    name: `aggregate ${store}`,
    stores: [{ name: store, serde: sessionSerde(aggregator.serde as Serde<unknown> | undefined) }],
    create: (ctx) => new SessionWindowAggregate(spec, emit, aggregator, ctx.store(store), ctx),
  };
}

/** Session lists with accumulators encoded by the aggregator's serde (base64 inside JSON). */
function sessionSerde(acc: Serde<unknown> | undefined): Serde<unknown> {
  if (!acc) return json();
  return {
    encode: (v) => {
      const list = v as SessionList;
      return Buffer.from(
        JSON.stringify({
          key: list.key,
          sessions: list.sessions.map((s) => ({ ...s, acc: acc.encode(s.acc).toString("base64") })),
        }),
      );
    },
    decode: (b) => {
      const raw = JSON.parse(b.toString("utf8"));
      for (const s of raw.sessions) s.acc = acc.decode(Buffer.from(s.acc, "base64"));
      return raw;
    },
  };
}

export class SessionWindowAggregate implements Processor {
  private readonly timers = new EventTimers();
  private readonly changed = new Set<string>();
  private nextEarly = Number.NEGATIVE_INFINITY;
  private readonly out: Emit;

  constructor(
    private readonly spec: SessionSpec,
    private readonly emit: EmitMode,
    private readonly aggregator: Aggregator<unknown, unknown, unknown>,
    private readonly store: KeyValueStore<SessionList>,
    private readonly ctx: OperatorContext,
  ) {
    this.out = ctx.forward;
  }

  process(rec: Rec): void {
    const ts = rec.ts;
    const { gap, grace } = this.spec;
    if (ts + grace <= this.ctx.watermark) {
      this.ctx.late(rec);
      return;
    }
    const id = rec.key ?? "\u0000";
    const list = this.store.get(id) ?? { key: rec.key, sessions: [] };
    const merge = this.aggregator.merge as (a: unknown, b: unknown) => unknown;
    let merged: Session = { first: ts, last: ts, acc: this.aggregator.add(this.aggregator.init(), rec.value, ts) };
    const kept: Session[] = [];
    for (const s of list.sessions) {
      if (s.last + gap > ts && ts + gap > s.first) {
        this.timers.remove(s.last + gap - 1, id);
        merged = {
          first: Math.min(merged.first, s.first),
          last: Math.max(merged.last, s.last),
          acc: merge(s.acc, merged.acc),
        };
      } else kept.push(s);
    }
    kept.push(merged);
    kept.sort((a, b) => a.first - b.first);
    list.sessions = kept;
    this.store.put(id, list, ts);
    this.timers.add(merged.last + gap - 1, id);
    if (this.emit.mode === "early") {
      if (this.emit.every === 0) this.emitSession(list.key, merged, false);
      else this.changed.add(id);
    }
  }

  onStreamTime(streamTime: number): void {
    if (this.emit.mode !== "early" || this.emit.every === 0 || streamTime < this.nextEarly) return;
    this.nextEarly = streamTime - (streamTime % this.emit.every) + this.emit.every;
    for (const id of this.changed) {
      const list = this.store.get(id);
      if (list) for (const s of list.sessions) this.emitSession(list.key, s, false);
    }
    this.changed.clear();
  }

  onWatermark(watermark: number): void {
    const { gap, grace } = this.spec;
    this.timers.popUntil(watermark - grace, (_t, id) => {
      const list = this.store.get(id);
      if (!list) return;
      const open: Session[] = [];
      for (const s of list.sessions) {
        if (s.last + gap - 1 + grace <= watermark) this.emitSession(list.key, s, true);
        else open.push(s);
      }
      if (open.length === 0) {
        this.store.delete(id);
        this.changed.delete(id);
      } else if (open.length !== list.sessions.length) {
        list.sessions = open;
        this.store.put(id, list, watermark);
      }
    });
  }

  restored(): void {
    this.timers.clear();
    for (const [id, list] of this.store.entries()) {
      for (const s of list.sessions) this.timers.add(s.last + this.spec.gap - 1, id);
    }
  }

  openCount(): number {
    let n = 0;
    for (const [, list] of this.store.entries()) n += list.sessions.length;
    return n;
  }

  private emitSession(key: string | null, s: Session, final: boolean): void {
    const value: Windowed<unknown> = {
      start: s.first,
      end: s.last + 1,
      value: this.aggregator.result ? this.aggregator.result(s.acc) : s.acc,
      final,
    };
    this.out({ key, value, ts: s.last });
  }
}
