// The ClickHouse sink: records -> rows (the caller's `toRow`) -> JSON lines or RowBinary -> one INSERT
// per batch, over HTTP with the official client. Batches go out one at a time and in the order they were
// filled, so rows keep their order; idempotence under replay is the table's job (ReplacingMergeTree
// keyed by what makes a row unique), not the sink's.
//
// A batch is sealed when it holds `batchSize` rows, when its first row is `flushInterval` old, or on
// flush(). A request that fails for a passing reason (network, a busy or restarting server, "too
// many parts") is retried with exponential backoff and jitter. A request ClickHouse refuses because
// of what some rows hold is split until the bad rows stand alone: the others are inserted, in order,
// and the bad ones come back through takeRejected() for the dead-letter topic.
//
// RowBinary (format "RowBinary" with the table's columns) spares the sink JSON.stringify and the
// server the parsing of JSON, in bodies ~40% smaller (bench/results/logs-clickhouse.md). Its rows are
// checked against their column types as they are written (a value that does not fit is rejected at
// once, naming the column), and the columns against the table's before the first INSERT, since
// RowBinary carries no names.
import { Readable } from "node:stream";
import { finished } from "node:stream/promises";
import { type ClickHouseClient, ClickHouseLogLevel, createClient } from "@clickhouse/client";
import pino, { type Logger } from "pino";
import type { Registry } from "prom-client";
import { z } from "zod";
import type { Sink } from "../../stream/sink.ts";
import { type Duration, ms, type Rec } from "../../stream/types.ts";
import { REQUEST_SECONDS_BUCKETS, sinkCounter, sinkGauge, sinkHistogram } from "../metrics.ts";
import { classify, type Failure } from "./errors.ts";
import { type ColumnSpec, ColumnTypeError, columnMismatches, RowBinaryEncoder } from "./rowbinary.ts";
import { ident, sql } from "./sql.ts";

const DurationSchema = z.union([z.number().nonnegative(), z.string()]).transform((d, ctx) => {
  try {
    return ms(d as Duration);
  } catch (e) {
    ctx.addIssue({ code: "custom", message: (e as Error).message });
    return z.NEVER;
  }
});

const Name = z.string().min(1, "a name").max(200);

export const ClickHouseSinkConfigSchema = z
  .strictObject({
    /** Names the sink in logs, metrics and the runtime's records-out counter. */
    name: z.string().min(1).default("clickhouse"),
    url: z.url({ protocol: /^https?$/, error: "an http(s) URL such as http://127.0.0.1:8123" }),
    username: z.string().optional(),
    password: z.string().optional(),
    database: Name,
    table: Name,
    /**
     * JSONEachRow: rows are self-describing and ClickHouse names a bad row's field. RowBinary: less
     * work per row on both sides (no JSON to write or parse); needs `columns`.
     */
    format: z.enum(["JSONEachRow", "RowBinary"]).default("JSONEachRow"),
    /**
     * RowBinary only: the columns rows are written to, in the INSERT's order, with their types as
     * `system.columns` spells them. Columns of the table not listed take their defaults.
     */
    columns: z
      .array(z.strictObject({ name: Name, type: z.string().min(1) }))
      .min(1)
      .optional(),
    /**
     * Rows per INSERT. At most ClickHouse's max_insert_block_size (1,048,576), so one INSERT is one
     * block: it lands whole or not at all, which is what makes retrying and splitting it safe.
     */
    batchSize: z.number().int().min(1).max(1_048_576).default(10_000),
    /** A batch is sent when its first row is this old, even if not full. */
    flushInterval: DurationSchema.default(1000),
    /** Rows written but not acknowledged above which the runtime pauses its sources. Default 5 batches. */
    highWater: z.number().int().min(1).optional(),
    retries: z
      .strictObject({
        /** Retries of one request after its first try; then flush() rejects. */
        max: z.number().int().min(0).default(8),
        initialDelay: DurationSchema.default(200),
        maxDelay: DurationSchema.default(15_000),
      })
      .prefault({}),
    /** The client's request timeout for one INSERT. */
    requestTimeout: DurationSchema.default(60_000),
    /** Settings sent with every INSERT (e.g. `{ input_format_skip_unknown_fields: 1 }`). */
    clickhouseSettings: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
  })
  .superRefine((c, ctx) => {
    if (c.format === "RowBinary" && !c.columns) {
      ctx.addIssue({
        code: "custom",
        path: ["columns"],
        message: "RowBinary needs the table's columns ({ name, type })",
      });
    }
    if (c.format === "JSONEachRow" && c.columns) {
      ctx.addIssue({ code: "custom", path: ["columns"], message: 'only for format "RowBinary"' });
    }
  });

