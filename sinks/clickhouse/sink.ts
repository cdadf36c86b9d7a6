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
// The batching, the flush barrier, retries and close are the batching sink's (sinks/batching/), set to
// one request at a time with the batches queued behind it merged. Here: the encoding, the INSERT, and
// the splitting of a batch around the rows ClickHouse refuses.
//
// RowBinary (format "RowBinary" with the table's columns) spares the sink JSON.stringify and the
// server the parsing of JSON, in bodies ~40% smaller (bench/results/logs-clickhouse.md). Its rows are
// checked against their column types as they are written (a value that does not fit is rejected at
// once, naming the column), and the columns against the table's before the first INSERT, since
// RowBinary carries no names.
import { Readable } from "node:stream";
import { finished } from "node:stream/promises";
import { type ClickHouseClient, ClickHouseLogLevel, createClient } from "@clickhouse/client";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { z } from "zod";
import type { Rec } from "../../stream/types.ts";
import { type Batch, reserve } from "../batching/batch.ts";
import { DurationSchema, parseOptions, RetriesSchema } from "../batching/options.ts";
import { BatchingSink, BatchingSinkError, type RejectedRecord, type SinkMetricSet } from "../batching/sink.ts";
import { classify, type Failure } from "./errors.ts";
import { type ColumnSpec, ColumnTypeError, columnMismatches, RowBinaryEncoder } from "./rowbinary.ts";
import { ident, sql } from "./sql.ts";

export type { RejectedRecord } from "../batching/sink.ts";

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
    /** Retries of a batch's INSERT after its first try; then flush() rejects. */
    retries: RetriesSchema,
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

/** flush() could not get rows acknowledged: retries ran out, or the failure is one no retry fixes. */
export class ClickHouseSinkError extends BatchingSinkError<Failure> {}

const REJECT_REASON = "sink-rejected";

export class ClickHouseSink<V = unknown> extends BatchingSink<V, RejectedRecord<V>, Failure> {
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
  private readonly insertQuery: string;
  /** Set for RowBinary. */
  private readonly encoder: RowBinaryEncoder | null;
  /** RowBinary: the columns were found to match the table's. */
  private columnsChecked = false;

  constructor(options: ClickHouseSinkOptions<V>) {
    const { toRow, logger, registry, client, ...rest } = options;
    if (typeof toRow !== "function") throw new TypeError("ClickHouseSink: toRow must be a function");
    const config = parseOptions("ClickHouseSink", ClickHouseSinkConfigSchema, rest);
    let encoder: RowBinaryEncoder | null = null;
    if (config.format === "RowBinary") {
      try {
        encoder = new RowBinaryEncoder(config.columns as ColumnSpec[]);
      } catch (e) {
        if (e instanceof ColumnTypeError) throw new TypeError(`ClickHouseSink: invalid options: columns: ${e.message}`);
        throw e;
      }
    }
    super({
      kind: "ClickHouseSink",
      name: config.name,
      maxRecords: config.batchSize,
      flushInterval: config.flushInterval,
      concurrency: 1,
      merge: true,
      highWater: config.highWater ?? 5 * config.batchSize,
      retries: config.retries,
      logger,
    });
    this.config = config;
    this.toRow = toRow;
    this.encoder = encoder;
    const target = ident(config.database, config.table);
    this.insertQuery = encoder
      ? `INSERT INTO ${target} ${encoder.columnList} FORMAT RowBinary`
      : `INSERT INTO ${target} FORMAT JSONEachRow`;
    this.ownsClient = !client;
    this.client =
      client ??
      createClient({
        url: config.url,
        ...(config.username !== undefined ? { username: config.username } : {}),
        ...(config.password !== undefined ? { password: config.password } : {}),
        request_timeout: config.requestTimeout,
        max_open_connections: 2,
        // The sink reports failures itself (with pino, once per retry), the client would print each to stderr.
        log: { level: ClickHouseLogLevel.OFF },
      });
    if (registry) this.registerMetrics(registry);
  }

