// What `weir health top` and `weir health show` read: the services doing worst right now, and one
// service's (or endpoint's) series over a period, from the health pipeline's ClickHouse rows (FINAL).
// Periods up to an hour read the 1 s rows, so a spike a 30 s scrape would hide is there; longer ones
// read 1 min rows (1 h rows beyond a week). Percentiles always come from merged sketches.

import { raw, sql } from "../../sinks/clickhouse/sql.ts";
import type { ClickHouseAuth } from "../../sinks/credentials.ts";
import {
  type AlertEpisode,
  compareText,
  DAY_MS,
  HealthQueryError,
  HealthReader,
  HOUR_MS,
  isoSeconds,
  LatencySketch,
  MINUTE_MS,
  readAlertEpisodes,
  SECOND_MS,
} from "./health-reader.ts";
import { type HealthNode, type NodeObjectives, nodeName, SloConfig } from "./slo.ts";

export { HealthQueryError } from "./health-reader.ts";

export interface QueryOptions {
  clickhouseUrl: string;
  clickhouseAuth?: ClickHouseAuth;
  /** Default weir. */
  database?: string;
  /** Objectives for burn rates and slow shares (default pipelines/health/slo.yaml). */
  slo?: SloConfig;
  /** The end of the period (default now). */
  now?: Date | number;
}

// --- periods and buckets ------------------------------------------------------------------------------

const SINCE_UNITS: Record<string, number> = { s: SECOND_MS, m: MINUTE_MS, h: HOUR_MS, d: DAY_MS };

/** "90s", "15m", "1h", "2d" in milliseconds. */
export function parseSince(text: string): number {
  const m = /^\s*(\d+)\s*([smhd])\s*$/.exec(text);
  const n = m ? Number(m[1]) : 0;
  if (!m || n <= 0) {
    throw new HealthQueryError(
      "bad-argument",
      `not a period: ${JSON.stringify(text)}`,
      "give a whole number of seconds, minutes, hours or days: 90s, 15m, 1h, 2d",
    );
  }
  return n * (SINCE_UNITS[m[2] as string] as number);
}

/** The rows a period reads: 1 s up to an hour, 1 min up to a week, 1 h beyond. */
export function resolutionFor(periodMs: number): number {
  if (periodMs <= HOUR_MS) return SECOND_MS;
  if (periodMs <= 7 * DAY_MS) return MINUTE_MS;
  return HOUR_MS;
}

const NICE_BUCKETS = [
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400,
].map((s) => s * SECOND_MS);

/**
 * The smallest "round" bucket (1 s, 2 s, 5 s, 10 s, ... 1 h, ... 1 d) that is a whole number of
 * source windows and cuts the period into at most `maxPoints` buckets.
 */
export function chooseBucket(periodMs: number, resolutionMs: number, maxPoints = 120): number {
  const points = Math.max(1, Math.floor(maxPoints));
  for (const b of NICE_BUCKETS) {
    if (b < resolutionMs || b % resolutionMs !== 0) continue;
    if (Math.ceil(periodMs / b) <= points) return b;
  }
  return Math.ceil(periodMs / points / DAY_MS) * DAY_MS;
}

/** [from, to): `to` is `now` rounded down to the resolution, the length rounded up to it. */
export function periodEnding(nowMs: number, periodMs: number, resolutionMs: number): { from: number; to: number } {
  const to = Math.floor(nowMs / resolutionMs) * resolutionMs;
  return { from: to - Math.ceil(periodMs / resolutionMs) * resolutionMs, to };
}

/**
 * The period to read: it ends where the pipeline's rows end (the end of the latest window written at
 * this resolution, for any node), so the seconds it has not written yet do not show as a drop in
 * traffic; or at `now` when the period holds no row at all.
 */
export async function periodOfData(
  reader: HealthReader,
  now: number,
  periodMs: number,
  resolutionMs: number,
): Promise<{ from: number; to: number }> {
  const p = periodEnding(now, periodMs, resolutionMs);
  const [last] = await reader.select<{ t: number; n: string }>(
    sql`SELECT toUInt32(max(window_start)) AS t, count() AS n FROM ${reader.metrics}
        WHERE window_ms = ${resolutionMs} AND window_start >= ${new Date(p.from)} AND window_start < ${new Date(p.to)}`,
  );
  if (!last || Number(last.n) === 0) return p;
  const to = last.t * 1000 + resolutionMs;
  return { from: to - (p.to - p.from), to };
}

