// Aggregated writes inside a Node service, without Kafka (`weir/counters`): increments are summed per
// key in memory and written to Redis as one delta per key every `period`, on close(), and early when
// `maxKeys` keys are waiting. The weaker guarantee, against the pipeline's coalesce step:
// - what is in memory is lost if the process dies before its flush: up to one period of increments
//   (more while Redis is unreachable, see below); the pipeline loses nothing, its state is in Kafka;
// - a flush that fails is tried again with the same sequence number, so a retry after a timeout that
//   did reach Redis is not counted twice (counters.ts); flushes apply in order, one at a time;
// - while a flush cannot get through, increments keep accumulating in the next one, up to `maxKeys`
//   distinct keys; increments of further keys are refused (add() returns false) and counted in
//   `dropped`, so a Redis outage costs bounded memory and is visible.
import { hostname } from "node:os";
import { CounterStore, type CounterStoreOptions, MAX_COUNTER_KEY_BYTES } from "./counters.ts";

export interface CounterBufferOptions extends CounterStoreOptions {
  /** How often pending increments are written, ms. Default 1000. */
  period?: number;
  /** Distinct keys waiting at most (default 100,000): reached, a flush starts at once. */
  maxKeys?: number;
  /**
   * This process's writer id, unique among the processes writing the same counters at the same time.
   * Default: host, pid and a random suffix.
   */
  writer?: string;
  /** Told about flushes that failed (they are retried); default: nothing. */
  onError?: (e: Error) => void;
}

export interface CounterBufferStats {
  /** Increments accepted by add(). */
  added: number;
  /** Increments refused because maxKeys keys were waiting on a flush that could not get through. */
  dropped: number;
  /** Deltas Redis applied, and flushes that reached it. */
  applied: number;
  flushes: number;
  /** Flush attempts that failed (each retried). */
  failures: number;
}

export class CounterBuffer {
  readonly store: CounterStore;
  readonly writer: string;
  readonly stats: CounterBufferStats = { added: 0, dropped: 0, applied: 0, flushes: 0, failures: 0 };
  private readonly period: number;
  private readonly maxKeys: number;
  private readonly onError: (e: Error) => void;
  private pending = new Map<string, number>();
  /** The flush being written (kept, with its sequence, until Redis has it). */
  private inFlight: { seq: number; deltas: Map<string, number> } | null = null;
  private flushing: Promise<void> | null = null;
  private lastSeq = 0;
  private timer: NodeJS.Timeout;
  private closed = false;

  constructor(options: CounterBufferOptions) {
    this.store = new CounterStore(options);
    this.period = options.period ?? 1000;
    this.maxKeys = options.maxKeys ?? 100_000;
    this.writer = options.writer ?? `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
    this.onError = options.onError ?? (() => {});
    this.timer = setInterval(() => void this.flush().catch(() => {}), this.period);
    this.timer.unref();
  }

  /** Adds `by` (a safe integer) to counter `key`; false when refused (see the class comment). */
  add(key: string, by = 1): boolean {
    if (this.closed) throw new Error("CounterBuffer: add after close");
    if (!Number.isSafeInteger(by)) throw new TypeError(`CounterBuffer: ${by} is not a safe integer`);
    if (Buffer.byteLength(key) > MAX_COUNTER_KEY_BYTES) {
      throw new RangeError(`CounterBuffer: counter key longer than ${MAX_COUNTER_KEY_BYTES} bytes`);
    }
    const had = this.pending.get(key);
    if (had === undefined && this.pending.size >= this.maxKeys) {
      if (this.inFlight === null) void this.flush().catch(() => {});
      if (this.pending.size >= this.maxKeys) {
        this.stats.dropped++;
        return false;
      }
    }
    this.pending.set(key, (had ?? 0) + by);
    this.stats.added++;
    return true;
  }

  /** Increments accepted and not yet in Redis. */
  get waiting(): number {
    return this.pending.size + (this.inFlight?.deltas.size ?? 0);
  }

  /**
   * Writes what is pending (after the flush in flight, if any). Resolves when Redis has it; rejects
   * when this try failed (the deltas stay, and the next flush tries them again first).
   */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing.then(() => this.flush());
    if (this.inFlight === null) {
      if (this.pending.size === 0) return Promise.resolve();
      // The sequence grows with the clock and never repeats within a writer, across restarts too.
      this.lastSeq = Math.max(this.lastSeq + 1, Date.now() * 1000);
      this.inFlight = { seq: this.lastSeq, deltas: this.pending };
      this.pending = new Map();
    }
    const batch = this.inFlight;
    this.flushing = this.write(batch).finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  /** Flushes what is pending (trying `attempts` times) and closes the connection. */
  async close(attempts = 5): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    try {
      for (let i = 1; ; i++) {
        try {
          await this.flush();
          if (this.waiting === 0) break;
        } catch (e) {
          if (i >= attempts) throw e;
          await new Promise((r) => setTimeout(r, Math.min(200 * 2 ** i, 3000)));
        }
      }
    } finally {
      await this.store.close();
    }
  }

  private async write(batch: { seq: number; deltas: Map<string, number> }): Promise<void> {
    const writes = [...batch.deltas].map(([key, delta]) => ({ key, delta, writer: this.writer, seq: batch.seq }));
    try {
      const outcomes = await this.store.apply(writes);
      const failed = outcomes.find((o): o is { error: Error } => typeof o === "object");
      if (failed) throw failed.error;
      this.stats.applied += outcomes.filter((o) => o === "applied").length;
      this.stats.flushes++;
      this.inFlight = null;
    } catch (e) {
      this.stats.failures++;
      this.onError(e as Error);
      throw e;
    }
  }
}
