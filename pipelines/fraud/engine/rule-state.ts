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
  /**
   * Per key, in update order: its last update (event time) and its key in the stage's store, made
   * once per key (a prefix and a key joined for every read would be a new string to hash each time).
   */
  private readonly touched = new Map<string, ScopedEntry>();
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

  // Every key of the rule's part is in `touched` (put, adopt), so a key not there has no value.
  get(key: string): V | undefined {
    const entry = this.touched.get(key);
    return entry === undefined ? undefined : (this.backing.get(entry.full) as V | undefined);
  }

  has(key: string): boolean {
    return this.touched.has(key);
  }

  put(key: string, value: V, ts = 0): void {
    let entry = this.touched.get(key);
    if (entry === undefined) entry = { ts, full: this.prefix + key };
    else {
      this.touched.delete(key);
      entry.ts = ts;
    }
    this.touched.set(key, entry);
    this.backing.put(entry.full, value);
    const max = this.maxEntries;
    if (max !== undefined && this.touched.size > max) {
      for (const [k, e] of this.touched) {
        if (this.touched.size <= max) break;
        this.touched.delete(k);
        this.backing.delete(e.full);
        this.evictions++;
      }
    }
  }

  delete(key: string): void {
    const entry = this.touched.get(key);
    if (entry === undefined) return;
    this.touched.delete(key);
    this.backing.delete(entry.full);
  }

  *entries(): IterableIterator<[string, V]> {
    for (const [key, e] of this.touched) yield [key, this.backing.get(e.full) as V];
  }

  /** Drops keys not updated within the TTL as of event time `now`. */
  expire(now: number): void {
    const ttl = this.ttl;
    if (ttl === undefined) return;
    for (const [key, e] of this.touched) {
      if (e.ts > now - ttl) break;
      this.touched.delete(key);
      this.backing.delete(e.full);
      this.expirations++;
    }
  }

  /** A key restored from the changelog into the stage's store; its TTL counts from `ts`. */
  adopt(key: string, ts: number): void {
    this.touched.set(key, { ts, full: this.prefix + key });
  }

  /** Deletes the rule's whole part (the rule left the snapshot, or its state changed meaning). */
  drop(): void {
    for (const e of this.touched.values()) this.backing.delete(e.full);
    this.touched.clear();
  }

  /** As the operator sees it: a KeyValueStore (the methods it calls are all here). */
  asStore(): KeyValueStore<V> {
    return this as unknown as KeyValueStore<V>;
  }
}

interface ScopedEntry {
  ts: number;
  full: string;
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