/** How many times faster than sustainable errors spend the budget: error rate / (1 - target). */
export function burnRate(requests: number, errors: number, target: number): number | null {
  if (requests <= 0) return null;
  return errors / requests / (1 - target);
}

function sinceMs(since: string | number): number {
  if (typeof since === "number") {
    if (!Number.isFinite(since) || since <= 0) throw new HealthQueryError("bad-argument", `not a period: ${since} ms`);
    return since;
  }
  return parseSince(since);
}

function nowMs(now: Date | number | undefined): number {
  return now === undefined ? Date.now() : typeof now === "number" ? now : now.getTime();
}

// --- top ----------------------------------------------------------------------------------------------

export interface ServiceHealth {
  app: string;
  system: string;
  service: string;
  requests: number;
  /** Requests per second over the period. */
  qps: number;
  errors: number;
  slow: number;
  availability: number | null;
  /** The service's availability target. */
  target: number;
  /** error rate / (1 - target): 1 spends the budget exactly at the sustainable pace. */
  burnRate: number | null;
  /** slow / requests: requests slower than their endpoint's latency objective. */
  slowShare: number | null;
  latencyTarget: number;
  p50Us: number | null;
  p99Us: number | null;
  /** Alert episodes of the service (or its endpoints) still firing at the end of the period. */
  alertsFiring: number;
  /** Alert episodes of the service (or its endpoints) that fired at some time in the period. */
  alertsInPeriod: number;
}

export interface TopResult {
  from: string;
  to: string;
  periodMs: number;
  /** The rows read: 1000 (1 s) or 60000 (1 min) ... */
  resolutionMs: number;
  /** Worst first: burn rate, then firing alerts, then slow share, then p99. */
  services: ServiceHealth[];
}

export interface TopOptions extends QueryOptions {
  /** The period back from now: "15m" or milliseconds. */
  since: string | number;
}

interface ServiceRow {
  app: string;
  system: string;
  service: string;
  requests: string;
  errors: string;
  slow: string;
  sketch: string;
}

/** The services over the last `since`, worst first. Empty when the period has no rows. */
export async function top(options: TopOptions): Promise<TopResult> {
  const periodMs = sinceMs(options.since);
  const resolutionMs = resolutionFor(periodMs);
  const slo = options.slo ?? SloConfig.load();
  const reader = new HealthReader(options);
  try {
    const { from, to } = await periodOfData(reader, nowMs(options.now), periodMs, resolutionMs);
    const acc = new Map<
      string,
      {
        app: string;
        system: string;
        service: string;
        requests: number;
        errors: number;
        slow: number;
        sketch: LatencySketch;
      }
    >();
    await reader.forEach<ServiceRow>(
      sql`SELECT app, system, service, requests, errors, slow, sketch FROM ${reader.metrics} FINAL
          WHERE window_ms = ${resolutionMs} AND level = 'SERVICE'
            AND window_start >= ${new Date(from)} AND window_start < ${new Date(to)}`,
      (r) => {
        const key = `${r.app}\u0001${r.system}\u0001${r.service}`;
        let a = acc.get(key);
        if (!a) {
          a = {
            app: r.app,
            system: r.system,
            service: r.service,
            requests: 0,
            errors: 0,
            slow: 0,
            sketch: new LatencySketch(),
          };
          acc.set(key, a);
        }
        a.requests += Number(r.requests);
        a.errors += Number(r.errors);
        a.slow += Number(r.slow);
        a.sketch.add(r.sketch);
      },
    );
    const episodes = acc.size > 0 ? await readAlertEpisodes(reader, from, to, "service != ''") : [];
    const seconds = (to - from) / 1000;
    const services = [...acc.values()].map((a): ServiceHealth => {
      const node: HealthNode = { level: "SERVICE", app: a.app, system: a.system, service: a.service, endpoint: "" };
      const o = slo.objectives(node);
      const mine = episodes.filter((e) => e.service === a.service && e.app === a.app);
      return {
        app: a.app,
        system: a.system,
        service: a.service,
        requests: a.requests,
        qps: a.requests / seconds,
        errors: a.errors,
        slow: a.slow,
        availability: a.requests > 0 ? 1 - a.errors / a.requests : null,
        target: o.availability,
        burnRate: burnRate(a.requests, a.errors, o.availability),
        slowShare: a.requests > 0 ? a.slow / a.requests : null,
        latencyTarget: o.latencyTarget,
        p50Us: a.sketch.quantile(0.5),
        p99Us: a.sketch.quantile(0.99),
        alertsFiring: mine.filter((e) => firingAt(e, to)).length,
        alertsInPeriod: mine.length,
      };
    });
    services.sort(
      (a, b) =>
        (b.burnRate ?? -1) - (a.burnRate ?? -1) ||
        b.alertsFiring - a.alertsFiring ||
        (b.slowShare ?? -1) - (a.slowShare ?? -1) ||
        (b.p99Us ?? -1) - (a.p99Us ?? -1) ||
        compareText(a.service, b.service),
    );
    return { from: isoSeconds(from), to: isoSeconds(to), periodMs: to - from, resolutionMs, services };
  } finally {
    await reader.close();
  }
}

