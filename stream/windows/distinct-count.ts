// Windowed distinct count ("distinct accounts per device in 1 h"): per key, how many distinct values
// its records carried in the sliding event-time window [newest - size, newest], newest being the
// key's newest record. A record that brings a value new to that window emits the new count at once:
// fraud signals fire on the triggering event, not when a window closes. The count also goes down as
// the window slides past values; no record triggers that, so it is not emitted, and the next emission
// carries the count as of its record.
//
// State is one entry per key, never one per event: each distinct value with the last time it was
// seen, in two parallel arrays sorted by that time (a value seen again moves to the end). A value
// older than newest - size can never count again, so the front of the arrays is cut as the key's
// newest record moves; a key whose newest record is more than size + grace behind the watermark is
// dropped whole (the store's TTL, in event time). Small keys (most devices have one or two accounts)
// cost two short arrays; a key with many values also gets a Map index (value -> last seen) so a hot
// key costs O(log n) per record, not O(n).
//
// Bounds, all counted: at most `cap` values per key: beyond it the least recently seen value is
// dropped (`overflow`), which keeps the count exact up to the cap (the values kept are the `cap` most
// recently seen, so they expire last), and `capped` says when the real count is higher. Values longer
// than 64 characters are kept as their SHA-256, so a key's changelog record stays far below a Kafka
// message's limit. `maxKeys` bounds the keys (least recently updated evicted, counted in the store).
// A record more than grace behind the watermark is late (the runtime's rule); one older than its
// key's newest record by more than `size` counts in no window this operator still emits, and is
// counted as `behind-window`.
import { createHash } from "node:crypto";
import type { Operator, OperatorContext, Processor } from "../runtime/processor.ts";
import type { KeyValueStore } from "../state/store.ts";
import { type Rec, type Serde, TopologyError } from "../types.ts";
import type { Windowed } from "./window.ts";

export interface DistinctCountSpec {
  /** The window: values seen in [newest - size, newest], both ends included. */
  size: number;
  /** How far behind the watermark a record may arrive and still count. */
  grace: number;
  /** Distinct values kept per key (at most MAX_DISTINCT_CAP). */
  cap: number;
  /** Keys kept per task, least recently updated evicted first; unbounded (but TTL'd) when absent. */
  maxKeys?: number;
  /** The value a record counts for; null or undefined: it counts for nothing. */
  of: (value: unknown, key: string | null) => string | null | undefined;
}

/** What a distinct count emits, as the value of a Windowed result (never final). */
export interface DistinctCount<V = unknown> {
  /** Distinct values in the window, at most the cap. */
  count: number;
  /** The window holds more distinct values than the cap: `count` is a lower bound. */
  capped: boolean;
  /** Values the key dropped for the cap since its window was last empty. */
  overflow: number;
  /** The value the triggering record brought (its SHA-256 when longer than 64 characters). */
  distinct: string;
  /** The triggering record's value, for the evidence of whatever fires on it. */
  record: V;
}

/** A key's changelog record holds at most 25 + cap x 202 bytes: this keeps it well under a Kafka message's 1 MB. */
export const MAX_DISTINCT_CAP = 3000;
export const DEFAULT_DISTINCT_CAP = 1000;
const MAX_VALUE_LENGTH = 64;
/** Above this many values a key gets its Map index; below half of it the index goes. */
const INDEX_FROM = 16;

export interface DistinctState {
  newest: number;
  /** The newest last-seen time of a value dropped for the cap (-Infinity: none). */
  floor: number;
  overflow: number;
  /** Distinct values, least recently seen first. */
  values: string[];
  /** values[i] was last seen at seen[i]; ascending. */
  seen: number[];
  /** value -> last seen, for keys with more than INDEX_FROM values; rebuilt, never stored. */
  index: Map<string, number> | undefined;
}