export type ClickHouseSinkConfig = z.input<typeof ClickHouseSinkConfigSchema>;

export interface ClickHouseSinkOptions<V> extends ClickHouseSinkConfig {
  /**
   * A record's row: an object whose keys are the table's columns. Throwing rejects the record. For
   * RowBinary a missing key is the column's type's default ('', 0, [], an Enum's lowest element).
   * The row is read before write() returns and not kept.
   */
  toRow: (rec: Rec<V>) => object;
  logger?: Logger;
  /** Registers the sink's metrics (prefixed weir_clickhouse_sink_) in this prom-client registry. */
  registry?: Registry;
  /** A client to share (then not closed by the sink); by default the sink makes its own from `url`. */
  client?: ClickHouseClient;
}

/** Counters as plain numbers; what /metrics reports is read from them when scraped. */
export interface ClickHouseSinkStats {
  /** Rows ClickHouse acknowledged. */
  rowsWritten: number;
  /** Bytes of request bodies (JSON lines or RowBinary) acknowledged. */
  bytesWritten: number;
  /** Batches acknowledged (a batch split around bad rows counts once). */
  batches: number;
  /** INSERT requests that succeeded (more than batches when batches were split). */
  inserts: number;
  /** Requests tried again after a transient failure. */
  retries: number;
  /** Records refused for good (bad rows, `toRow` failures). */
  rejected: number;
  /** Seconds spent in successful INSERT requests. */
  insertSeconds: number;
}

export interface RejectedRecord<V> {
  rec: Rec<V>;
  reason: string;
  message: string;
}

/** flush() could not get rows acknowledged: retries ran out, or the failure is one no retry fixes. */
export class ClickHouseSinkError extends Error {
  constructor(
    message: string,
    readonly failure: Failure,
    readonly attempts: number,
  ) {
    super(message);
    this.name = "ClickHouseSinkError";
  }
}

/**
 * Rows as JSON lines, UTF-8, written into one buffer as they come: no string outlives its write(),
 * and a request body, or any run of rows when a batch is split, is a slice of the buffer, not a
 * copy. The buffer and the records array are reused once the batch is acknowledged, so a batch
 * allocates nothing per row that the garbage collector would have to move to the old generation.
 */
interface Batch<V> {
  /** Sequence number of the last batch merged into this one. */
  seq: number;
  buf: Buffer;
  /** Bytes of `buf` in use. */
  size: number;
  rows: number;
  /** The records of rows [0, rows); the array may be longer. */
  recs: Array<Rec<V> | undefined>;
  /**
   * ends[i]: the offset just past row i. JSON: found by scanning `buf` for newlines only when the
   * batch is split. RowBinary: recorded as rows are written (a row's bytes have no end mark).
   */
  ends: number[] | null;
}

