// The batching sink: what every sink that sends records to a store in batches does the same way,
// whatever the store. A store's sink extends it with its encoding (a record -> bytes appended to the
// batch's buffer) and its request (a batch -> one or more requests, each record of it settled:
// acknowledged or refused), and says what a failure means; the base does the rest:
//
// - batches: a batch is sealed when it holds `maxRecords` records or `maxBytes` bytes, on flush(), or
//   when its first record is `flushInterval` old. Buffers and arrays of settled batches are used again.
// - concurrency and order: up to `concurrency` batches in flight. With 1, batches go out one at a time
//   in the order they were filled, and a batch that failed stays first in line: records keep their
//   order. With more, batches start in order and settle in any order. With `merge`, batches waiting
//   for a request are sent as one while they fit the limits (small batches sealed behind a slow
//   request); without it, a batch whose interval passes while every request slot is busy keeps filling
//   instead of queueing a small body, and goes when a slot frees.
// - the flush barrier: flush() resolves when every record written before it is settled (acknowledged,
//   or refused and waiting in takeRejected()), however the batches before it finish, and rejects when
//   one of them cannot be delivered. Then nothing is sent until the next flush(), which tries again,
//   the failed batch first, with its settled records left out.
// - retries: a try that fails for a passing reason (the store's `classify` says `transient`) is tried
//   again after an exponential backoff with jitter (or the server's Retry-After), capped at
//   `retries.maxDelay`: for as long as it takes by default, or `retries.max` times when that is set.
// - outage: while tries fail in a row, health() says so (unhealthy from the third, with how long, how
//   many records wait and the last error) and the `failing` gauge counts them; both clear when the
//   store answers again.
// - backpressure: pending() counts records written and not settled; the runtime pauses its sources
//   while it is above `highWater`.
// - metrics: the store's counters, the pending gauge and the request latency histogram, shared with
//   the other sinks of its kind in a registry (metrics.ts).
// - close(): stops sending, aborts the requests in flight, rejects waiting flushes.
//
// Shaped after Quix Streams' BatchingSink (the store implements only its write of a batch) and
// Vector's sinks on its shared batcher (the ClickHouse sink is its encoder and its service).
import pino, { type Logger } from "pino";
import type { Registry } from "prom-client";
import type { Sink } from "../../stream/sink.ts";
import type { Rec } from "../../stream/types.ts";
import { REQUEST_SECONDS_BUCKETS, sinkCounter, sinkGauge, sinkHistogram } from "../metrics.ts";
import { retryDelay } from "./backoff.ts";
import { Batch } from "./batch.ts";
import type { Retries } from "./options.ts";

export interface BatchingSettings {
  /** The class, naming the sink in errors: `ClickHouseSink`. */
  kind: string;
  /** Names the sink in logs, metrics and errors. */
  name: string;
  /** A batch is sealed once it holds this many records (and a merged batch holds at most this many). */
  maxRecords?: number;
  /** ...or this many bytes. */
  maxBytes?: number;
  /** A batch is sent when its first record is this old (ms), even if not full. */
  flushInterval: number;
  /** Batches in flight at once. 1 keeps the batches in the order they were filled. */
  concurrency: number;
  /** Batches waiting for a request go out as one while they fit `maxRecords` and `maxBytes`. */
  merge: boolean;
  /** Records written and not settled above which the runtime pauses its sources. */
  highWater: number;
  retries: Retries;
  /** The size of every batch's buffer. Without it, a new buffer is about as big as the last batch sealed. */
  bufferBytes?: number;
  logger?: Logger | undefined;
}

/** What a failed try means, as the store classifies it. */
export interface SendFailure {
  /** `transient`: the same try may succeed later. Any other kind gives up. */
  kind: string;
  message: string;
  /** How long the server asked to wait (Retry-After), in ms. */
  retryAfterMs?: number | null;
}

export interface RejectedRecord<V> {
  rec: Rec<V>;
  /** The dead letter's reason. */
  reason: string;
  message: string;
}

