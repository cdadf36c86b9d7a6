// Rolling sum and count per key ("coins recharged by this user in the last 24 h", "follows of this
// streamer in the last 10 min"): the sum and count of a key's values in the sliding event-time window
// [newest - size, newest], newest being the key's newest record (as countDistinct's window), emitted at
// once by every record that changes them. Fraud signals fire on the triggering event, not when a window
// closes. A record that arrives out of order still raises the window ending at the newest record, so
// twenty follows from three partitions, read in any order, reach twenty when the last one is read.
//
// State is one entry per key: the values of the window as (time, sum, count) entries sorted by time,
// with the running sum and count. A record in order (the common case) costs O(1) amortised: its entry
// is appended and the entries that fell out of the window are subtracted; one out of order is
// inserted in its place.
//
// Bounds, all counted: at most `maxEntries` entries per key; past it the two oldest merge into one
// (their sum and count, at the later time), so the window's far edge keeps them a little longer
// (`merged`); keys expire in event time (TTL size + grace) and are bounded (`maxKeys`). A record more
// than grace behind the watermark is late; one older than its key's newest record by more than size
// counts in no window still emitted (`behind-window`).
import type { Operator, OperatorContext, Processor } from "../runtime/processor.ts";
import type { KeyValueStore } from "../state/store.ts";
import { type Rec, type Serde, TopologyError } from "../types.ts";
import type { Windowed } from "./window.ts";

export interface RollingSpec {
  size: number;
  grace: number;
  /** Entries kept per key (at most MAX_ROLLING_ENTRIES). */
  maxEntries?: number;
  maxKeys?: number;
  of: (value: unknown, key: string | null) => number | null | undefined;
}

export interface RollingSum<V = unknown> {
  sum: number;
  /** Records with a value in the window. */
  count: number;
  /** The triggering record, for the evidence of whatever fires on it. */
  record: V;
}

export interface RollingState {
  newest: number;
  /** Sum and count of [newest - size, newest]. */
  sum: number;
  count: number;
  /** Index of the first entry inside that window. */
  from: number;
  ts: number[];
  sums: number[];
  counts: number[];
}

/** 20 bytes an entry: a key's changelog record stays under 800 KB. */
export const MAX_ROLLING_ENTRIES = 40_000;
export const DEFAULT_ROLLING_ENTRIES = 10_000;

export function rollingSum(spec: RollingSpec, store: string): Operator {
  const maxEntries = spec.maxEntries ?? DEFAULT_ROLLING_ENTRIES;
  if (!Number.isInteger(maxEntries) || maxEntries < 2 || maxEntries > MAX_ROLLING_ENTRIES)
    throw new TopologyError(
      `rollingSum ${store}: maxEntries must be a whole number from 2 to ${MAX_ROLLING_ENTRIES}, got ${maxEntries}`,
    );
  if (!(spec.size > 0)) throw new TopologyError(`rollingSum ${store}: within must be positive, got ${spec.size} ms`);
  return {
    name: `rollingSum ${store}`,
    stores: [
      {
        name: store,
        serde: rollingStateSerde as Serde<unknown>,
        ttl: spec.size + spec.grace,
        ...(spec.maxKeys !== undefined ? { maxEntries: spec.maxKeys } : {}),
      },
    ],
    create: (ctx) => new RollingSumProcessor(spec, maxEntries, ctx.store(store), ctx),
  };
}

class RollingSumProcessor implements Processor {
  private merged = 0;
  private behindWindow = 0;

  constructor(
    private readonly spec: RollingSpec,
    private readonly maxEntries: number,
    private readonly store: KeyValueStore<RollingState>,
    private readonly ctx: OperatorContext,
  ) {}