interface Waiter {
  seq: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

const REJECT_REASON = "sink-rejected";
const MIN_INITIAL_CAPACITY = 64 * 1024;
const MAX_INITIAL_CAPACITY = 64 * 1024 * 1024;
const CAPACITY_STEP = 1024 * 1024;
/** Buffers of acknowledged batches kept for the next ones. */
const SPARE_BUFFERS = 4;

export class ClickHouseSink<V = unknown> implements Sink<V> {
  readonly name: string;
  readonly highWater: number;
  readonly config: z.output<typeof ClickHouseSinkConfigSchema>;
  readonly stats: ClickHouseSinkStats = {
    rowsWritten: 0,
    bytesWritten: 0,
    batches: 0,
    inserts: 0,
    retries: 0,
    rejected: 0,
    insertSeconds: 0,
  };
  private readonly toRow: (rec: Rec<V>) => object;
  private readonly client: ClickHouseClient;
  private readonly ownsClient: boolean;
  private readonly log: Logger;
  private readonly insertQuery: string;
  /** Set for RowBinary. */
  private readonly encoder: RowBinaryEncoder | null = null;
  /** RowBinary: the columns were found to match the table's. */
  private columnsChecked = false;
  private latency: { observe(seconds: number): void } | null = null;

  private capacityHint = MIN_INITIAL_CAPACITY;
  private readonly spare: Array<{ buf: Buffer; recs: Array<Rec<V> | undefined>; ends: number[] | null }> = [];
  private current: Batch<V>;
  private readonly queue: Array<Batch<V>> = [];
  private nextSeq = 1;
  private acked = 0;
  private pendingRows = 0;
  private rejected: Array<RejectedRecord<V>> = [];
  private waiters: Waiter[] = [];
  private pumping: Promise<void> | null = null;
  /** Set when a batch could not be written; sending waits for the next flush() to try again. */
  private failure: ClickHouseSinkError | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private wake: (() => void) | null = null;
  /** Aborts the request in flight when the sink closes. */
  private readonly abort = new AbortController();
  /** Messages of the rows refused while splitting the batch in flight (logged once per batch). */
  private batchRejects: string[] = [];

