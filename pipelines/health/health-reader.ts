// Reads the health pipeline's tables back (infra/clickhouse/001_health.sql) for the daily report and
// `weir health top / show`. Both tables are ReplacingMergeTree: every read here says FINAL, so a
// replay that wrote the same rows twice is counted once. Latency quantiles come from merged DDSketches,
// never from averaged percentiles. Times cross the wire as epoch seconds (toUInt32), so the server's
// time zone never shifts a window.

import { type ClickHouseClient, ClickHouseLogLevel, createClient } from "@clickhouse/client";
import { DDSketch } from "@datadog/sketches-js";
import { classify } from "../../sinks/clickhouse/errors.ts";
import { ident, raw, type SqlIdentifier, sql } from "../../sinks/clickhouse/sql.ts";
import { type ClickHouseAuth, clickhouseCredentials } from "../../sinks/credentials.ts";
import { type HealthNode, type Level, nodeName } from "./slo.ts";

export const SECOND_MS = 1000;
export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

/** The sketches' relative accuracy (the pipeline writes DDSketch with 1%). */
export const SKETCH_RELATIVE_ACCURACY = 0.01;

export type HealthQueryErrorKind = "unreachable" | "missing-table" | "bad-argument" | "unknown-service" | "no-data";

/** A failure a user can act on: what went wrong and, in `hint`, what to do. */
export class HealthQueryError extends Error {
  constructor(
    readonly kind: HealthQueryErrorKind,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = "HealthQueryError";
  }
}

export interface HealthReaderOptions {
  /** ClickHouse's HTTP interface, e.g. http://127.0.0.1:8123. */
  clickhouseUrl: string;
  /** Its user and password; the default user without one when absent. */
  clickhouseAuth?: ClickHouseAuth;
  /** The database holding health_metrics and health_alerts (default weir). */
  database?: string;
}

/** The node columns every row carries. */
export interface NodeColumns {
  level: Level;
  app: string;
  system: string;
  service: string;
  endpoint: string;
}

export const NODE_COLUMNS = "level, app, system, service, endpoint";

export function nodeOf(row: NodeColumns): HealthNode {
  return { level: row.level, app: row.app, system: row.system, service: row.service, endpoint: row.endpoint };
}

export class HealthReader {
  readonly database: string;
  readonly url: string;
  private readonly client: ClickHouseClient;

  constructor(options: HealthReaderOptions) {
    this.url = options.clickhouseUrl;
    this.database = options.database ?? "weir";
    // Failures are explained once, by explain(); the client's own error log would repeat them.
    this.client = createClient({
      url: options.clickhouseUrl,
      ...clickhouseCredentials(options.clickhouseAuth),
      log: { level: ClickHouseLogLevel.OFF },
    });
  }

  get metrics(): SqlIdentifier {
    return ident(this.database, "health_metrics");
  }

  get alerts(): SqlIdentifier {
    return ident(this.database, "health_alerts");
  }

  async select<T>(query: string): Promise<T[]> {
    try {
      return await (await this.client.query({ query, format: "JSONEachRow" })).json<T>();
    } catch (e) {
      throw this.explain(e);
    }
  }

  /** Streams the rows one by one: sketches are merged as they arrive, never all held at once. */
  async forEach<T>(query: string, onRow: (row: T) => void): Promise<void> {
    try {
      const result = await this.client.query({ query, format: "JSONEachRow" });
      for await (const rows of result.stream<T>()) for (const row of rows) onRow(row.json());
    } catch (e) {
      throw this.explain(e);
    }
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  private explain(e: unknown): Error {
    if (e instanceof HealthQueryError) return e;
    const failure = classify(e);
    if (failure.code === 81 || failure.code === 60) {
      return new HealthQueryError(
        "missing-table",
        `ClickHouse at ${this.url} has no health tables in database ${this.database} (${failure.message})`,
        "create them with `weir migrate` (or `weir stack up`), or name the database with --database",
      );
    }
    if (failure.code === null) {
      const code = (e as { code?: unknown }).code;
      if (code === "ECONNREFUSED" || code === "ECONNRESET" || code === "ENOTFOUND" || code === "EHOSTUNREACH") {
        return new HealthQueryError(
          "unreachable",
          `cannot reach ClickHouse at ${this.url} (${String(code)})`,
          "start the local stack with `weir stack up`, or give the server with --url",
        );
      }
    }
    return e instanceof Error ? e : new Error(String(e));
  }
}

/** A latency distribution merged from the rows' DDSketches (microseconds). */
export class LatencySketch {
  private sketch: DDSketch | null = null;
  /** Sketches that could not be decoded (skipped, so one bad row cannot sink a report). */
  unreadable = 0;

  /** Merges one row's sketch: base64 of the sketches-proto encoding; empty for a window without requests. */
  add(base64: string): void {
    if (base64.length === 0) return;
    let s: DDSketch;
    try {
      s = DDSketch.fromProto(Buffer.from(base64, "base64"));
    } catch {
      this.unreadable++;
      return;
    }
    this.mergeSketch(s);
  }

  merge(other: LatencySketch): void {
    if (other.sketch) this.mergeSketch(other.sketch);
    this.unreadable += other.unreadable;
  }