function firingAt(e: AlertEpisode, t: number): boolean {
  return Date.parse(e.start) < t && (e.end === null || Date.parse(e.end) >= t);
}

// --- show ---------------------------------------------------------------------------------------------

export interface SeriesPoint {
  /** Start of the bucket, ISO 8601 UTC, and in epoch milliseconds. */
  start: string;
  startMs: number;
  /** Length of the bucket in seconds (the last one may be cut by the period's end). */
  seconds: number;
  /** Rows (source windows) in the bucket: 0 means no data, not "no traffic". */
  windows: number;
  requests: number;
  errors: number;
  slow: number;
  /** null without rows. */
  qps: number | null;
  errorRate: number | null;
  /** From the bucket's merged sketches; null without requests. */
  p99Us: number | null;
}

export interface ShowResult {
  node: HealthNode;
  name: string;
  from: string;
  to: string;
  periodMs: number;
  resolutionMs: number;
  bucketMs: number;
  objectives: NodeObjectives;
  /** False when the period has no rows for this node. */
  hasData: boolean;
  series: SeriesPoint[];
  totals: {
    requests: number;
    errors: number;
    slow: number;
    qps: number;
    availability: number | null;
    burnRate: number | null;
    slowShare: number | null;
    p50Us: number | null;
    p99Us: number | null;
    p999Us: number | null;
  };
  /** Alert episodes of the service (any of its endpoints) firing at some time in the period. */
  alerts: AlertEpisode[];
}

export interface ShowOptions extends QueryOptions {
  service: string;
  endpoint?: string;
  since: string | number;
  /** At most this many buckets (default 120). */
  maxPoints?: number;
}

interface SeriesRow {
  app: string;
  system: string;
  t: number;
  requests: string;
  errors: string;
  slow: string;
  sketch: string;
}