/** A distinct count per key in the store `store`. */
export function distinctCount(spec: DistinctCountSpec, store: string): Operator {
  if (!Number.isInteger(spec.cap) || spec.cap < 1 || spec.cap > MAX_DISTINCT_CAP) {
    throw new TopologyError(
      `countDistinct ${store}: cap must be a whole number from 1 to ${MAX_DISTINCT_CAP} (a key's state is one changelog record), got ${spec.cap}`,
    );
  }
  if (spec.size <= 0) throw new TopologyError(`countDistinct ${store}: within must be positive, got ${spec.size} ms`);
  if (spec.maxKeys !== undefined && (!Number.isInteger(spec.maxKeys) || spec.maxKeys < 1)) {
    throw new TopologyError(`countDistinct ${store}: maxKeys must be a positive whole number, got ${spec.maxKeys}`);
  }
  return {
    name: `countDistinct ${store}`,
    stores: [
      {
        name: store,
        serde: distinctStateSerde as Serde<unknown>,
        // A key whose newest record is this far behind the watermark has no value any record can count with.
        ttl: spec.size + spec.grace,
        ...(spec.maxKeys !== undefined ? { maxEntries: spec.maxKeys } : {}),
      },
    ],
    create: (ctx) => new DistinctCountProcessor(spec, ctx.store(store), ctx),
  };
}

export class DistinctCountProcessor implements Processor {
  private capDrops = 0;
  private behindWindow = 0;

  constructor(
    private readonly spec: DistinctCountSpec,
    private readonly store: KeyValueStore<DistinctState>,
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
    if (raw === null || raw === undefined) return;
    const value = boundedValue(typeof raw === "string" ? raw : String(raw));
    const id = rec.key ?? "\u0000";
    let st = this.store.get(id);
    if (st === undefined) {
      st = { newest: t, floor: Number.NEGATIVE_INFINITY, overflow: 0, values: [], seen: [], index: undefined };
    } else if (t < st.newest - size) {
      this.behindWindow++;
      return;
    }
    if (t > st.newest) st.newest = t;
    const from = st.newest - size;
    cut(st, from);
    if (st.values.length === 0) {
      // Nothing of the key is left in its window: it starts over as if its state had expired.
      st.floor = Number.NEGATIVE_INFINITY;
      st.overflow = 0;
    }
    const before = st.values.length;
    const cappedBefore = st.floor >= from;
    this.see(st, value, t);
    this.store.put(id, st, st.newest);
    const count = st.values.length;
    const capped = st.floor >= from;
    if (count === before && capped === cappedBefore) return;
    const result: Windowed<DistinctCount> = {
      start: from,
      end: st.newest + 1,
      value: { count, capped, overflow: st.overflow, distinct: value, record: rec.value },
      final: false,
    };
    this.ctx.forward({ key: rec.key, value: result, ts: st.newest });
  }

  onWatermark(watermark: number): void {
    this.store.expire(watermark);
  }

  openCount(): number {
    return this.store.size;
  }

  dropped(): Record<string, number> {
    return { cap: this.capDrops, "behind-window": this.behindWindow };
  }

  /** Records that `value` was seen at `t`, within the cap. */
  private see(st: DistinctState, value: string, t: number): void {
    const { values, seen } = st;
    if (st.index === undefined && values.length > INDEX_FROM) st.index = buildIndex(st);
    const at = position(st, value);
    if (at >= 0) {
      if ((seen[at] as number) >= t) return;
      // Seen again, later: slide it towards the end, past the values seen at or before t.
      let i = at;
      for (; i + 1 < values.length && (seen[i + 1] as number) <= t; i++) {
        values[i] = values[i + 1] as string;
        seen[i] = seen[i + 1] as number;
      }
      values[i] = value;
      seen[i] = t;
      st.index?.set(value, t);
      return;
    }
    if (values.length >= this.spec.cap) {
      st.overflow++;
      this.capDrops++;
      if (t < (seen[0] as number)) {
        // Older than every value kept: it would be the first to go.
        if (t > st.floor) st.floor = t;
        return;
      }
      const gone = values.shift() as string;
      const goneAt = seen.shift() as number;
      st.index?.delete(gone);
      if (goneAt > st.floor) st.floor = goneAt;
    }
    insert(st, value, t);
  }
}

function boundedValue(v: string): string {
  if (v.length <= MAX_VALUE_LENGTH) return v;
  return `sha256:${createHash("sha256").update(v).digest("base64url")}`;
}

/** Drops the values last seen before `from`. */
function cut(st: DistinctState, from: number): void {
  const { values, seen } = st;
  if (seen.length === 0 || (seen[0] as number) >= from) return;
  const k = lowerBound(seen, from);
  if (st.index) for (let i = 0; i < k; i++) st.index.delete(values[i] as string);
  values.splice(0, k);
  seen.splice(0, k);
  if (st.index && values.length < INDEX_FROM / 2) st.index = undefined;
}