  get count(): number {
    return this.sketch?.count ?? 0;
  }

  /** The value at quantile q, relative error at most the sketches' accuracy; null without values. */
  quantile(q: number): number | null {
    if (!this.sketch || this.sketch.count === 0) return null;
    return this.sketch.getValueAtQuantile(q);
  }

  private mergeSketch(s: DDSketch): void {
    if (s.count === 0) return;
    // Own a sketch to merge into: merging into one we were handed would change the caller's.
    this.sketch ??= DDSketch.fromProto(EMPTY_SKETCH) as DDSketch;
    this.sketch.merge(s);
  }
}

// Decoded, like the pipeline's own sketches (pipelines/health/rows.ts): decoding recomputes the index
// mapping from gamma, and a sketch built here must map values exactly like the rows' sketches.
const EMPTY_SKETCH = new DDSketch({ relativeAccuracy: SKETCH_RELATIVE_ACCURACY }).toProto();

/** Code-point order: the same in every locale, and "/room/list" before "/room/{id}". */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** "2026-03-14T10:05:00Z" for epoch milliseconds, without the milliseconds. */
export function isoSeconds(t: number): string {
  return new Date(t).toISOString().replace(/\.\d{3}Z$/, "Z");
}

// --- alerts -------------------------------------------------------------------------------------------

/** One alert episode: its FIRING record and, once it cleared, its RESOLVED one. */
export interface AlertEpisode {
  id: string;
  rule: string;
  kind: "BURN_RATE" | "LATENCY" | "SPIKE";
  severity: "PAGE" | "TICKET";
  level: Level;
  app: string;
  system: string;
  service: string;
  endpoint: string;
  /** The node alerted on, as nodeName() writes it ("pay-svc /wallet/debit"). */
  target: string;
  /** When it started firing (ISO 8601, UTC). */
  start: string;
  /** When it cleared; null while it is still firing. */
  end: string | null;
  durationS: number | null;
  observed: number;
  threshold: number;
  /** The SLO's target the rule watches (0 when the rule has none). */
  objective: number;
  message: string;
  runbook: string;
}

/** How far back an episode may have started and still be read as open: older unresolved ones are stale. */
export const ALERT_LOOKBACK_MS = 7 * DAY_MS;

interface AlertRow extends NodeColumns {
  id: string;
  state: "FIRING" | "RESOLVED";
  rule: string;
  kind: AlertEpisode["kind"];
  severity: AlertEpisode["severity"];
  observed: number;
  threshold: number;
  objective: number;
  message: string;
  runbook: string;
  started_at: string;
  resolved_at: string;
}

/**
 * The episodes that were firing at some time in [fromMs, toMs): started before toMs (and at most
 * ALERT_LOOKBACK_MS before fromMs) and not resolved before fromMs. `where` narrows them (SQL built
 * with sql``). A resolution after toMs is reported as the episode's end all the same.
 */
export async function readAlertEpisodes(
  reader: HealthReader,
  fromMs: number,
  toMs: number,
  where: string = "1",
): Promise<AlertEpisode[]> {
  const rows = await reader.select<AlertRow>(
    sql`SELECT id, state, rule, kind, severity, ${raw(NODE_COLUMNS)}, observed, threshold, objective, message, runbook,
               started_at, resolved_at
        FROM ${reader.alerts} FINAL
        WHERE (${raw(where)}) AND id IN (
          SELECT id FROM ${reader.alerts}
          WHERE started_at < ${toMs} AND started_at >= ${fromMs - ALERT_LOOKBACK_MS}
          GROUP BY id
          HAVING max(resolved_at) = 0 OR max(resolved_at) >= ${fromMs})`,
  );
  // One FIRING and at most one RESOLVED row per episode (FINAL): the first gives the figures that fired.
  const byId = new Map<string, { firing?: AlertRow; resolved?: AlertRow }>();
  for (const r of rows) {
    let e = byId.get(r.id);
    if (!e) {
      e = {};
      byId.set(r.id, e);
    }
    if (r.state === "FIRING") e.firing = r;
    else e.resolved = r;
  }
  const episodes: AlertEpisode[] = [];
  for (const [id, { firing, resolved }] of byId) {
    const r = (firing ?? resolved) as AlertRow;
    const start = Math.min(...[firing, resolved].filter((x) => x !== undefined).map((x) => Number(x.started_at)));
    const end = resolved ? Number(resolved.resolved_at) : 0;
    episodes.push({
      id,
      rule: r.rule,
      kind: r.kind,
      severity: r.severity,
      level: r.level,
      app: r.app,
      system: r.system,
      service: r.service,
      endpoint: r.endpoint,
      target: nodeName(nodeOf(r)),
      start: isoSeconds(start),
      end: end > 0 ? isoSeconds(end) : null,
      durationS: end > 0 ? Math.max(0, Math.round((end - start) / 1000)) : null,
      observed: r.observed,
      threshold: r.threshold,
      objective: r.objective,
      message: r.message,
      runbook: r.runbook,
    });
  }
  return episodes.sort((a, b) => compareText(a.start, b.start) || compareText(a.id, b.id));
}
