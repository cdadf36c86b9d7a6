// Sequences (complex-event processing, Elastic EQL's `sequence by k with maxspan=T [A] [B]`): per key,
// records matching step 1, then step 2, ..., in event-time order, the last within `maxspan` of the
// first. The completing record emits the match at once. A later step may test what earlier steps
// captured (`gift.amount >= recharge.amount * 0.9`): the state keeps only those captures, never the
// records.
//
// A record advances every partial match of its key whose next step it matches (each partial
// independently), and starts a new one if it matches the first step. A key keeps at most
// `maxPending` partial matches (the oldest are dropped, counted); a partial whose first record is
// more than maxspan + grace behind the watermark can never complete and is dropped; a key without
// partials goes from the store, which also expires keys in event time (TTL maxspan + grace) and
// bounds them (`maxKeys`, least recently updated evicted, counted). A record more than grace behind
// the watermark is late.
import type { Operator, OperatorContext, Processor } from "../runtime/processor.ts";
import type { KeyValueStore } from "../state/store.ts";
import { json, type Rec, type Serde, TopologyError } from "../types.ts";

export interface SequenceStep<V> {
  name: string;
  /** Whether the record is this step, given what the earlier steps captured (in step order). */
  matches(value: V, key: string | null, earlier: readonly unknown[]): boolean;
  /** What the state keeps of a record that is this step (JSON-serialisable), for later steps and the match. */
  capture(value: V): unknown;
}

export interface SequenceSpec<V> {
  steps: ReadonlyArray<SequenceStep<V>>;
  /** The last step at most this long after the first (ms). */
  maxspan: number;
  grace: number;
  /** Partial matches kept per key. */
  maxPending: number;
  maxKeys?: number;
}

/** What a sequence emits when a record completes it. */
export interface SequenceMatch<V = unknown> {
  /** Each step: its name, time and what was captured of its record. */
  steps: Array<{ name: string; ts: number; captured: unknown }>;
  /** The completing record. */
  record: V;
  /** Time of the first step. */
  start: number;
}

interface Partial {
  /** Time of each step matched so far. */
  ts: number[];
  captured: unknown[];
}

export interface SequenceState {
  partials: Partial[];
}

export const MAX_SEQUENCE_PENDING = 1000;

/** A sequence per key in the store `store`. */
export function sequence<V>(spec: SequenceSpec<V>, store: string): Operator {
  if (spec.steps.length < 2) throw new TopologyError(`sequence ${store}: a sequence has at least two steps`);
  if (!(spec.maxspan > 0)) throw new TopologyError(`sequence ${store}: maxspan must be positive, got ${spec.maxspan}`);
  if (!Number.isInteger(spec.maxPending) || spec.maxPending < 1 || spec.maxPending > MAX_SEQUENCE_PENDING)
    throw new TopologyError(
      `sequence ${store}: maxPending must be a whole number from 1 to ${MAX_SEQUENCE_PENDING}, got ${spec.maxPending}`,
    );
  return {
    name: `sequence ${store}`,
    stores: [
      {
        name: store,
        serde: json<SequenceState>() as Serde<unknown>,
        ttl: spec.maxspan + spec.grace,
        ...(spec.maxKeys !== undefined ? { maxEntries: spec.maxKeys } : {}),
      },
    ],
    create: (ctx) => new SequenceProcessor(spec, ctx.store(store), ctx),
  };
}

class SequenceProcessor<V> implements Processor {
  private pendingDrops = 0;
  private expiredPartials = 0;

  constructor(
    private readonly spec: SequenceSpec<V>,
    private readonly store: KeyValueStore<SequenceState>,
    private readonly ctx: OperatorContext,
  ) {}

  process(rec: Rec): void {
    const t = rec.ts;
    const { steps, maxspan, grace } = this.spec;
    if (t + grace <= this.ctx.watermark) {
      this.ctx.late(rec);
      return;
    }
    const value = rec.value as V;
    const id = rec.key ?? "\u0000";
    const st = this.store.get(id) ?? { partials: [] };
    const horizon = this.ctx.watermark - grace - maxspan;
    const kept: Partial[] = [];
    let changed = false;
    for (const p of st.partials) {
      const start = p.ts[0] as number;
      if (start < horizon) {
        this.expiredPartials++;
        changed = true;
        continue;
      }
      const last = p.ts[p.ts.length - 1] as number;
      const next = steps[p.ts.length] as SequenceStep<V>;
      if (t >= last && t - start <= maxspan && next.matches(value, rec.key, p.captured)) {
        const captured = next.capture(value);
        changed = true;
        if (p.ts.length + 1 === steps.length) {
          this.emit(rec, p, t, captured);
          continue; // complete: the partial is done
        }
        kept.push({ ts: [...p.ts, t], captured: [...p.captured, captured] });
        continue;
      }
      kept.push(p);
    }
    const first = steps[0] as SequenceStep<V>;
    if (first.matches(value, rec.key, [])) {
      kept.push({ ts: [t], captured: [first.capture(value)] });
      changed = true;
    }
    if (!changed) return;
    // Partials in the order they started, so the oldest is dropped first.
    kept.sort((a, b) => (a.ts[0] as number) - (b.ts[0] as number));
    if (kept.length > this.spec.maxPending) {
      this.pendingDrops += kept.length - this.spec.maxPending;
      kept.splice(0, kept.length - this.spec.maxPending);
    }
    if (kept.length === 0) {
      if (this.store.has(id)) this.store.delete(id);
      return;
    }
    st.partials = kept;
    // The key lives (TTL) from its partials' newest step, not from records that changed nothing.
    this.store.put(id, st, Math.max(...kept.map((p) => p.ts[p.ts.length - 1] as number)));
  }

  private emit(rec: Rec, p: Partial, t: number, captured: unknown): void {
    const names = this.spec.steps.map((s) => s.name);
    const match: SequenceMatch = {
      steps: [
        ...p.ts.map((ts, i) => ({ name: names[i] as string, ts, captured: p.captured[i] })),
        { name: names[names.length - 1] as string, ts: t, captured },
      ],
      record: rec.value,
      start: p.ts[0] as number,
    };
    this.ctx.forward({ key: rec.key, value: match, ts: t });
  }

  onWatermark(watermark: number): void {
    this.store.expire(watermark);
  }

  openCount(): number {
    return this.store.size;
  }

  dropped(): Record<string, number> {
    return { "pending-cap": this.pendingDrops, "past-maxspan": this.expiredPartials };
  }
}