  // --- encoding -------------------------------------------------------------------------------------

  protected encode(rec: Rec<V>, b: Batch<V>): boolean {
    if (this.encoder) return this.encodeRowBinary(rec, b, this.encoder);
    let line: string | undefined;
    try {
      line = JSON.stringify(this.toRow(rec));
      if (typeof line !== "string") throw new Error("toRow returned no object");
    } catch (e) {
      this.reject(rec, `toRow failed: ${(e as Error)?.message ?? e}`);
      return false;
    }
    // A UTF-16 code unit is at most 3 bytes of UTF-8.
    reserve(b, line.length * 3 + 1);
    b.size += b.buf.write(line, b.size);
    b.buf[b.size++] = 0x0a;
    return true;
  }

  private encodeRowBinary(rec: Rec<V>, b: Batch<V>, encoder: RowBinaryEncoder): boolean {
    let row: object;
    try {
      row = this.toRow(rec);
      if (row === null || typeof row !== "object") throw new Error("toRow returned no object");
    } catch (e) {
      this.reject(rec, `toRow failed: ${(e as Error)?.message ?? e}`);
      return false;
    }
    const problem = encoder.encode(row, b);
    if (problem === null) return true;
    this.reject(rec, problem);
    return false;
  }

  private reject(rec: Rec<V>, message: string): void {
    this.stats.rejected++;
    this.refuse({ rec, reason: REJECT_REASON, message });
  }

  // --- inserting ------------------------------------------------------------------------------------

  /** Inserts the rows of a batch not acknowledged yet (after a failure, those after the ones that landed). */
  protected async send(b: Batch<V>): Promise<void> {
    if (this.encoder && !this.columnsChecked) await this.checkColumns(this.encoder);
    const refused: string[] = [];
    await this.insertRange(b, b.firstUnsettled(), b.count, refused);
    this.stats.batches++;
    if (refused.length > 0) {
      this.log.warn(
        { sink: this.name, table: this.config.table, rows: b.count, rejected: refused.length, error: refused[0] },
        "ClickHouse refused rows of a batch; the others were inserted, the refused ones go to the dead-letter topic",
      );
    }
  }

  /**
   * Inserts rows [lo, hi) of a batch. When ClickHouse refuses some row, the range is split so the
   * rows before it, the row itself and the rows after it are tried in that order: the good rows land
   * in their order and the bad ones are rejected with ClickHouse's message. The server usually says
   * which row ("(at row 12)"), which makes the split exact; otherwise it is halved. Any other failure
   * is thrown, with the rows before it settled.
   */
  private async insertRange(b: Batch<V>, lo: number, hi: number, refused: string[]): Promise<void> {
    const body = b.bytes(lo, hi);
    const started = performance.now();
    try {
      await this.insert(body);
    } catch (e) {
      const failure = classify(e);
      if (failure.kind !== "rows") throw e;
      if (hi - lo === 1) {
        const rec = this.settle(b, lo);
        if (rec) this.reject(rec, failure.message);
        refused.push(failure.message);
        return;
      }
      const k = failure.row;
      if (k !== null && k >= 1 && k <= hi - lo) {
        const bad = lo + k - 1;
        if (bad > lo) await this.insertRange(b, lo, bad, refused);
        await this.insertRange(b, bad, bad + 1, refused);
        if (bad + 1 < hi) await this.insertRange(b, bad + 1, hi, refused);
        return;
      }
      const mid = lo + Math.floor((hi - lo) / 2);
      await this.insertRange(b, lo, mid, refused);
      await this.insertRange(b, mid, hi, refused);
      return;
    }
    const seconds = this.requestSeconds(started);
    this.stats.inserts++;
    this.stats.insertSeconds += seconds;
    this.stats.rowsWritten += hi - lo;
    this.stats.bytesWritten += body.length;
    this.settleRange(b, lo, hi);
  }

