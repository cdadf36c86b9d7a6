// A task's keyed state: a Map in update order, optionally bounded (least recently updated entries are
// evicted first) and with a TTL in event time. Changes are only remembered as dirty keys; at each
// checkpoint the runtime encodes their current values (or a tombstone) into the changelog, so a key
// updated a thousand times between checkpoints costs one changelog record.
import type { Serde } from "../types.ts";

export interface StoreConfig<V> {
  name: string;
  serde: Serde<V>;
  ttl?: number;
  maxEntries?: number;
}

export interface ChangelogEntry {
  key: string;
  value: Buffer | null;
}

export class KeyValueStore<V> {
  private readonly map = new Map<string, V>();
  /** Last update (event time) per key, in update order; only kept when ttl or maxEntries is set. */
  private readonly touched = new Map<string, number>();
  private readonly dirty = new Set<string>();
  private readonly ordered: boolean;
  evictions = 0;
  expirations = 0;

  constructor(readonly config: StoreConfig<V>) {
    this.ordered = config.ttl !== undefined || config.maxEntries !== undefined;
  }

  get name(): string {
    return this.config.name;
  }

  get size(): number {
    return this.map.size;
  }

  get(key: string): V | undefined {
    return this.map.get(key);
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  put(key: string, value: V, ts = 0): void {
    this.map.set(key, value);
    this.dirty.add(key);
    if (this.ordered) {
      this.touched.delete(key);
      this.touched.set(key, ts);
      const max = this.config.maxEntries;
      if (max !== undefined && this.map.size > max) this.evictOldest(this.map.size - max);
    }
  }

  delete(key: string): void {
    if (!this.map.delete(key)) return;
    this.dirty.add(key);
    if (this.ordered) this.touched.delete(key);
  }

  entries(): IterableIterator<[string, V]> {
    return this.map.entries();
  }

  /** Drops entries not updated within the TTL, as of event time `now`. */
  expire(now: number): void {
    const ttl = this.config.ttl;
    if (ttl === undefined) return;
    for (const [key, t] of this.touched) {
      if (t > now - ttl) break;
      this.touched.delete(key);
      this.map.delete(key);
      this.dirty.add(key);
      this.expirations++;
    }
  }

  private evictOldest(n: number): void {
    for (const key of this.touched.keys()) {
      if (n-- <= 0) break;
      this.touched.delete(key);
      this.map.delete(key);
      this.dirty.add(key);
      this.evictions++;
    }
  }

  get dirtyCount(): number {
    return this.dirty.size;
  }

  /** The changes since the last call, encoded for the changelog; clears the dirty set. */
  takeChanges(): ChangelogEntry[] {
    const out: ChangelogEntry[] = [];
    for (const key of this.dirty) {
      const v = this.map.get(key);
      out.push({ key, value: v === undefined && !this.map.has(key) ? null : this.config.serde.encode(v as V) });
    }
    this.dirty.clear();
    return out;
  }

  /** Applies one changelog record while restoring. */
  restore(key: string, value: Buffer | null): void {
    if (value === null) {
      this.map.delete(key);
      if (this.ordered) this.touched.delete(key);
      return;
    }
    const v = this.config.serde.decode(value);
    this.map.set(key, v);
    if (this.ordered) {
      this.touched.delete(key);
      this.touched.set(key, Number.NEGATIVE_INFINITY);
    }
  }

  /** After a restore, TTLs count from the restoring task's stream time. */
  restampAll(ts: number): void {
    if (!this.ordered) return;
    for (const key of this.touched.keys()) this.touched.set(key, ts);
  }

  clear(): void {
    this.map.clear();
    this.touched.clear();
    this.dirty.clear();
  }
}
