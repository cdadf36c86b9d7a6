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
//
// Every query runs as the read-only search user (pipelines/logs/search/clickhouse-search-user.ts) and carries the
// search profile's limits: max_ast_depth, max_ast_elements, max_query_size, max_execution_time,
// max_result_rows, readonly. Its SQL is refused here first when it is longer than max_query_size.
import { type ClickHouseClient, ClickHouseLogLevel, type ClickHouseSettings, createClient } from "@clickhouse/client";
import { classify } from "../../../sinks/clickhouse/errors.ts";
import { ident, quoteString } from "../../../sinks/clickhouse/sql.ts";
import type { PiiMasker } from "../pii/masker.ts";
import { LOG_SCHEMA, type LogSchema } from "../query/fields.ts";
import { SEARCH_QUERY_SETTINGS, SEARCH_USER } from "./clickhouse-search-user.ts";
import { SearchError } from "./errors.ts";
import { bucketStarts, histogramInterval } from "./interval.ts";
import { checkWindow, DEFAULT_SEARCH_LIMITS, SearchLimitError, type SearchLimits } from "./limits.ts";
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
  /** The read-only user searches run as; default weir_search. */
  user?: string;
  /** Its password; default none (the local stack's user is loopback-only). */
  password?: string;
  limits?: SearchLimits;
  /** The client to use instead of one made from `url`, `user` and `password` (tests watch what is sent). */
  client?: ClickHouseClient;
}

/** A client of ClickHouse's HTTP interface as the search user, sending no setting but the profile's. */
export function searchClickHouseClient(url: string, user = SEARCH_USER, password = ""): ClickHouseClient {
  return createClient({
    url,
    username: user,
    password,
    // The profile is readonly=1: the client may send no setting of its own (enable_http_compression).
    compression: { request: false, response: false },
    request_timeout: (SEARCH_QUERY_SETTINGS.max_execution_time + 10) * 1000,
    // Failures are explained once, below; the client's own error log would repeat them.
    log: { level: ClickHouseLogLevel.OFF },
  });
}

/** The search profile's settings as the client sends them (integers of 64 bits as strings). */
const QUERY_SETTINGS = Object.fromEntries(
  Object.entries(SEARCH_QUERY_SETTINGS).map(([k, v]) => [k, String(v)]),
) as ClickHouseSettings;

/** Codes ClickHouse answers when a search went past a limit of the search profile or quota. */
const CH = {
  SYNTAX_ERROR: 62,
  TIMEOUT_EXCEEDED: 159,
  TOO_MANY_ROWS: 158,
  READONLY: 164,
  TOO_DEEP_AST: 167,
  TOO_BIG_AST: 168,
  UNKNOWN_USER: 192,
  WRONG_PASSWORD: 193,
  QUOTA_EXPIRED: 201,
  TOO_MANY_SIMULTANEOUS_QUERIES: 202,
  MEMORY_LIMIT_EXCEEDED: 241,
  TOO_MANY_ROWS_OR_BYTES: 396,
} as const;

export class ClickHouseLogHistogram {
  readonly url: string;
  private readonly client: ClickHouseClient;
  private readonly options: ClickHouseLogHistogramOptions;
  private readonly serviceColumn: string;
  readonly user: string;
  readonly limits: SearchLimits;

  constructor(options: ClickHouseLogHistogramOptions) {
    this.options = options;
    this.url = options.url;
    this.user = options.user ?? SEARCH_USER;
    this.limits = options.limits ?? DEFAULT_SEARCH_LIMITS;
    this.client = options.client ?? searchClickHouseClient(options.url, this.user, options.password);
    const service = (options.schema ?? LOG_SCHEMA).fields.find((f) => f.name === "service");
    if (!service) throw new Error('log schema: no field "service"');
    this.serviceColumn = service.ch;
  }

