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
   * Per key: its value, its last update (event time) and its key in the stage's store (made once per
   * key). The values live here; the stage's store, which only the checkpoint and the restore read,
   * gets what changed at each checkpoint (`flush`): a key updated many times between two checkpoints
   * is written to it once, and an update costs no lookup in that store (it holds every rule's keys).
   * After a restore, `forget` and `adopt` rebuild the view from the store.
   */
  private readonly byKey = new Map<string, ScopedEntry<V>>();
  /**
   * The entries in update order (least recently updated first), linked through the entries
   * themselves: an update moves its entry to the end without touching the map (a delete and a set
   * per update would churn the map's table).
   */
  private head: ScopedEntry<V> | null = null;
  private tail: ScopedEntry<V> | null = null;
  /** Entries updated since the last flush, and the stage-store keys of the ones deleted since. */
  private readonly updated: ScopedEntry<V>[] = [];
  private readonly deleted: string[] = [];
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
    return this.byKey.size;
  }

  get(key: string): V | undefined {
    return this.byKey.get(key)?.value;
  }

  has(key: string): boolean {
    return this.byKey.has(key);
  }

  put(key: string, value: V, ts = 0): void {
    let entry = this.byKey.get(key);
    if (entry === undefined) {
      entry = { key, full: this.prefix + key, value, ts, prev: null, next: null, updated: false, gone: false };
      this.byKey.set(key, entry);
    } else {
      entry.value = value;
      entry.ts = ts;
      this.unlink(entry);
    }
    this.append(entry);
    if (!entry.updated) {
      entry.updated = true;
      this.updated.push(entry);
    }
    const max = this.maxEntries;
    if (max !== undefined)
      while (this.byKey.size > max && this.head !== null) {
        this.remove(this.head);
        this.evictions++;
      }
  }

  delete(key: string): void {
    const entry = this.byKey.get(key);
    if (entry !== undefined) this.remove(entry);
  }

  *entries(): IterableIterator<[string, V]> {
    for (let e = this.head; e !== null; e = e.next) yield [e.key, e.value];
  }

  /** Drops keys not updated within the TTL as of event time `now`. */
  expire(now: number): void {
    const ttl = this.ttl;
    if (ttl === undefined) return;
    while (this.head !== null && this.head.ts <= now - ttl) {
      this.remove(this.head);
      this.expirations++;
    }
  }

  /**
   * Writes what changed since the last flush to the stage's store: deletions first (a key deleted and
   * then written again ends written), then each updated key's current value once.
   */
  flush(): void {
    for (const full of this.deleted) this.backing.delete(full);
    this.deleted.length = 0;
    for (const e of this.updated) {
      e.updated = false;
      if (!e.gone) this.backing.put(e.full, e.value);
    }
    this.updated.length = 0;
  }

  /** A key restored from the changelog into the stage's store; its TTL counts from `ts`. */
  adopt(key: string, ts: number): void {
    const full = this.prefix + key;
    const value = this.backing.get(full) as V;
    const had = this.byKey.get(key);
    if (had) {
      had.value = value;
      had.ts = ts;
      return;
    }
    const entry: ScopedEntry<V> = { key, full, value, ts, prev: null, next: null, updated: false, gone: false };
    this.byKey.set(key, entry);
    this.append(entry);
  }

  /** Forgets every key, leaving the stage's store as it is (before its restored keys are adopted). */
  forget(): void {
    this.updated.length = 0;
    this.deleted.length = 0;
    this.byKey.clear();
    this.head = null;
    this.tail = null;
  }

  /** Deletes the rule's whole part (the rule left the snapshot, or its state changed meaning). */
  drop(): void {
    for (const e of this.byKey.values()) this.backing.delete(e.full);
    for (const full of this.deleted) this.backing.delete(full);
    this.updated.length = 0;
    this.deleted.length = 0;
    this.byKey.clear();
    this.head = null;
    this.tail = null;
  }

  /** As the operator sees it: a KeyValueStore (the methods it calls are all here). */
  asStore(): KeyValueStore<V> {
    return this as unknown as KeyValueStore<V>;
  }

  private remove(entry: ScopedEntry<V>): void {
    this.unlink(entry);
    this.byKey.delete(entry.key);
    entry.gone = true;
    this.deleted.push(entry.full);
  }

  private unlink(e: ScopedEntry<V>): void {
    if (e.prev) e.prev.next = e.next;
    else this.head = e.next;
    if (e.next) e.next.prev = e.prev;
    else this.tail = e.prev;
    e.prev = null;
    e.next = null;
  }

  private append(e: ScopedEntry<V>): void {
    e.prev = this.tail;
    if (this.tail) this.tail.next = e;
    else this.head = e;
    this.tail = e;
  }
}

interface ScopedEntry<V> {
  key: string;
  /** The key in the stage's store (state id, separator, key). */
  full: string;
  value: V;
  ts: number;
  prev: ScopedEntry<V> | null;
  next: ScopedEntry<V> | null;
  /** In `updated`, not yet flushed. */
  updated: boolean;
  /** Deleted (evicted, expired) from the view: a flush must not write it back. */
  gone: boolean;
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