  constructor(options: ClickHouseSinkOptions<V>) {
    const { toRow, logger, registry, client, ...config } = options;
    if (typeof toRow !== "function") throw new TypeError("ClickHouseSink: toRow must be a function");
    const parsed = ClickHouseSinkConfigSchema.safeParse(config);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${i.path.join(".") || "options"}: ${i.message}`);
      throw new TypeError(`ClickHouseSink: invalid options: ${problems.join("; ")}`);
    }
    this.config = parsed.data;
    this.name = this.config.name;
    this.highWater = this.config.highWater ?? 5 * this.config.batchSize;
    this.toRow = toRow;
    this.log = logger ?? pino({ name: `weir-sink-${this.name}` });
    const target = ident(this.config.database, this.config.table);
    if (this.config.format === "RowBinary") {
      try {
        this.encoder = new RowBinaryEncoder(this.config.columns as ColumnSpec[]);
      } catch (e) {
        if (e instanceof ColumnTypeError) throw new TypeError(`ClickHouseSink: invalid options: columns: ${e.message}`);
        throw e;
      }
      this.insertQuery = `INSERT INTO ${target} ${this.encoder.columnList} FORMAT RowBinary`;
    } else this.insertQuery = `INSERT INTO ${target} FORMAT JSONEachRow`;
    this.ownsClient = !client;
    this.client =
      client ??
      createClient({
        url: this.config.url,
        ...(this.config.username !== undefined ? { username: this.config.username } : {}),
        ...(this.config.password !== undefined ? { password: this.config.password } : {}),
        request_timeout: this.config.requestTimeout,
        max_open_connections: 2,
        // The sink reports failures itself (with pino, once per retry), the client would print each to stderr.
        log: { level: ClickHouseLogLevel.OFF },
      });
    this.current = this.emptyBatch();
    if (registry) this.registerMetrics(registry);
  }

  // --- Sink ---------------------------------------------------------------------------------------

  write(rec: Rec<V>): void {
    if (this.closed) throw new Error(`ClickHouseSink ${this.name}: write after close`);
    if (this.encoder) {
      this.writeRowBinary(rec, this.encoder);
      return;
    }
    let line: string | undefined;
    try {
      line = JSON.stringify(this.toRow(rec));
      if (typeof line !== "string") throw new Error("toRow returned no object");
    } catch (e) {
      this.reject(rec, `toRow failed: ${(e as Error)?.message ?? e}`);
      return;
    }
    const b = this.current;
    // A UTF-16 code unit is at most 3 bytes of UTF-8.
    if (b.size + line.length * 3 + 1 > b.buf.length) this.grow(b, line.length * 3 + 1);
    b.size += b.buf.write(line, b.size);
    b.buf[b.size++] = 0x0a;
    b.recs[b.rows++] = rec;
    this.added(b);
  }

  private writeRowBinary(rec: Rec<V>, encoder: RowBinaryEncoder): void {
    let row: object;
    try {
      row = this.toRow(rec);
      if (row === null || typeof row !== "object") throw new Error("toRow returned no object");
    } catch (e) {
      this.reject(rec, `toRow failed: ${(e as Error)?.message ?? e}`);
      return;
    }
    const b = this.current;
    const problem = encoder.encode(row, b);
    if (problem !== null) {
      this.reject(rec, problem);
      return;
    }
    (b.ends as number[])[b.rows] = b.size;
    b.recs[b.rows++] = rec;
    this.added(b);
  }

  private reject(rec: Rec<V>, message: string): void {
    this.stats.rejected++;
    this.rejected.push({ rec, reason: REJECT_REASON, message });
  }

  private added(b: Batch<V>): void {
    this.pendingRows++;
    if (b.rows >= this.config.batchSize) this.seal();
    else if (b.rows === 1) this.armTimer();
  }

  flush(): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`ClickHouseSink ${this.name}: flush after close`));
    this.seal();
    const last = this.nextSeq - 1;
    if (last <= this.acked) return Promise.resolve();
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ seq: last, resolve, reject }));
    // A flush after a failure is a new attempt: the batch that failed is still first in the queue.
    if (this.failure) {
      this.failure = null;
      this.kick();
    }
    return done;
  }

  pending(): number {
    return this.pendingRows;
  }

  takeRejected(): Array<RejectedRecord<V>> {
    if (this.rejected.length === 0) return [];
    const out = this.rejected;
    this.rejected = [];
    return out;
  }

  /**
   * Stops sending and releases the client. Rows not yet acknowledged are dropped: under the runtime
   * their offsets were never committed, so they are read again. Call flush() first to keep them.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.wake?.();
    this.abort.abort();
    await this.pumping?.catch(() => {});
    const err = new Error(`ClickHouseSink ${this.name}: closed`);
    for (const w of this.waiters.splice(0)) w.reject(err);
    if (this.ownsClient) await this.client.close();
  }

  // --- batching -----------------------------------------------------------------------------------

  private emptyBatch(): Batch<V> {
    // A buffer of an acknowledged batch is used again: fresh memory costs a page fault per 4 KiB.
    const reused = this.spare.pop();
    const buf = reused && reused.buf.length >= this.capacityHint ? reused.buf : Buffer.allocUnsafe(this.capacityHint);
    const recs = reused?.recs ?? new Array<Rec<V> | undefined>(this.config.batchSize);
    const ends = this.encoder ? (reused?.ends ?? new Array<number>(this.config.batchSize)) : null;
    return { seq: 0, buf, size: 0, rows: 0, recs, ends };
  }

  private grow(b: Batch<V>, need: number): void {
    const next = Buffer.allocUnsafe(Math.max(b.buf.length * 2, b.size + need));
    b.buf.copy(next, 0, 0, b.size);
    b.buf = next;
  }

  private armTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    const batch = this.current;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.current === batch && batch.rows > 0) this.seal();
    }, this.config.flushInterval);
    this.timer.unref();
  }

  private seal(): void {
    const b = this.current;
    if (b.rows === 0) return;
    // The next batch starts about as big as this one ended, so it rarely grows.
    // Rounded up to whole MiB, so that batches of about the same size can use each other's buffers.
    const hint = Math.ceil((b.size * 1.1) / CAPACITY_STEP) * CAPACITY_STEP;
    this.capacityHint = Math.min(MAX_INITIAL_CAPACITY, Math.max(MIN_INITIAL_CAPACITY, hint));
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    b.seq = this.nextSeq++;
    this.queue.push(b);
    this.current = this.emptyBatch();
    if (!this.failure) this.kick();
  }

  private kick(): void {
    if (this.pumping || this.closed) return;
    this.pumping = this.pump().finally(() => {
      this.pumping = null;
      // Batches sealed while the last request was in flight, after a failure was cleared by flush().
      if (this.queue.length > 0 && !this.failure && !this.closed) this.kick();
    });
  }

  /** Sends queued batches one at a time, oldest first. Small batches queued behind a slow request go out as one. */
  private async pump(): Promise<void> {
    while (this.queue.length > 0 && !this.failure && !this.closed) {
      const batch = this.take();
      this.batchRejects = [];
      try {
        if (this.encoder && !this.columnsChecked) await this.checkColumns(this.encoder);
        await this.sendRange(batch, 0, batch.rows);
        if (this.batchRejects.length > 0) {
          this.log.warn(
            {
              sink: this.name,
              table: this.config.table,
              rows: batch.rows,
              rejected: this.batchRejects.length,
              error: this.batchRejects[0],
            },
            "ClickHouse refused rows of a batch; the others were inserted, the refused ones go to the dead-letter topic",
          );
        }
      } catch (e) {
        if (this.closed) return;
        // Not acknowledged: put it back in front, tell every flush() waiting, send nothing until the next flush().
        this.queue.unshift(batch);
        this.failure = e instanceof ClickHouseSinkError ? e : this.sinkError(classify(e), 1);
        for (const w of this.waiters.splice(0)) w.reject(this.failure);
        return;
      }
      this.stats.batches++;
      this.pendingRows -= batch.rows;
      if (this.spare.length < SPARE_BUFFERS && batch.recs.length >= this.config.batchSize) {
        batch.recs.fill(undefined, 0, batch.rows); // the acknowledged records are not kept alive
        this.spare.push({ buf: batch.buf, recs: batch.recs, ends: this.encoder ? batch.ends : null });
      }
      this.acked = batch.seq;
      if (this.waiters.length > 0) {
        const still: Waiter[] = [];
        for (const w of this.waiters) {
          if (w.seq <= this.acked) w.resolve();
          else still.push(w);
        }
        this.waiters = still;
      }
    }
  }

  private take(): Batch<V> {
    const first = this.queue.shift() as Batch<V>;
    let next = this.queue[0];
    if (!next || first.rows + next.rows > this.config.batchSize) return first;
    const parts = [first];
    let rows = first.rows;
    while (next && rows + next.rows <= this.config.batchSize) {
      this.queue.shift();
      parts.push(next);
      rows += next.rows;
      next = this.queue[0];
    }
    const merged: Batch<V> = {
      seq: (parts[parts.length - 1] as Batch<V>).seq,
      buf: Buffer.concat(parts.map((p) => p.buf.subarray(0, p.size))),
      size: 0,
      rows: 0,
      recs: new Array<Rec<V> | undefined>(this.config.batchSize),
      ends: this.encoder ? new Array<number>(this.config.batchSize) : null,
    };
    for (const p of parts) {
      for (let i = 0; i < p.rows; i++) {
        if (merged.ends) merged.ends[merged.rows] = merged.size + ((p.ends as number[])[i] as number);
        merged.recs[merged.rows++] = p.recs[i];
      }
      merged.size += p.size;
    }
    return merged;
  }

  // --- inserting ------------------------------------------------------------------------------------

  /**
   * Inserts rows [lo, hi) of a batch. When ClickHouse refuses some row, the range is split so the
   * rows before it, the row itself and the rows after it are tried in that order: the good rows land
   * in their order and the bad ones are rejected with ClickHouse's message. The server usually says
   * which row ("(at row 12)"), which makes the split exact; otherwise it is halved.
   */
  private async sendRange(batch: Batch<V>, lo: number, hi: number): Promise<void> {
    const failure = await this.insertWithRetry(batch, lo, hi);
    if (!failure) return;
    if (hi - lo === 1) {
      this.stats.rejected++;
      this.rejected.push({ rec: batch.recs[lo] as Rec<V>, reason: REJECT_REASON, message: failure.message });
      this.batchRejects.push(failure.message);
      return;
    }
    const k = failure.row;
    if (k !== null && k >= 1 && k <= hi - lo) {
      const bad = lo + k - 1;
      if (bad > lo) await this.sendRange(batch, lo, bad);
      await this.sendRange(batch, bad, bad + 1);
      if (bad + 1 < hi) await this.sendRange(batch, bad + 1, hi);
      return;
    }
    const mid = lo + Math.floor((hi - lo) / 2);
    await this.sendRange(batch, lo, mid);
    await this.sendRange(batch, mid, hi);
  }

  /** One INSERT with retries. Resolves null when written, a Failure of kind "rows" when rows are bad; throws otherwise. */
  private async insertWithRetry(batch: Batch<V>, lo: number, hi: number): Promise<Failure | null> {
    let body: Buffer;
    if (lo === 0 && hi === batch.rows) body = batch.buf.subarray(0, batch.size);
    else {
      const ends = rowEnds(batch);
      body = batch.buf.subarray(lo === 0 ? 0 : (ends[lo - 1] as number), ends[hi - 1] as number);
    }
    return this.retrying("insert", hi - lo, async () => {
      const started = performance.now();
      await this.insert(body);
      const seconds = (performance.now() - started) / 1000;
      this.stats.inserts++;
      this.stats.insertSeconds += seconds;
      this.stats.rowsWritten += hi - lo;
      this.stats.bytesWritten += body.length;
      this.latency?.observe(seconds);
      return null;
    });
  }

  /** Runs a request until it succeeds, retrying transient failures. Resolves a Failure of kind "rows"; throws otherwise. */
  private async retrying<T>(what: string, rows: number, request: () => Promise<T>): Promise<T | Failure> {
    const { max, initialDelay, maxDelay } = this.config.retries;
    for (let attempt = 1; ; attempt++) {
      try {
        return await request();
      } catch (e) {
        if (this.closed) throw e;
        const f = classify(e);
        if (f.kind === "rows") return f;
        if (f.kind === "fatal") throw this.sinkError(f, attempt);
        if (attempt > max) throw this.sinkError(f, attempt);
        const delay = backoff(attempt, initialDelay, maxDelay);
        this.stats.retries++;
        this.log.warn(
          { sink: this.name, table: this.config.table, rows, attempt, delayMs: delay, error: f.message },
          `${what} failed; retrying`,
        );
        await this.sleep(delay);
        if (this.closed) throw e;
      }
    }
  }

  /**
   * RowBinary carries no column names: a body written for other column types than the table's would
   * be read as other values, or refused as a whole. So the table's columns are read once, before the
   * first INSERT, and a difference stops the sink (fatal) until someone fixes the columns or the table.
   */
  private async checkColumns(encoder: RowBinaryEncoder): Promise<void> {
    const { database, table } = this.config;
    const found = await this.retrying("reading the table's columns", 0, async () => {
      const rs = await this.client.query({
        query: sql`SELECT name, type FROM system.columns WHERE database = ${database} AND table = ${table}`,
        format: "JSONEachRow",
        abort_signal: this.abort.signal,
      });
      return (await rs.json()) as ColumnSpec[];
    });
    if (!Array.isArray(found)) throw this.sinkError({ ...found, kind: "fatal" }, 1);
    const problems =
      found.length === 0
        ? [`the table does not exist (create it: weir migrate)`]
        : columnMismatches(encoder.columns, found);
    if (problems.length > 0) {
      const message = `the columns given for RowBinary do not match the table: ${problems.join("; ")}. Give the table's types in the sink's columns, or migrate the table`;
      throw this.sinkError({ kind: "fatal", code: null, message, row: null }, 1);
    }
    this.columnsChecked = true;
  }

  private async insert(body: Buffer): Promise<void> {
    const res = await this.client.exec({
      query: this.insertQuery,
      values: Readable.from([body], { objectMode: false }),
      clickhouse_settings: this.config.clickhouseSettings,
      abort_signal: this.abort.signal,
      // The body's length is known: sent as Content-Length, ClickHouse reads it without chunk framing.
      http_headers: { "Content-Length": String(body.length) },
    });
    // The answer to an INSERT is empty; reading it to the end returns the socket to the pool.
    res.stream.resume();
    await finished(res.stream);
  }

  private sinkError(f: Failure, attempts: number): ClickHouseSinkError {
    const what =
      f.kind === "fatal"
        ? "ClickHouse refused the insert"
        : `the insert failed ${attempts} time${attempts === 1 ? "" : "s"}`;
    return new ClickHouseSinkError(
      `ClickHouseSink ${this.name}: ${what} into ${this.config.database}.${this.config.table}: ${f.message}`,
      f,
      attempts,
    );
  }

  private sleep(delay: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = null;
        resolve();
      }, delay);
      this.wake = () => {
        clearTimeout(t);
        this.wake = null;
        resolve();
      };
    });
  }

  // --- metrics ----------------------------------------------------------------------------------------

  /** Adds weir_clickhouse_sink_* metrics, labelled with this sink's name and table, to a prom-client registry. */
  registerMetrics(registry: Registry): void {
    const labels = { sink: this.name, table: `${this.config.database}.${this.config.table}` };
    const stats = this.stats;
    const counter = (name: string, help: string, read: () => number) => sinkCounter(registry, name, help, labels, read);
    counter("weir_clickhouse_sink_rows_written_total", "Rows ClickHouse acknowledged.", () => stats.rowsWritten);
    counter(
      "weir_clickhouse_sink_bytes_written_total",
      "Bytes of request bodies (JSON lines or RowBinary) acknowledged.",
      () => stats.bytesWritten,
    );
    counter("weir_clickhouse_sink_batches_total", "Batches acknowledged.", () => stats.batches);
    counter("weir_clickhouse_sink_retries_total", "INSERT requests retried after a failure.", () => stats.retries);
    counter("weir_clickhouse_sink_rejected_total", "Records refused for good (dead-lettered).", () => stats.rejected);
    sinkGauge(
      registry,
      "weir_clickhouse_sink_pending_rows",
      "Rows written to the sink and not yet acknowledged.",
      labels,
      () => this.pending(),
    );
    this.latency = sinkHistogram(
      registry,
      "weir_clickhouse_sink_insert_seconds",
      "Duration of successful INSERT requests.",
      labels,
      REQUEST_SECONDS_BUCKETS,
    );
  }
}

/** Where each row of a batch ends. JSON.stringify escapes control characters, so a newline byte only ever ends a row. */
function rowEnds<V>(batch: Batch<V>): number[] {
  if (batch.ends) return batch.ends;
  const ends: number[] = [];
  for (let at = batch.buf.indexOf(0x0a, 0); at >= 0 && at < batch.size; at = batch.buf.indexOf(0x0a, at + 1)) {
    ends.push(at + 1);
  }
  if (ends.length !== batch.rows) throw new Error(`batch of ${batch.rows} rows has ${ends.length} line ends`);
  batch.ends = ends;
  return ends;
}

/** Exponential backoff with equal jitter: half the step is fixed, half random, so retries of many workers spread out. */
export function backoff(attempt: number, initial: number, max: number, random: () => number = Math.random): number {
  const step = Math.min(max, initial * 2 ** (attempt - 1));
  return Math.round(step / 2 + random() * (step / 2));
}
