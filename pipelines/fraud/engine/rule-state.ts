// The state of a stage's rules, all in one changelogged store per stage, each rule in its own part of
// it. A rule's part is named by its state id (its id and its state fingerprint), so a rule kept from
// one snapshot to the next finds its state where it left it, and a rule whose key, window or counted
// events changed starts with none (its old part is deleted when the stage switches).
//
// The rules' state machines are the stream runtime's own operators (rolling sums, distinct counts,
// sequences, absences: stream/windows and stream/operators), each given a `ScopedStore`: a view of the
// stage's store under its rule's prefix, with the TTL and the key bound the operator asked for, kept
// per rule (rules have different windows, the stage's store has one order of updates).
import type { KeyValueStore } from "../../../stream/state/store.ts";
import type { Serde } from "../../../stream/types.ts";
import { type DistinctState, distinctStateSerde } from "../../../stream/windows/distinct-count.ts";
import { type RollingState, rollingStateSerde } from "../../../stream/windows/rolling.ts";

/** Between a state id and a key in the stage's store: never in a rule id (a-z 0-9 . _ -). */
export const SCOPE_SEPARATOR = "\u0001";

/** A rule's part of the stage's store, with its own TTL (event time) and bound, as the operator's KeyValueStore. */
export class ScopedStore<V> {
  /** Last update (event time) per key, in update order. */
  private readonly touched = new Map<string, number>();
  private readonly prefix: string;
  evictions = 0;
  expirations = 0;

  constructor(
    private readonly backing: KeyValueStore<unknown>,
    readonly stateId: string,
    private readonly ttl: number | undefined,
    private readonly maxEntries: number | undefined,
  ) {
    this.prefix = stateId + SCOPE_SEPARATOR;
  }

  get name(): string {
    return this.stateId;
  }

  get size(): number {
    return this.touched.size;
  }

  get(key: string): V | undefined {
    return this.backing.get(this.prefix + key) as V | undefined;
  }

  has(key: string): boolean {
    return this.touched.has(key);
  }

  put(key: string, value: V, ts = 0): void {
    this.backing.put(this.prefix + key, value);
    this.touched.delete(key);
    this.touched.set(key, ts);
    const max = this.maxEntries;
    if (max !== undefined && this.touched.size > max) {
      for (const k of this.touched.keys()) {
        if (this.touched.size <= max) break;
        this.touched.delete(k);
        this.backing.delete(this.prefix + k);
        this.evictions++;
      }
    }
  }

  delete(key: string): void {
    if (!this.touched.delete(key)) return;
    this.backing.delete(this.prefix + key);
  }

  *entries(): IterableIterator<[string, V]> {
    for (const key of this.touched.keys()) yield [key, this.backing.get(this.prefix + key) as V];
  }

  /** Drops keys not updated within the TTL as of event time `now`. */
  expire(now: number): void {
    const ttl = this.ttl;
    if (ttl === undefined) return;
    for (const [key, t] of this.touched) {
      if (t > now - ttl) break;
      this.touched.delete(key);
      this.backing.delete(this.prefix + key);
      this.expirations++;
    }
  }

  /** A key restored from the changelog into the stage's store; its TTL counts from `ts`. */
  adopt(key: string, ts: number): void {
    this.touched.set(key, ts);
  }

  /** Deletes the rule's whole part (the rule left the snapshot, or its state changed meaning). */
  drop(): void {
    for (const key of this.touched.keys()) this.backing.delete(this.prefix + key);
    this.touched.clear();
  }

  /** As the operator sees it: a KeyValueStore (the methods it calls are all here). */
  asStore(): KeyValueStore<V> {
    return this as unknown as KeyValueStore<V>;
  }
}

/** Splits a key of the stage's store into its state id and the rule's key. */
export function splitScopedKey(key: string): { stateId: string; key: string } | null {
  const i = key.indexOf(SCOPE_SEPARATOR);
  return i < 0 ? null : { stateId: key.slice(0, i), key: key.slice(i + 1) };
}

const ROLLING = 1;
const DISTINCT = 2;
const JSON_STATE = 3;

/**
 * The stage store's values: whichever operator's state, behind a tag byte. Rolling sums and distinct
 * counts keep their operators' binary forms; sequences and absences are JSON, as their operators keep
 * them. The tag is chosen from the state's own fields (each operator's state has fields no other has).
 */
export const ruleStateSerde: Serde<unknown> = {
  encode(v) {
    const st = v as Record<string, unknown>;
    if (Array.isArray(st.sums)) return tagged(ROLLING, rollingStateSerde.encode(v as RollingState));
    if (Array.isArray(st.seen)) return tagged(DISTINCT, distinctStateSerde.encode(v as DistinctState));
    return tagged(JSON_STATE, Buffer.from(JSON.stringify(v)));
  },
  decode(b) {
    const body = b.subarray(1);
    switch (b[0]) {
      case ROLLING:
        return rollingStateSerde.decode(body);
      case DISTINCT:
        return distinctStateSerde.decode(body);
      case JSON_STATE:
        return JSON.parse(body.toString("utf8"));
      default:
        throw new Error(`unknown rule state tag ${b[0]}`);
    }
  },
};

function tagged(tag: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(body.length + 1);
  out[0] = tag;
  body.copy(out, 1);
  return out;
}