/** A batch could not be delivered: retries ran out, or the failure is one no retry fixes. */
export class BatchingSinkError<F extends SendFailure = SendFailure> extends Error {
  constructor(
    message: string,
    readonly failure: F,
    readonly attempts: number,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** A store's metrics: prefixed with its kind, labelled with its name (and what else tells its sinks apart). */
export interface SinkMetricSet {
  labels: Record<string, string>;
  /** Counters read from the store's stats when scraped. */
  counters: Array<[name: string, help: string, read: () => number]>;
  /** The gauge of pending(). */
  pending: [name: string, help: string];
  /** The gauge of failed tries in a row (health().failing): 0 while the store answers. */
  failing: [name: string, help: string];
  /** The histogram of request durations, observed by requestSeconds(). */
  latency: [name: string, help: string];
}

/** Where the sink stands with its store, for the worker's /health. */
export interface BatchingSinkHealth {
  /** False from the FAILING_UNHEALTHY-th failed try in a row, and once a batch could not be delivered. */
  ok: boolean;
  /** Tries failed in a row (across batches); 0 once one succeeds. */
  failing: number;
  /** How long tries have been failing in a row, in ms (0 when they are not). */
  failingMs: number;
  /** Records written and not settled. */
  pending: number;
  /** "ok", or what is wrong, in one line. */
  detail: string;
}

/** Failed tries in a row from which the sink reports itself unhealthy (a blip of one or two is not an outage). */
export const FAILING_UNHEALTHY = 3;

interface Waiter {
  seq: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

const MiB = 1024 * 1024;
const MIN_CAPACITY = 64 * 1024;
const MAX_CAPACITY = 64 * MiB;
/** Buffers of settled batches kept for the next ones (fresh memory costs a page fault per 4 KiB). */
const SPARE_BATCHES = 4;

export abstract class BatchingSink<
  V,
  R extends RejectedRecord<V> = RejectedRecord<V>,
  F extends SendFailure = SendFailure,
> implements Sink<V>
{
  readonly name: string;
  readonly highWater: number;
  protected readonly log: Logger;
  private readonly kind: string;
  private readonly maxRecords: number;
  private readonly maxBytes: number;
  private readonly flushInterval: number;
  private readonly concurrency: number;
  private readonly merge: boolean;
  private readonly retries: Retries;
  private readonly bufferBytes: number | undefined;
  private latency: { observe(seconds: number): void } | null = null;

  private capacityHint = MIN_CAPACITY;
  private readonly spare: Array<Batch<V>> = [];
  private current: Batch<V>;
  /** Sealed batches waiting for a request slot, oldest first (a batch that failed goes back in front). */
  private readonly queue: Array<Batch<V>> = [];
  /** Sequence numbers of sealed batches not settled yet, ascending. */
  private readonly outstanding: number[] = [];
  private nextSeq = 1;
  private inflight = 0;
  private readonly requests = new Set<Promise<void>>();
  private pendingRecords = 0;
  private rejected: R[] = [];
  private waiters: Waiter[] = [];
  /** Set when a batch could not be delivered; sending waits for the next flush() to try again. */
  private failure: Error | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** The current batch is flushInterval old but every request slot was busy: it goes when one frees. */
  private overdue = false;
  private closed = false;
  private readonly sleepers = new Set<() => void>();
  /** Aborts the requests in flight when the sink closes. */
  private readonly abort = new AbortController();
  /** Tries failed in a row, since failingSince (Date.now()), the last one with lastError. */
  private failingTries = 0;
  private failingSince = 0;
  private lastError = "";

  constructor(settings: BatchingSettings) {
    this.kind = settings.kind;
    this.name = settings.name;
    this.highWater = settings.highWater;
    this.maxRecords = settings.maxRecords ?? Number.POSITIVE_INFINITY;
    this.maxBytes = settings.maxBytes ?? Number.POSITIVE_INFINITY;
    this.flushInterval = settings.flushInterval;
    this.concurrency = settings.concurrency;
    this.merge = settings.merge;
    this.retries = settings.retries;
    this.bufferBytes = settings.bufferBytes;
    this.log = settings.logger ?? pino({ name: `weir-sink-${this.name}` });
    this.current = this.emptyBatch(0);
  }

  // --- what a store supplies ------------------------------------------------------------------------

  /**
   * Appends a record's bytes at `out.size` (room is made with reserve()). Returns false, having
   * written nothing that counts, when the record cannot be encoded: the store refuses it (refuse()).
   * The hot path: no work here that can be done once.
   */
  protected abstract encode(rec: Rec<V>, out: Batch<V>): boolean;

  /**
   * One try of a batch: sends its records not settled yet, settles those the store answered for
   * (settle(), settleRange(), with refuse() for the ones it refused), and throws when the try failed
   * (classify() says whether it is tried again). Resolving means the store has every record of the
   * batch not settled otherwise. After a failure the same batch comes again, with what was settled.
   */
  protected abstract send(batch: Batch<V>): Promise<void>;

  /** What an error thrown by send() means. Errors made by failed() are not asked about. */
  protected abstract classify(error: unknown): F;

  /** The error flush() rejects with when a batch cannot be delivered after `attempts` tries. */
  protected abstract giveUp(failure: F, attempts: number, records: number): Error;

  protected abstract metricSet(): SinkMetricSet;

  /** Counts a retry of `records` records (the store's stats). */
  protected retried(_records: number): void {}

  /** Releases what the store holds (its client) when the sink closes. */
  protected async release(): Promise<void> {}

  // --- what a store uses ----------------------------------------------------------------------------

  /** `retries.max`, or undefined: retried without limit. For the store's giveUp() message. */
  protected get retriesMax(): number | undefined {
    return this.retries.max;
  }

  /** Aborted when the sink closes: give it to each request. */
  protected get signal(): AbortSignal {
    return this.abort.signal;
  }

  /** A failed try, as send() throws it when the failure is not an error of the store's client. */
  protected failed(failure: F): BatchingSinkError<F> {
    return new BatchingSinkError(failure.message, failure, 0);
  }

  /** Record i of a batch is acknowledged or refused. Returns the record, or undefined if it was settled before. */
  protected settle(batch: Batch<V>, i: number): Rec<V> | undefined {
    if (batch.settled[i]) return undefined;
    const rec = batch.recs[i];
    batch.settled[i] = 1;
    batch.recs[i] = undefined; // not kept alive by the batch
    batch.left--;
    this.pendingRecords--;
    return rec;
  }

  /** Records [lo, hi) of a batch are acknowledged. */
  protected settleRange(batch: Batch<V>, lo: number, hi: number): void {
    for (let i = lo; i < hi; i++) this.settle(batch, i);
  }

  /** A record refused for good, for takeRejected(). */
  protected refuse(rejected: R): void {
    this.rejected.push(rejected);
  }

  /** Seconds since `started` (performance.now()), observed in the latency histogram. */
  protected requestSeconds(started: number): number {
    const seconds = (performance.now() - started) / 1000;
    this.latency?.observe(seconds);
    return seconds;
  }

  // --- Sink -----------------------------------------------------------------------------------------

  write(rec: Rec<V>): void {
    if (this.closed) throw new Error(`${this.kind} ${this.name}: write after close`);
    const b = this.current;
    if (!this.encode(rec, b)) return;
    b.ends[b.count] = b.size;
    b.recs[b.count++] = rec;
    this.pendingRecords++;
    if (b.count >= this.maxRecords || b.size >= this.maxBytes) this.seal();
    else if (b.count === 1) this.armTimer();
  }

  flush(): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`${this.kind} ${this.name}: flush after close`));
    this.seal();
    const last = this.nextSeq - 1;
    if (this.outstanding.length === 0 || (this.outstanding[0] as number) > last) return Promise.resolve();
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ seq: last, resolve, reject }));
    // A flush after a failure is a new attempt: the batch that failed is back at the front of the queue.
    if (this.failure) {
      this.failure = null;
      this.kick();
    }
    return done;
  }

  pending(): number {
    return this.pendingRecords;
  }

  /** Whether the store takes what the sink sends: the worker's /health shows it. */
  health(now = Date.now()): BatchingSinkHealth {
    const failingMs = this.failingTries > 0 ? now - this.failingSince : 0;
    const base = { failing: this.failingTries, failingMs, pending: this.pendingRecords };
    if (this.failure) {
      return { ...base, ok: false, detail: `gave up (flush() rejected): ${this.failure.message}` };
    }
    if (this.failingTries < FAILING_UNHEALTHY) return { ...base, ok: true, detail: "ok" };
    const { max } = this.retries;
    const budget = max === undefined ? "retried without limit" : `retries.max ${max}`;
    return {
      ...base,
      ok: false,
      detail: `${this.failingTries} tries failed in a row for ${(failingMs / 1000).toFixed(1)} s, ${this.pendingRecords} records wait (${budget}); last error: ${this.lastError}`,
    };
  }

  takeRejected(): R[] {
    if (this.rejected.length === 0) return [];
    const out = this.rejected;
    this.rejected = [];
    return out;
  }

  /**
   * Stops sending and releases the store's client. Records not yet settled are dropped: under the
   * runtime their offsets were never committed, so they are read again. Call flush() first to keep them.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const wake of [...this.sleepers]) wake();
    this.abort.abort();
    await Promise.allSettled([...this.requests]);
    const err = new Error(`${this.kind} ${this.name}: closed`);
    for (const w of this.waiters.splice(0)) w.reject(err);
    await this.release();
  }

  /**
   * Adds the store's metrics, labelled with this sink, to a prom-client registry (other sinks of the
   * kind in the same registry share the metrics, each under its own labels).
   */
  registerMetrics(registry: Registry): void {
    const { labels, counters, pending, failing, latency } = this.metricSet();
    for (const [name, help, read] of counters) sinkCounter(registry, name, help, labels, read);
    sinkGauge(registry, pending[0], pending[1], labels, () => this.pending());
    sinkGauge(registry, failing[0], failing[1], labels, () => this.failingTries);
    this.latency = sinkHistogram(registry, latency[0], latency[1], labels, REQUEST_SECONDS_BUCKETS);
  }

  // --- batching -------------------------------------------------------------------------------------

  private emptyBatch(minBytes: number): Batch<V> {
    const want = Math.max(minBytes, this.bufferBytes ?? this.capacityHint);
    const b = this.spare.pop();
    if (!b) {
      const slots = Number.isFinite(this.maxRecords) ? this.maxRecords : 0;
      return new Batch<V>(Buffer.allocUnsafe(want), new Array(slots), new Array(slots));
    }
    if (b.buf.length < want) b.buf = Buffer.allocUnsafe(want);
    b.seq = 0;
    b.size = 0;
    b.count = 0;
    b.left = 0;
    return b;
  }

  /** Keeps a batch no request uses any more for the next ones. */
  private retire(b: Batch<V>): void {
    if (this.spare.length >= SPARE_BATCHES) return;
    b.recs.fill(undefined, 0, b.count); // the records are not kept alive
    this.spare.push(b);
  }

  private armTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    const batch = this.current;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.current !== batch || batch.count === 0) return;
      // Sealed behind busy slots, a batch waits in the queue: where batches merge it joins those
      // behind it; where they do not, it keeps filling instead, so small bodies do not queue.
      if (!this.merge && (this.inflight >= this.concurrency || this.queue.length > 0)) this.overdue = true;
      else this.seal();
    }, this.flushInterval);
    this.timer.unref();
  }

  private seal(): void {
    const b = this.current;
    if (b.count === 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.overdue = false;
    if (this.bufferBytes === undefined) {
      // The next batch starts about as big as this one ended, so it rarely grows. Rounded up to whole
      // MiB, so that batches of about the same size can use each other's buffers.
      const hint = Math.ceil((b.size * 1.1) / MiB) * MiB;
      this.capacityHint = Math.min(MAX_CAPACITY, Math.max(MIN_CAPACITY, hint));
    }
    b.seq = this.nextSeq++;
    if (b.settled.length < b.count) b.settled = new Uint8Array(b.count);
    else b.settled.fill(0, 0, b.count);
    b.left = b.count;
    this.outstanding.push(b.seq);
    this.queue.push(b);
    this.current = this.emptyBatch(0);
    if (!this.failure) this.kick();
  }

  private kick(): void {
    while (!this.failure && !this.closed && this.inflight < this.concurrency && this.queue.length > 0) {
      this.start(this.take());
    }
  }

  /** The next batch to send: the first in line, with the ones behind it that fit when batches merge. */
  private take(): Batch<V> {
    const first = this.queue.shift() as Batch<V>;
    if (!this.merge) return first;
    let n = 0;
    let count = first.count;
    let size = first.size;
    for (let next = this.queue[0]; next; next = this.queue[++n]) {
      if (count + next.count > this.maxRecords || size + next.size > this.maxBytes) break;
      count += next.count;
      size += next.size;
    }
    return n === 0 ? first : this.merged([first, ...this.queue.splice(0, n)], count, size);
  }

  private merged(parts: Array<Batch<V>>, count: number, size: number): Batch<V> {
    const m = this.emptyBatch(size);
    m.settled = new Uint8Array(count);
    for (const p of parts) {
      p.buf.copy(m.buf, m.size, 0, p.size);
      for (let i = 0; i < p.count; i++) {
        m.recs[m.count] = p.recs[i];
        m.ends[m.count] = m.size + (p.ends[i] as number);
        m.settled[m.count++] = p.settled[i] as number;
      }
      m.size += p.size;
      m.left += p.left;
      m.seq = p.seq;
      this.retire(p);
    }
    // The merged batch stands for its parts under the last one's number.
    for (const p of parts) if (p.seq !== m.seq) this.outstanding.splice(this.outstanding.indexOf(p.seq), 1);
    return m;
  }

  private start(b: Batch<V>): void {
    this.inflight++;
    const request: Promise<void> = this.deliver(b).then(
      () => {
        this.inflight--;
        this.requests.delete(request);
        this.delivered(b);
        // A batch that waited for a free slot goes now.
        if (this.overdue && this.queue.length === 0) this.seal();
        this.kick();
      },
      (e: unknown) => {
        this.inflight--;
        this.requests.delete(request);
        if (this.closed) return;
        // Not delivered: back in front, every flush() waiting is told, nothing is sent until the next flush().
        this.queue.unshift(b);
        const err = e as Error;
        this.log.error(
          { sink: this.name, records: b.left, err: err.message },
          "a batch could not be delivered; flush() rejects",
        );
        this.failure ??= err;
        for (const w of this.waiters.splice(0)) w.reject(err);
      },
    );
    this.requests.add(request);
  }

  private delivered(b: Batch<V>): void {
    this.settleRange(b, 0, b.count);
    const at = this.outstanding.indexOf(b.seq);
    if (at >= 0) this.outstanding.splice(at, 1);
    this.retire(b);
    if (this.waiters.length > 0) {
      const lowest = this.outstanding.length > 0 ? (this.outstanding[0] as number) : Number.POSITIVE_INFINITY;
      const still: Waiter[] = [];
      for (const w of this.waiters) {
        if (w.seq < lowest) w.resolve();
        else still.push(w);
      }
      this.waiters = still;
    }
  }

  // --- retries --------------------------------------------------------------------------------------

  /**
   * Tries a batch until it is delivered, retrying transient failures (without limit unless
   * `retries.max` is set); throws the store's error otherwise.
   */
  private async deliver(b: Batch<V>): Promise<void> {
    const { max, initialDelay, maxDelay } = this.retries;
    const limit = max ?? Number.POSITIVE_INFINITY;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.send(b);
        this.answered();
        return;
      } catch (e) {
        if (this.closed) throw e;
        const f = e instanceof BatchingSinkError ? (e.failure as F) : this.classify(e);
        this.failedTry(f.message);
        if (f.kind !== "transient" || attempt > limit) throw this.giveUp(f, attempt, b.left);
        // 2^attempt overflows to Infinity after ~1,000 tries, which maxDelay caps like any other step.
        const delay = retryDelay(attempt, initialDelay, maxDelay, f.retryAfterMs ?? null);
        this.retried(b.left);
        this.log.warn(
          {
            sink: this.name,
            records: b.left,
            attempt,
            ...(max !== undefined ? { retriesMax: max } : {}),
            failingMs: Date.now() - this.failingSince,
            delayMs: delay,
            error: f.message,
          },
          "a request failed; retrying",
        );
        await this.sleep(delay);
        if (this.closed) throw e;
      }
    }
  }

  private failedTry(message: string): void {
    if (this.failingTries++ === 0) this.failingSince = Date.now();
    this.lastError = message;
  }

  /** A try succeeded: the store answers (again). */
  private answered(): void {
    if (this.failingTries === 0) return;
    if (this.failingTries >= FAILING_UNHEALTHY) {
      this.log.info(
        { sink: this.name, failedTries: this.failingTries, failingMs: Date.now() - this.failingSince },
        "the store answers again",
      );
    }
    this.failingTries = 0;
    this.failingSince = 0;
    this.lastError = "";
  }

  private sleep(delay: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(t);
        this.sleepers.delete(wake);
        resolve();
      };
      const t = setTimeout(wake, delay);
      this.sleepers.add(wake);
    });
  }
}