  /** The SQL of a request (every value quoted, names from the schema); exported for tests. */
  sql(req: HistogramRequest, intervalMs: number): string {
    checkWindow(req.from, req.to, this.limits);
    const f = resolveLineFilter(req, { pii: this.options.pii, schema: this.options.schema, limits: this.limits.query });
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
    const sql =
      `SELECT intDiv(ts_ms, ${intervalMs}) * ${intervalMs} AS start, count() AS count ` +
      `FROM ${ident(this.options.database, this.options.table)} WHERE ${where.join(" AND ")} ` +
      "GROUP BY start ORDER BY start";
    // The client appends " FORMAT JSONEachRow"; ClickHouse counts bytes.
    const bytes = Buffer.byteLength(sql) + 32;
    if (bytes > SEARCH_QUERY_SETTINGS.max_query_size) {
      throw new SearchLimitError(
        "max_query_size",
        bytes,
        SEARCH_QUERY_SETTINGS.max_query_size,
        `the query compiles to ${bytes} bytes of SQL, over ClickHouse's limit of ${SEARCH_QUERY_SETTINGS.max_query_size} (max_query_size of the search profile)`,
        "search for fewer or shorter values at once",
      );
    }
    return sql;
  }

  async histogram(req: HistogramRequest): Promise<HistogramResult> {
    checkWindow(req.from, req.to, this.limits);
    const intervalMs = histogramInterval(req.from, req.to, req.intervalMs, req.bars, this.limits.maxBuckets);
    const query = this.sql(req, intervalMs);
    let rows: Array<{ start: string | number; count: string | number }>;
    try {
      rows = await (
        await this.client.query({ query, format: "JSONEachRow", clickhouse_settings: QUERY_SETTINGS })
      ).json();
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
    const limit = this.explainLimit(failure.code);
    if (limit) {
      limit.storeReason = failure.message;
      return limit;
    }
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
      const err = new SearchError(
        "unavailable",
        `ClickHouse at ${this.url} failed the histogram (code ${failure.code})`,
      );
      err.storeReason = failure.message;
      return err;
    }
    return e instanceof Error ? e : new Error(String(e));
  }

  /** ClickHouse's refusals under the search profile and quota, said in the user's terms (its own text goes to the log). */
  private explainLimit(code: number | null): SearchError | undefined {
    const s = SEARCH_QUERY_SETTINGS;
    switch (code) {
      case CH.TIMEOUT_EXCEEDED:
        return new SearchError(
          "timeout",
          `ClickHouse stopped the histogram after ${s.max_execution_time} s (max_execution_time of the search profile)`,
          "count over a shorter window or with a narrower query",
        );
      case CH.QUOTA_EXPIRED:
      case CH.TOO_MANY_SIMULTANEOUS_QUERIES: {
        const err = new SearchError(
          "overloaded",
          code === CH.QUOTA_EXPIRED
            ? `the ClickHouse search user ${this.user} has used its quota for now`
            : `ClickHouse is running as many searches of ${this.user} as it allows`,
          "try again in a minute",
        );
        err.retryAfterSeconds = code === CH.QUOTA_EXPIRED ? 60 : 5;
        return err;
      }
      case CH.TOO_DEEP_AST:
      case CH.TOO_BIG_AST:
      case CH.SYNTAX_ERROR:
        return new SearchError(
          "bad-request",
          "ClickHouse could not run this query (it is larger than the search profile allows)",
          "simplify the query: fewer terms, parentheses and wildcards",
        );
      case CH.TOO_MANY_ROWS:
      case CH.TOO_MANY_ROWS_OR_BYTES:
      case CH.MEMORY_LIMIT_EXCEEDED:
        return new SearchError(
          "bad-request",
          "ClickHouse stopped the histogram at a limit of the search profile (rows or memory)",
          "count over a shorter window, with a longer interval, or with a narrower query",
        );
      case CH.READONLY:
        return new SearchError(
          "unavailable",
          `ClickHouse's profile of ${this.user} does not match the limits this weir sends`,
          "apply this version's search user: `weir stack up` (or install pipelines/logs/search/clickhouse-search-user.ts's users.d file on your server)",
        );
      case CH.UNKNOWN_USER:
      case CH.WRONG_PASSWORD:
        return new SearchError(
          "unavailable",
          `ClickHouse at ${this.url} does not know the search user ${this.user} (or its password)`,
          "create it: `weir stack up` writes it for the local stack; elsewhere install the users.d file of docs/logs-search.md and set WEIR_CLICKHOUSE_SEARCH_PASSWORD",
        );
      default:
        return undefined;
    }
  }
}