  process(rec: Rec): void {
    const t = rec.ts;
    const { size, grace } = this.spec;
    if (t + grace <= this.ctx.watermark) {
      this.ctx.late(rec);
      return;
    }
    const raw = this.spec.of(rec.value, rec.key);
    if (raw === null || raw === undefined || !Number.isFinite(raw)) return;
    const id = rec.key ?? "\u0000";
    let st = this.store.get(id);
    if (st === undefined) st = { newest: t, sum: 0, count: 0, from: 0, ts: [], sums: [], counts: [] };
    else if (t < st.newest - size) {
      this.behindWindow++;
      return;
    }
    if (t >= st.newest) {
      st.ts.push(t);
      st.sums.push(raw);
      st.counts.push(1);
      st.sum += raw;
      st.count += 1;
      st.newest = t;
      // Entries that fell out of [t - size, t].
      while (st.from < st.ts.length && (st.ts[st.from] as number) < t - size) {
        st.sum -= st.sums[st.from] as number;
        st.count -= st.counts[st.from] as number;
        st.from++;
      }
    } else {
      // Out of order, inside the window: it goes before the newer entries and counts in the window.
      let i = st.ts.length;
      while (i > st.from && (st.ts[i - 1] as number) > t) i--;
      st.ts.splice(i, 0, t);
      st.sums.splice(i, 0, raw);
      st.counts.splice(i, 0, 1);
      st.sum += raw;
      st.count += 1;
    }
    this.compact(st);
    this.store.put(id, st, st.newest);
    const value: RollingSum = { sum: st.sum, count: st.count, record: rec.value };
    const result: Windowed<RollingSum> = { start: st.newest - size, end: st.newest + 1, value, final: false };
    this.ctx.forward({ key: rec.key, value: result, ts: st.newest });
  }

  /** Drops the entries that left the window, and merges the oldest past the cap. */
  private compact(st: RollingState): void {
    const cut = st.from;
    if (cut > 0) {
      st.ts.splice(0, cut);
      st.sums.splice(0, cut);
      st.counts.splice(0, cut);
      st.from -= cut;
    }
    while (st.ts.length > this.maxEntries) {
      // Merge entries 0 and 1 into one at entry 1's time.
      st.sums[1] = (st.sums[1] as number) + (st.sums[0] as number);
      st.counts[1] = (st.counts[1] as number) + (st.counts[0] as number);
      if (st.from === 0) {
        // entry 0 was in the window, and so is the merged entry: the totals do not change
      } else if (st.from === 1) {
        // entry 0 was out and entry 1 in: the merged entry brings entry 0 back in
        st.sum += st.sums[0] as number;
        st.count += st.counts[0] as number;
      }
      st.ts.shift();
      st.sums.shift();
      st.counts.shift();
      st.from = Math.max(0, st.from - 1);
      this.merged++;
    }
  }

  onWatermark(watermark: number): void {
    this.store.expire(watermark);
  }

  openCount(): number {
    return this.store.size;
  }

  dropped(): Record<string, number> {
    return { merged: this.merged, "behind-window": this.behindWindow };
  }
}

const STATE_VERSION = 1;

/** [u8 version][f64 newest][f64 sum][f64 count][u32 from][u32 n][n x (f64 ts, f64 sum, u32 count)]. */
export const rollingStateSerde: Serde<RollingState> = {
  encode(st) {
    const n = st.ts.length;
    const out = Buffer.allocUnsafe(1 + 8 * 3 + 4 + 4 + n * 20);
    let o = out.writeUInt8(STATE_VERSION, 0);
    o = out.writeDoubleBE(st.newest, o);
    o = out.writeDoubleBE(st.sum, o);
    o = out.writeDoubleBE(st.count, o);
    o = out.writeUInt32BE(st.from, o);
    o = out.writeUInt32BE(n, o);
    for (let i = 0; i < n; i++) {
      o = out.writeDoubleBE(st.ts[i] as number, o);
      o = out.writeDoubleBE(st.sums[i] as number, o);
      o = out.writeUInt32BE(st.counts[i] as number, o);
    }
    return out;
  },
  decode(buf) {
    const version = buf.readUInt8(0);
    if (version !== STATE_VERSION) throw new Error(`rolling sum state version ${version} is not ${STATE_VERSION}`);
    const newest = buf.readDoubleBE(1);
    const sum = buf.readDoubleBE(9);
    const count = buf.readDoubleBE(17);
    const from = buf.readUInt32BE(25);
    const n = buf.readUInt32BE(29);
    const ts = new Array<number>(n);
    const sums = new Array<number>(n);
    const counts = new Array<number>(n);
    let o = 33;
    for (let i = 0; i < n; i++, o += 20) {
      ts[i] = buf.readDoubleBE(o);
      sums[i] = buf.readDoubleBE(o + 8);
      counts[i] = buf.readUInt32BE(o + 16);
    }
    return { newest, sum, count, from, ts, sums, counts };
  },
};