/** Where `value` is in the arrays, or -1. */
function position(st: DistinctState, value: string): number {
  const { values, seen, index } = st;
  if (index) {
    const t = index.get(value);
    if (t === undefined) return -1;
    for (let i = lowerBound(seen, t); i < values.length; i++) if (values[i] === value) return i;
    throw new Error(`internal: distinct value index out of step with its arrays`);
  }
  // Recently seen values are the likeliest repeats.
  for (let i = values.length - 1; i >= 0; i--) if (values[i] === value) return i;
  return -1;
}

/** Inserts after every value seen at or before `t` (at the end, for records in order). */
function insert(st: DistinctState, value: string, t: number): void {
  const { values, seen } = st;
  const n = seen.length;
  const at = n === 0 || (seen[n - 1] as number) <= t ? n : upperBound(seen, t);
  if (n < INDEX_FROM) {
    // Small keys get arrays of their exact size: a push would reserve 17 slots, and most keys are small.
    const nv = new Array<string>(n + 1);
    const ns = new Array<number>(n + 1);
    for (let i = 0; i < at; i++) {
      nv[i] = values[i] as string;
      ns[i] = seen[i] as number;
    }
    nv[at] = value;
    ns[at] = t;
    for (let i = at; i < n; i++) {
      nv[i + 1] = values[i] as string;
      ns[i + 1] = seen[i] as number;
    }
    st.values = nv;
    st.seen = ns;
  } else if (at === n) {
    values.push(value);
    seen.push(t);
  } else {
    values.splice(at, 0, value);
    seen.splice(at, 0, t);
  }
  st.index?.set(value, t);
}

function buildIndex(st: DistinctState): Map<string, number> {
  const index = new Map<string, number>();
  for (let i = 0; i < st.values.length; i++) index.set(st.values[i] as string, st.seen[i] as number);
  return index;
}

/** The first index whose time is >= t. */
function lowerBound(seen: number[], t: number): number {
  let lo = 0;
  let hi = seen.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((seen[mid] as number) < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The first index whose time is > t. */
function upperBound(seen: number[], t: number): number {
  let lo = 0;
  let hi = seen.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((seen[mid] as number) <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const STATE_VERSION = 1;

/**
 * The changelog form of a key's state: [u8 version][f64 newest][f64 floor][u32 overflow][u32 n]
 * [n x f64 last seen][n x (u16 byte length, UTF-8 value)].
 */
export const distinctStateSerde: Serde<DistinctState> = {
  encode(st) {
    const n = st.values.length;
    const bytes = st.values.map((v) => Buffer.from(v, "utf8"));
    let size = 1 + 8 + 8 + 4 + 4 + n * 8;
    for (const b of bytes) size += 2 + b.length;
    const out = Buffer.allocUnsafe(size);
    let o = out.writeUInt8(STATE_VERSION, 0);
    o = out.writeDoubleBE(st.newest, o);
    o = out.writeDoubleBE(st.floor, o);
    o = out.writeUInt32BE(st.overflow, o);
    o = out.writeUInt32BE(n, o);
    for (const t of st.seen) o = out.writeDoubleBE(t, o);
    for (const b of bytes) {
      o = out.writeUInt16BE(b.length, o);
      o += b.copy(out, o);
    }
    return out;
  },
  decode(buf) {
    const version = buf.readUInt8(0);
    if (version !== STATE_VERSION) throw new Error(`distinct count state version ${version} is not ${STATE_VERSION}`);
    const newest = buf.readDoubleBE(1);
    const floor = buf.readDoubleBE(9);
    const overflow = buf.readUInt32BE(17);
    const n = buf.readUInt32BE(21);
    let o = 25;
    const seen = new Array<number>(n);
    for (let i = 0; i < n; i++, o += 8) seen[i] = buf.readDoubleBE(o);
    const values = new Array<string>(n);
    for (let i = 0; i < n; i++) {
      const len = buf.readUInt16BE(o);
      values[i] = buf.toString("utf8", o + 2, o + 2 + len);
      o += 2 + len;
    }
    return { newest, floor, overflow, values, seen, index: undefined };
  },
};
