// Windowed stream-stream join (Kafka Streams' KStream#join / #leftJoin with JoinWindows): a record
// joins every record of the other side with the same key whose timestamp is at most `within` away.
// Both sides are buffered per key until the watermark passes t + within + grace; a left join emits
// an unmatched left record with null at that moment, never early (so no spurious null results).
// A record more than grace behind the watermark is late: everything it could have joined with is
// still buffered for any record that is not.
import type { JoinNode } from "../dsl/graph.ts";
import type { Emit, OperatorContext, Processor } from "../runtime/processor.ts";
import type { KeyValueStore } from "../state/store.ts";
import { EventTimers } from "../time/timers.ts";
import type { Rec } from "../types.ts";

/** [timestamp, value, matched] triples, in arrival order. */
export interface JoinBuffer {
  key: string | null;
  records: Array<[number, unknown, boolean]>;
}

export class StreamJoin implements Processor {
  private readonly timers = new EventTimers();
  lateCount = 0;

  constructor(
    private readonly node: JoinNode,
    private readonly store: KeyValueStore<JoinBuffer>,
    private readonly ctx: OperatorContext,
    private readonly out: Emit,
    private readonly late: Emit,
  ) {}

  process(rec: Rec, input: "main" | "left" | "right"): void {
    const { within, grace, joiner } = this.node;
    const ts = rec.ts;
    if (ts + grace <= this.ctx.watermark) {
      this.lateCount++;
      this.late(rec);
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
