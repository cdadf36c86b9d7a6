// Aggregated writes (the DSL's `coalesce`): a stream of increments per key (coins per streamer, likes
// per room) becomes one delta per key per `period` of event time, so a hot counter costs its store
// one write per period instead of one per event. What leaves is written idempotently by the sink
// (sinks/redis/): each delta is named by its writer (this operator and its task's partition) and the
// end of its period, and a store applies a writer's delta only if its end is past the last one it
// applied for that counter.
//
// That makes a replay harmless only if the replay emits the same deltas, so every decision here is a
// function of the task's input, in order, and of the state committed with its offsets:
// - a period [s, s + period) closes when the newest event time this operator has seen (kept in its
//   store, not the task's clock) reaches s + period + grace; it is emitted then, never on a timer;
// - an increment whose period is already closed is not dropped: it joins the oldest open period (so
//   every increment is in exactly one delta, and a key's deltas leave with ascending ends);
// - the DSL refuses this step where its records come from more than one source (the interleaving of
//   two partitions is not fixed): re-key the stream, so it is read from one repartition topic.
// A key's periods closed together leave as one delta. Like Kafka Streams' suppress, the last period
// of a partition is written when later records reach that partition (any key), not when traffic
// stops: idle partitions hold their last period, in the changelogged store, until then.
import type { Operator, OperatorContext, Processor } from "../runtime/processor.ts";
import type { KeyValueStore } from "../state/store.ts";
import { type Rec, type Serde, TopologyError } from "../types.ts";

export interface CoalesceSpec {
  /** The increment a record brings: a safe integer (0 adds nothing). */
  amount: (value: unknown, key: string | null) => number;
  /** Event time per delta, ms. */
  period: number;
  /** How far behind the newest record an increment may be and still join its own period. */
  grace: number;
}

/** One write: `delta` to counter `key`, for the periods [start, end), by `writer`. */
export interface CoalescedDelta {
  key: string;
  delta: number;
  start: number;
  end: number;
  /** This operator and its partition: a store keeps, per counter and writer, the last end applied. */
  writer: string;
}

/** A key's open periods: [start, delta], ascending. */
interface KeyState {
  periods: Array<[number, number]>;
}

interface Meta {
  newest: number;
  /** Periods starting before this are closed. */
  closed: number;
}

const META_KEY = "\u0000coalesce-meta";
const STATE_VERSION = 1;

const stateSerde: Serde<KeyState | Meta> = {
  encode: (v) =>
    Buffer.from(
      JSON.stringify(
        "periods" in v ? { v: STATE_VERSION, p: v.periods } : { v: STATE_VERSION, n: v.newest, c: v.closed },
      ),
    ),
  decode: (b) => {
    const o = JSON.parse(b.toString("utf8")) as { v: number; p?: Array<[number, number]>; n?: number; c?: number };
    if (o.v !== STATE_VERSION) throw new Error(`coalesce state version ${o.v} is not ${STATE_VERSION}`);
    if (o.p) return { periods: o.p };
    return { newest: o.n ?? Number.NEGATIVE_INFINITY, closed: o.c ?? Number.NEGATIVE_INFINITY };
  },
};

export function coalesce(spec: CoalesceSpec, store: string): Operator {
  if (!Number.isInteger(spec.period) || spec.period < 1) {
    throw new TopologyError(`coalesce ${store}: period must be a whole number of ms, got ${spec.period}`);
  }
  if (!Number.isInteger(spec.grace) || spec.grace < 0) {
    throw new TopologyError(`coalesce ${store}: grace must be a whole number of ms, got ${spec.grace}`);
  }
  return {
    name: `coalesce ${store}`,
    stores: [{ name: store, serde: stateSerde as Serde<unknown> }],
    create: (ctx) => new CoalesceProcessor(spec, ctx.store(store), `${store}/${ctx.partition}`, ctx),
  };
}

class CoalesceProcessor implements Processor {
  /** Period start -> keys with an open delta in it (rebuilt from the store after a restore). */
  private readonly open = new Map<number, Set<string>>();
  private meta: Meta;

  constructor(
    private readonly spec: CoalesceSpec,
    private readonly store: KeyValueStore<KeyState | Meta>,
    private readonly writer: string,
    private readonly ctx: OperatorContext,
  ) {
    this.meta = { newest: Number.NEGATIVE_INFINITY, closed: Number.NEGATIVE_INFINITY };
  }

  process(rec: Rec): void {
    const key = rec.key;
    if (key === null) throw new Error("coalesce: a record without a key counts for no counter; key the stream first");
    if (key === META_KEY) throw new Error("coalesce: that key is reserved");
    const amount = this.spec.amount(rec.value, key);
    if (!Number.isSafeInteger(amount)) {
      throw new Error(`coalesce: the amount must be a whole number (a safe integer), got ${String(amount)}`);
    }
    const { period, grace } = this.spec;
    if (rec.ts > this.meta.newest) {
      this.meta.newest = rec.ts;
      const closed = Math.floor((rec.ts - grace) / period) * period;
      if (closed > this.meta.closed) this.close(closed);
    }
    this.store.put(META_KEY, this.meta);
    if (amount === 0) return;
    const own = Math.floor(rec.ts / period) * period;
    const start = Math.max(own, this.meta.closed);
    const st = (this.store.get(key) as KeyState | undefined) ?? { periods: [] };
    const ps = st.periods;
    let i = ps.length - 1;
    while (i >= 0 && (ps[i] as [number, number])[0] > start) i--;
    if (i >= 0 && (ps[i] as [number, number])[0] === start) (ps[i] as [number, number])[1] += amount;
    else ps.splice(i + 1, 0, [start, amount]);
    this.store.put(key, st);
    let keys = this.open.get(start);
    if (!keys) {
      keys = new Set();
      this.open.set(start, keys);
    }
    keys.add(key);
  }

  restored(): void {
    this.open.clear();
    const meta = this.store.get(META_KEY) as Meta | undefined;
    if (meta) this.meta = { ...meta };
    for (const [key, v] of this.store.entries()) {
      if (key === META_KEY) continue;
      for (const [start] of (v as KeyState).periods) {
        let keys = this.open.get(start);
        if (!keys) {
          keys = new Set();
          this.open.set(start, keys);
        }
        keys.add(key);
      }
    }
  }

  openCount(): number {
    return Math.max(0, this.store.size - 1);
  }

  /** Emits every key's periods that start before `closed`, one delta per key. */
  private close(closed: number): void {
    this.meta.closed = closed;
    const starts = [...this.open.keys()].filter((s) => s < closed).sort((a, b) => a - b);
    if (starts.length === 0) return;
    const keys = new Set<string>();
    for (const s of starts) {
      for (const key of this.open.get(s) as Set<string>) keys.add(key);
      this.open.delete(s);
    }
    for (const key of keys) {
      const st = this.store.get(key) as KeyState;
      let delta = 0;
      let first = Number.POSITIVE_INFINITY;
      let last = Number.NEGATIVE_INFINITY;
      let n = 0;
      for (const [start, d] of st.periods) {
        if (start >= closed) break;
        delta += d;
        if (start < first) first = start;
        last = start;
        n++;
      }
      st.periods.splice(0, n);
      if (st.periods.length === 0) this.store.delete(key);
      else this.store.put(key, st);
      if (delta === 0) continue;
      const out: CoalescedDelta = { key, delta, start: first, end: last + this.spec.period, writer: this.writer };
      this.ctx.forward({ key, value: out, ts: last + this.spec.period - 1 });
    }
  }
}
