// Windowed stream-stream join (Kafka Streams' KStream#join / #leftJoin with JoinWindows): a record
// joins every record of the other side with the same key whose timestamp is at most `within` away.
// Both sides are buffered per key until the watermark passes t + within + grace; a left join emits
// an unmatched left record with null at that moment, never early (so no spurious null results).
// A record more than grace behind the watermark is late: everything it could have joined with is
// still buffered for any record that is not.
import type { Emit, Input, Operator, OperatorContext, Processor } from "../runtime/processor.ts";
import type { KeyValueStore } from "../state/store.ts";
import { EventTimers } from "../time/timers.ts";
import { json, type Rec } from "../types.ts";

export interface StreamJoinSpec {
  type: "inner" | "left";
  /** Records of the two sides join when their timestamps are at most this far apart. */
  within: number;
  grace: number;
  joiner: (left: unknown, right: unknown, key: string | null) => unknown;
}

/** A windowed stream-stream join, both sides buffered in the store `store` (JSON). */
export function streamJoin(spec: StreamJoinSpec, store: string): Operator {
  return {
    name: `join ${store}`,
    stores: [{ name: store, serde: json() }],
    create: (ctx) => new StreamJoin(spec, ctx.store(store), ctx),
  };
}

/** [timestamp, value, matched] triples, in arrival order. */
export interface JoinBuffer {
  key: string | null;
  records: Array<[number, unknown, boolean]>;
}

export class StreamJoin implements Processor {
  private readonly timers = new EventTimers();
  private readonly out: Emit;

  constructor(
    private readonly node: StreamJoinSpec,
    private readonly store: KeyValueStore<JoinBuffer>,
    private readonly ctx: OperatorContext,
  ) {
    this.out = ctx.forward;
  }

  process(rec: Rec, input: Input): void {
    const { within, grace, joiner } = this.node;
    const ts = rec.ts;
    if (ts + grace <= this.ctx.watermark) {
      this.ctx.late(rec);
      return;
    }
    const side = input === "right" ? "R" : "L";
    const otherId = `${side === "L" ? "R" : "L"}${rec.key ?? "\u0000"}`;
    const ownId = `${side}${rec.key ?? "\u0000"}`;
    let matched = false;
    const other = this.store.get(otherId);
    if (other) {
      let touched = false;
      for (const entry of other.records) {
        if (Math.abs(entry[0] - ts) > within) continue;
        matched = true;
        const value = side === "L" ? joiner(rec.value, entry[1], rec.key) : joiner(entry[1], rec.value, rec.key);
        this.out({ key: rec.key, value, ts: Math.max(ts, entry[0]) });
        if (!entry[2]) {
          entry[2] = true;
          touched = true;
        }
      }
      if (touched) this.store.put(otherId, other, ts);
    }
    const own = this.store.get(ownId) ?? { key: rec.key, records: [] };
    own.records.push([ts, rec.value, matched]);
    this.store.put(ownId, own, ts);
    this.timers.add(ts + within + grace, ownId);
  }

  onWatermark(watermark: number): void {
    this.timers.popUntil(watermark, (_t, id) => {
      const buf = this.store.get(id);
      if (!buf) return;
      const { within, grace, joiner, type } = this.node;
      const keep: JoinBuffer["records"] = [];
      for (const entry of buf.records) {
        if (entry[0] + within + grace > watermark) {
          keep.push(entry);
          continue;
        }
        if (type === "left" && id.startsWith("L") && !entry[2]) {
          this.out({ key: buf.key, value: joiner(entry[1], null, buf.key), ts: entry[0] });
        }
      }
      if (keep.length === 0) this.store.delete(id);
      else if (keep.length !== buf.records.length) {
        buf.records = keep;
        this.store.put(id, buf, watermark);
      }
    });
  }

  restored(): void {
    this.timers.clear();
    const { within, grace } = this.node;
    for (const [id, buf] of this.store.entries()) {
      for (const [t] of buf.records) this.timers.add(t + within + grace, id);
    }
  }

  openCount(): number {
    return this.store.size;
  }
}