  /**
   * RowBinary carries no column names: a body written for other column types than the table's would
   * be read as other values, or refused as a whole. So the table's columns are read once, before the
   * first INSERT, and a difference stops the sink (fatal) until someone fixes the columns or the table.
   */
  private async checkColumns(encoder: RowBinaryEncoder): Promise<void> {
    const { database, table } = this.config;
    const rs = await this.client.query({
      query: sql`SELECT name, type FROM system.columns WHERE database = ${database} AND table = ${table}`,
      format: "JSONEachRow",
      abort_signal: this.signal,
    });
    const found = (await rs.json()) as ColumnSpec[];
    const problems =
      found.length === 0
        ? [`the table does not exist (create it: weir migrate)`]
        : columnMismatches(encoder.columns, found);
    if (problems.length > 0) {
      const message = `the columns given for RowBinary do not match the table: ${problems.join("; ")}. Give the table's types in the sink's columns, or migrate the table`;
      throw this.failed({ kind: "fatal", code: null, message, row: null });
    }
    this.columnsChecked = true;
  }

  private async insert(body: Buffer): Promise<void> {
    const res = await this.client.exec({
      query: this.insertQuery,
      values: Readable.from([body], { objectMode: false }),
      clickhouse_settings: this.config.clickhouseSettings,
      abort_signal: this.signal,
      // The body's length is known: sent as Content-Length, ClickHouse reads it without chunk framing.
      http_headers: { "Content-Length": String(body.length) },
    });
    // The answer to an INSERT is empty; reading it to the end returns the socket to the pool.
    res.stream.resume();
    await finished(res.stream);
  }

  protected classify(error: unknown): Failure {
    return classify(error);
  }

  protected giveUp(f: Failure, attempts: number): ClickHouseSinkError {
    // Rows refused outside an INSERT (reading the columns) are no rows to split: the sink stops.
    const failure: Failure = f.kind === "rows" ? { ...f, kind: "fatal" } : f;
    const what =
      failure.kind === "fatal"
        ? "ClickHouse refused the insert"
        : `the insert failed ${attempts} time${attempts === 1 ? "" : "s"} (retries.max ${this.retriesMax} ran out; without it the sink waits for ClickHouse)`;
    return new ClickHouseSinkError(
      `ClickHouseSink ${this.name}: ${what} into ${this.config.database}.${this.config.table}: ${failure.message}`,
      failure,
      attempts,
    );
  }

  protected override retried(): void {
    this.stats.retries++;
  }

  protected override async release(): Promise<void> {
    if (this.ownsClient) await this.client.close();
  }

  // --- metrics ------------------------------------------------------------------------------------

  /** weir_clickhouse_sink_* metrics, labelled with this sink's name and table. */
  protected metricSet(): SinkMetricSet {
    const stats = this.stats;
    return {
      labels: { sink: this.name, table: `${this.config.database}.${this.config.table}` },
      counters: [
        ["weir_clickhouse_sink_rows_written_total", "Rows ClickHouse acknowledged.", () => stats.rowsWritten],
        [
          "weir_clickhouse_sink_bytes_written_total",
          "Bytes of request bodies (JSON lines or RowBinary) acknowledged.",
          () => stats.bytesWritten,
        ],
        ["weir_clickhouse_sink_batches_total", "Batches acknowledged.", () => stats.batches],
        ["weir_clickhouse_sink_retries_total", "INSERT requests retried after a failure.", () => stats.retries],
        ["weir_clickhouse_sink_rejected_total", "Records refused for good (dead-lettered).", () => stats.rejected],
      ],
      pending: ["weir_clickhouse_sink_pending_rows", "Rows written to the sink and not yet acknowledged."],
      failing: [
        "weir_clickhouse_sink_failing",
        "INSERT tries failed in a row (ClickHouse unreachable, restarting or busy); 0 while it answers.",
      ],
      latency: ["weir_clickhouse_sink_insert_seconds", "Duration of successful INSERT requests."],
    };
  }
}
