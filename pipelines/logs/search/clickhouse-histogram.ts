// Histograms from ClickHouse's logs table (infra/clickhouse/002_logs.sql), for windows Elasticsearch
// no longer holds. The pipeline keeps a month of lines in ClickHouse and a week in Elasticsearch (the
// defaults of pipelines/logs/logs.yaml), so "errors per hour over the last 30 days" can only be
// answered there; and counting over a long window is what a column store does best: it reads two
// columns (ts_ms and what the query tests) of the partitions in the window.
//
// The same query language, compiled to a WHERE clause (pipelines/logs/query/clickhouse.ts); buckets
// are multiples of the interval since the epoch, as Elasticsearch's date_histogram makes them, so the
// two stores' buckets line up. ClickHouse 18.16 has no toStartOfInterval: intDiv(ts_ms, n) * n.
//
// Replays: the table is a ReplacingMergeTree, and a line written twice (a crash between the insert
// and the offset commit) is counted twice until ClickHouse merges the parts that hold it (usually
// within minutes). Reading with FINAL would count it once, at the price of merging a month of parts
// on every request; the histogram does not.
import { type ClickHouseClient, ClickHouseLogLevel, createClient } from "@clickhouse/client";
import { classify } from "../../../sinks/clickhouse/errors.ts";
import { ident, quoteString } from "../../../sinks/clickhouse/sql.ts";
import type { PiiMasker } from "../pii/masker.ts";
import { LOG_SCHEMA, type LogSchema } from "../query/fields.ts";
import { SearchError } from "./errors.ts";
import { bucketStarts, histogramInterval } from "./interval.ts";
import { type HistogramRequest, type HistogramResult, resolveLineFilter } from "./search.ts";

export type HistogramStore = "elasticsearch" | "clickhouse";

/**
 * Which store answers a histogram: the one asked for, or with `auto` Elasticsearch (the store search
 * reads, so the counts are the lines search shows) unless the window starts before Elasticsearch's
 * retention, whose daily indices are gone, and ClickHouse is there to ask.
 */
export function chooseHistogramStore(
  asked: HistogramStore | "auto",
  from: number,
  now: number,
  elasticsearchRetentionMs: number,
  clickhouse: boolean,
): HistogramStore {
  if (asked !== "auto") return asked;
  return clickhouse && from < now - elasticsearchRetentionMs ? "clickhouse" : "elasticsearch";
}

export interface ClickHouseLogHistogramOptions {
  /** ClickHouse's HTTP interface. */
  url: string;
  database: string;
  table: string;
  pii?: PiiMasker;
  schema?: LogSchema;
}

export class ClickHouseLogHistogram {
  readonly url: string;
  private readonly client: ClickHouseClient;
  private readonly options: ClickHouseLogHistogramOptions;
  private readonly serviceColumn: string;

  constructor(options: ClickHouseLogHistogramOptions) {
    this.options = options;
    this.url = options.url;
    // Failures are explained once, below; the client's own error log would repeat them.
    this.client = createClient({ url: options.url, log: { level: ClickHouseLogLevel.OFF } });
    const service = (options.schema ?? LOG_SCHEMA).fields.find((f) => f.name === "service");
    if (!service) throw new Error('log schema: no field "service"');
    this.serviceColumn = service.ch;
  }

  /** The SQL of a request (every value quoted, names from the schema); exported for tests. */
  sql(req: HistogramRequest, intervalMs: number): string {
    const f = resolveLineFilter(req, { pii: this.options.pii, schema: this.options.schema });
    const from = Math.floor(req.from);
    const to = Math.floor(req.to);
    const where = [
      // ts (seconds) prunes partitions and the primary key; ts_ms is the exact window.
      `ts >= toDateTime(${Math.floor(from / 1000)})`,
      `ts <= toDateTime(${Math.floor(to / 1000)})`,
      `ts_ms >= ${from}`,
      `ts_ms <= ${to}`,
    ];
    if (f.query) where.push(f.query.clickhouse);
    if (f.services) where.push(`${this.serviceColumn} IN (${f.services.map(quoteString).join(", ")})`);
    if (f.levels) where.push(f.levels.clickhouse);
    return (
      `SELECT intDiv(ts_ms, ${intervalMs}) * ${intervalMs} AS start, count() AS count ` +
      `FROM ${ident(this.options.database, this.options.table)} WHERE ${where.join(" AND ")} ` +
      "GROUP BY start ORDER BY start"
    );
  }

  async histogram(req: HistogramRequest): Promise<HistogramResult> {
    const intervalMs = histogramInterval(req.from, req.to, req.intervalMs, req.bars);
    const query = this.sql(req, intervalMs);
    let rows: Array<{ start: string | number; count: string | number }>;
    try {
      rows = await (await this.client.query({ query, format: "JSONEachRow" })).json();
    } catch (e) {
      throw this.explain(e);
    }
    const counts = new Map<number, number>();
    for (const r of rows) counts.set(Number(r.start), Number(r.count));
    const buckets = bucketStarts(req.from, req.to, intervalMs).map((start) => ({
      start,
      count: counts.get(start) ?? 0,
    }));
    return {
      store: "clickhouse",
      from: req.from,
      to: req.to,
      intervalMs,
      total: buckets.reduce((n, b) => n + b.count, 0),
      buckets,
    };
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  private explain(e: unknown): Error {
    const failure = classify(e);
    const table = `${this.options.database}.${this.options.table}`;
    if (failure.code === 81 || failure.code === 60) {
      return new SearchError(
        "unavailable",
        `ClickHouse at ${this.url} has no logs table ${table} (${failure.message})`,
        "create it with `weir migrate` (or `weir stack up`), or name the database with WEIR_LOGS_DATABASE",
      );
    }
    if (failure.code === null) {
      const code = (e as { code?: unknown }).code;
      if (typeof code === "string" && /^E[A-Z]+$/.test(code)) {
        return new SearchError(
          "unavailable",
          `cannot reach ClickHouse at ${this.url} (${code})`,
          "start the local stack (`weir stack up`), or set WEIR_CLICKHOUSE_URL; --store elasticsearch asks Elasticsearch instead",
        );
      }
    }
    if (failure.code !== null) {
      return new SearchError("unavailable", `ClickHouse at ${this.url} failed the histogram: ${failure.message}`);
    }
    return e instanceof Error ? e : new Error(String(e));
  }
}