/** One service's (or endpoint's) series over the last `since`. Unknown names throw, naming the known ones. */
export async function show(options: ShowOptions): Promise<ShowResult> {
  const periodMs = sinceMs(options.since);
  const resolutionMs = resolutionFor(periodMs);
  const bucketMs = chooseBucket(
    Math.ceil(periodMs / resolutionMs) * resolutionMs,
    resolutionMs,
    options.maxPoints ?? 120,
  );
  const slo = options.slo ?? SloConfig.load();
  const endpoint = options.endpoint ?? "";
  const level = endpoint ? "ENDPOINT" : "SERVICE";
  const reader = new HealthReader(options);
  try {
    const { from, to } = await periodOfData(reader, nowMs(options.now), periodMs, resolutionMs);
    const count = Math.ceil((to - from) / bucketMs);
    const buckets = Array.from({ length: count }, () => ({
      windows: 0,
      requests: 0,
      errors: 0,
      slow: 0,
      sketch: new LatencySketch(),
    }));
    let app: string | null = null;
    let system = "";
    await reader.forEach<SeriesRow>(
      sql`SELECT app, system, toUInt32(window_start) AS t, requests, errors, slow, sketch FROM ${reader.metrics} FINAL
          WHERE window_ms = ${resolutionMs} AND level = ${level} AND service = ${options.service} AND endpoint = ${endpoint}
            AND window_start >= ${new Date(from)} AND window_start < ${new Date(to)}`,
      (r) => {
        if (app === null) {
          app = r.app;
          system = r.system;
        }
        const b = buckets[Math.floor((r.t * 1000 - from) / bucketMs)];
        if (!b) return;
        b.windows++;
        b.requests += Number(r.requests);
        b.errors += Number(r.errors);
        b.slow += Number(r.slow);
        b.sketch.add(r.sketch);
      },
    );
    if (app === null) ({ app, system } = await locate(reader, options.service, endpoint, to));

    const node: HealthNode = { level, app, system, service: options.service, endpoint };
    const objectives = slo.objectives(node);
    const total = new LatencySketch();
    const series = buckets.map((b, i): SeriesPoint => {
      const startMs = from + i * bucketMs;
      const seconds = (Math.min(to, startMs + bucketMs) - startMs) / 1000;
      total.merge(b.sketch);
      return {
        start: isoSeconds(startMs),
        startMs,
        seconds,
        windows: b.windows,
        requests: b.requests,
        errors: b.errors,
        slow: b.slow,
        qps: b.windows > 0 ? b.requests / seconds : null,
        errorRate: b.requests > 0 ? b.errors / b.requests : null,
        p99Us: b.sketch.quantile(0.99),
      };
    });
    const requests = series.reduce((n, p) => n + p.requests, 0);
    const errors = series.reduce((n, p) => n + p.errors, 0);
    const slow = series.reduce((n, p) => n + p.slow, 0);
    const alerts = await readAlertEpisodes(reader, from, to, sql`app = ${app} AND service = ${options.service}`);
    return {
      node,
      name: nodeName(node),
      from: isoSeconds(from),
      to: isoSeconds(to),
      periodMs: to - from,
      resolutionMs,
      bucketMs,
      objectives,
      hasData: series.some((p) => p.windows > 0),
      series,
      totals: {
        requests,
        errors,
        slow,
        qps: requests / ((to - from) / 1000),
        availability: requests > 0 ? 1 - errors / requests : null,
        burnRate: burnRate(requests, errors, objectives.availability),
        slowShare: requests > 0 ? slow / requests : null,
        p50Us: total.quantile(0.5),
        p99Us: total.quantile(0.99),
        p999Us: total.quantile(0.999),
      },
      alerts,
    };
  } finally {
    await reader.close();
  }
}

/**
 * The app and system of a service (or endpoint) with no rows in the period, from the 1 min and 1 h
 * rows (small: the primary key starts with window_ms) and the last hour's 1 s rows. Throws, naming
 * what exists, when nothing does.
 */
async function locate(
  reader: HealthReader,
  service: string,
  endpoint: string,
  to: number,
): Promise<{ app: string; system: string }> {
  const recent = sql`(window_ms IN (${MINUTE_MS}, ${HOUR_MS}) OR (window_ms = ${SECOND_MS} AND window_start >= ${new Date(to - HOUR_MS)}))`;
  const level = endpoint ? "ENDPOINT" : "SERVICE";
  const found = await reader.select<{ app: string; system: string }>(
    sql`SELECT app, system FROM ${reader.metrics}
        WHERE ${raw(recent)} AND level = ${level} AND service = ${service} AND endpoint = ${endpoint} LIMIT 1`,
  );
  if (found[0]) return found[0];
  const services = (
    await reader.select<{ service: string }>(
      sql`SELECT DISTINCT service FROM ${reader.metrics} WHERE ${raw(recent)} AND level = 'SERVICE' ORDER BY service`,
    )
  ).map((r) => r.service);
  if (!services.includes(service)) {
    throw new HealthQueryError(
      "unknown-service",
      `no service ${service} in ${reader.database}.health_metrics`,
      services.length > 0
        ? `services with health metrics: ${services.join(", ")}`
        : "there are no health metrics at all yet: start the health pipeline with `weir run health`",
    );
  }
  const endpoints = (
    await reader.select<{ endpoint: string }>(
      sql`SELECT DISTINCT endpoint FROM ${reader.metrics}
          WHERE ${raw(recent)} AND level = 'ENDPOINT' AND service = ${service} ORDER BY endpoint`,
    )
  ).map((r) => r.endpoint);
  throw new HealthQueryError(
    "unknown-service",
    `no endpoint ${endpoint} of service ${service} in ${reader.database}.health_metrics`,
    endpoints.length > 0 ? `endpoints of ${service}: ${endpoints.join(", ")}` : `${service} has no endpoint rows`,
  );
}
