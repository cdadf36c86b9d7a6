// The daily availability report: for one UTC day, per node of the hierarchy (app, systems, services,
// endpoints), the availability reached against the SLO, its level (90% weak ... 99.9999% strong), the
// downtime it amounts to, the error budget left, latency compliance and quantiles, the worst
// endpoints, and the day's alerts. Read from ClickHouse's 1-minute rows (FINAL); written as Markdown
// for people (report-markdown.ts) and JSON for machines, on demand (`weir health report`) or every
// night (report-files.ts).
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
  NODE_COLUMNS,
  type NodeColumns,
  nodeOf,
  readAlertEpisodes,
} from "./health-reader.ts";
import {
  AVAILABILITY_LEVELS,
  classifyAvailability,
  errorBudget,
  type HealthNode,
  type Level,
  nodeId,
  nodeName,
  type SloConfig,
} from "./slo.ts";

// --- the math -----------------------------------------------------------------------------------------

/** 1 - errors/requests; null without requests (nothing was asked, nothing failed: no figure). */
export function availabilityOf(requests: number, errors: number): number | null {
  return requests > 0 ? 1 - errors / requests : null;
}

/** The downtime an availability amounts to over a period (default a day): (1 - a) x period. */
export function equivalentDowntimeS(availability: number | null, periodS = DAY_MS / 1000): number | null {
  return availability === null ? null : (1 - availability) * periodS;
}

/** Whether a minute's own availability fell below the target (a minute without requests never does). */
export function isBadMinute(requests: number, errors: number, target: number): boolean {
  const a = availabilityOf(requests, errors);
  // The same slack as classifyAvailability: 995/1000 against 99.5% is met, not missed by a rounding.
  return a !== null && a < target - 1e-12;
}

export interface BudgetFigures {
  /** Errors the target allows among the requests: (1 - target) x requests. */
  allowed: number;
  /** Share of the budget the errors used (errors / allowed); above 1 when overspent. */
  consumed: number | null;
  /** 1 - consumed: the share left, negative when overspent. */
  left: number | null;
}

export function budgetFigures(target: number, requests: number, errors: number): BudgetFigures {
  const allowed = errorBudget(target, requests);
  if (allowed <= 0) return { allowed: 0, consumed: null, left: null };
  const consumed = errors / allowed;
  return { allowed, consumed, left: 1 - consumed };
}

/** Share of requests faster than the latency objective: 1 - slow/requests. */
export function latencyCompliance(requests: number, slow: number): number | null {
  return requests > 0 ? 1 - slow / requests : null;
}

/** [start, end) of a UTC day "YYYY-MM-DD" in epoch milliseconds. */
export function parseDay(day: string): { start: number; end: number } {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
  const start = m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : Number.NaN;
  if (!m || Number.isNaN(start) || new Date(start).toISOString().slice(0, 10) !== day) {
    throw new HealthQueryError("bad-argument", `not a day: ${JSON.stringify(day)}`, "give a UTC day as YYYY-MM-DD");
  }
  return { start, end: start + DAY_MS };
}

/** The UTC day before `now`'s, as YYYY-MM-DD: what the nightly report covers. */
export function previousUtcDay(now: Date): string {
  return new Date(Math.floor(now.getTime() / DAY_MS) * DAY_MS - DAY_MS).toISOString().slice(0, 10);
}

// --- the report's shape -------------------------------------------------------------------------------

export interface NodeReport {
  level: Level;
  app: string;
  system: string;
  service: string;
  endpoint: string;
  /** nodeName(): "live", "live/room", "room-svc", "room-svc /room/list". */
  name: string;
  requests: number;
  errors: number;
  /** Requests slower than their endpoint's latency objective. */
  slow: number;
  /** Minutes of the day with a row for this node. */
  minutes: number;
  availability: number | null;
  /** The highest availability level reached ("higher" for 99.9%), null below 90% or without requests. */
  levelReached: string | null;
  /** The SLO's availability target, and the level it corresponds to. */
  target: number;
  targetLevel: string | null;
  targetMet: boolean | null;
  downtime: {
    /** (1 - availability) x 24 h, in seconds. */
    equivalentS: number | null;
    /** Minutes whose own availability fell below the target. */
    badMinutes: number;
  };
  errorBudget: BudgetFigures;
  latency: {
    thresholdUs: number;
    target: number;
    /** 1 - slow/requests. */
    compliance: number | null;
    met: boolean | null;
    p50Us: number | null;
    p99Us: number | null;
    p999Us: number | null;
  };
  runbook: string;
}

export interface WorstEndpoint {
  name: string;
  service: string;
  endpoint: string;
  requests: number;
  errors: number;
  availability: number | null;
  target: number;
  budgetConsumed: number | null;
  budgetLeft: number | null;
  badMinutes: number;
  runbook: string;
}

export interface DailyReport {
  day: string;
  /** [from, to) in ISO 8601, UTC. */
  from: string;
  to: string;
  generatedAt: string;
  source: { database: string; table: string; resolution: "1m"; slo: string };
  /** False when the day has no 1-minute rows at all (the pipeline did not run, or retention dropped them). */
  hasData: boolean;
  app: NodeReport[];
  systems: NodeReport[];
  services: NodeReport[];
  endpoints: NodeReport[];
  /** Endpoints with errors, most budget consumed first (then lowest availability); at most 10. */
  worstEndpoints: WorstEndpoint[];
  alerts: {
    episodes: number;
    /** Episodes per rule and severity. */
    byRule: Array<{ rule: string; severity: AlertEpisode["severity"]; count: number }>;
    list: AlertEpisode[];
  };
  availabilityLevels: Array<{ name: string; target: number; downtimePerDayS: number; downtimePerYearS: number }>;
  /** Sketches that could not be decoded and were left out of the quantiles. */
  unreadableSketches: number;
}

export interface DailyReportOptions {
  /** The UTC day, YYYY-MM-DD. */
  day: string;
  clickhouseUrl: string;
  clickhouseAuth?: ClickHouseAuth;
  /** Default weir. */
  database?: string;
  slo: SloConfig;
  /** The report's generation time (default now). */
  now?: Date;
}

const WORST_ENDPOINTS = 10;

// --- reading it ---------------------------------------------------------------------------------------

interface NodeTotalsRow extends NodeColumns {
  requests: string;
  errors: string;
  slow: string;
  minutes: string;
}

interface ErrorMinuteRow extends NodeColumns {
  requests: string;
  errors: string;
}

interface HourCountRow extends NodeColumns {
  h: string;
  requests: string;
}

interface SketchRow extends NodeColumns {
  t: number;
  requests: string;
  sketch: string;
}

export async function buildDailyReport(options: DailyReportOptions): Promise<DailyReport> {
  const { start, end } = parseDay(options.day);
  const reader = new HealthReader(options);
  try {
    return await readDailyReport(reader, options, start, end);
  } finally {
    await reader.close();
  }
}

async function readDailyReport(
  reader: HealthReader,
  options: DailyReportOptions,
  start: number,
  end: number,
): Promise<DailyReport> {
  const { slo } = options;
  const minutes = sql`${reader.metrics} FINAL WHERE window_ms = ${MINUTE_MS}
    AND window_start >= ${new Date(start)} AND window_start < ${new Date(end)}`;
  const nodeCols = raw(NODE_COLUMNS);

  const totals = await reader.select<NodeTotalsRow>(
    sql`SELECT ${nodeCols}, sum(requests) AS requests, sum(errors) AS errors, sum(slow) AS slow, count() AS minutes
        FROM ${raw(minutes)} GROUP BY ${nodeCols}`,
  );

  // Only a minute with errors can fall below a target under 100%: the others are not fetched.
  const badMinutes = new Map<string, number>();
  const errorMinutes = await reader.select<ErrorMinuteRow>(
    sql`SELECT ${nodeCols}, requests, errors FROM ${raw(minutes)} AND errors > 0`,
  );
  for (const r of errorMinutes) {
    const node = nodeOf(r);
    if (isBadMinute(Number(r.requests), Number(r.errors), slo.objectives(node).availability)) {
      const id = nodeId(node);
      badMinutes.set(id, (badMinutes.get(id) ?? 0) + 1);
    }
  }

  const sketches = await readDaySketches(reader, minutes, start, end);

  const reports = totals.map((r) => {
    const node = nodeOf(r);
    const id = nodeId(node);
    const s = sketches.get(id);
    return nodeReport(node, slo, {
      requests: Number(r.requests),
      errors: Number(r.errors),
      slow: Number(r.slow),
      minutes: Number(r.minutes),
      badMinutes: badMinutes.get(id) ?? 0,
      p50Us: s?.quantile(0.5) ?? null,
      p99Us: s?.quantile(0.99) ?? null,
      p999Us: s?.quantile(0.999) ?? null,
    });
  });
  const byLevel = (level: Level) =>
    reports
      .filter((r) => r.level === level)
      .sort(
        (a, b) =>
          compareText(a.app, b.app) ||
          (level === "SYSTEM" ? compareText(a.system, b.system) : 0) ||
          compareText(a.service, b.service) ||
          compareText(a.endpoint, b.endpoint),
      );
  const endpoints = byLevel("ENDPOINT");

  const episodes = await readAlertEpisodes(reader, start, end);
  const byRule = new Map<string, { rule: string; severity: AlertEpisode["severity"]; count: number }>();
  for (const e of episodes) {
    const key = `${e.rule}\u0001${e.severity}`;
    const entry = byRule.get(key) ?? { rule: e.rule, severity: e.severity, count: 0 };
    entry.count++;
    byRule.set(key, entry);
  }

  let unreadable = 0;
  for (const s of sketches.values()) unreadable += s.unreadable;
  return {
    day: options.day,
    from: isoSeconds(start),
    to: isoSeconds(end),
    generatedAt: isoSeconds((options.now ?? new Date()).getTime()),
    source: { database: reader.database, table: "health_metrics", resolution: "1m", slo: slo.source },
    hasData: reports.length > 0,
    app: byLevel("APP"),
    systems: byLevel("SYSTEM"),
    services: byLevel("SERVICE"),
    endpoints,
    worstEndpoints: worstEndpoints(endpoints),
    alerts: {
      episodes: episodes.length,
      byRule: [...byRule.values()].sort(
        (a, b) => b.count - a.count || compareText(a.rule, b.rule) || compareText(a.severity, b.severity),
      ),
      list: episodes,
    },
    availabilityLevels: AVAILABILITY_LEVELS.map((l) => ({
      name: l.name,
      target: l.target,
      downtimePerDayS: l.downtimePerDayS,
      downtimePerYearS: l.downtimePerYearS,
    })),
    unreadableSketches: unreadable,
  };
}

/**
 * Each node's latency sketch for the day. An hour's 1 h row already holds the merge of its 60
 * minutes, so it stands in for them when its request count matches theirs (1 sketch read instead of
 * 60); an hour whose row is missing or disagrees (written before a late minute) is merged from its
 * minutes. The figures are the same either way: merging DDSketches is exact.
 */
async function readDaySketches(
  reader: HealthReader,
  minutes: string,
  start: number,
  end: number,
): Promise<Map<string, LatencySketch>> {
  const nodeCols = raw(NODE_COLUMNS);
  const hourKey = (node: HealthNode, h: number) => `${nodeId(node)}\u0002${h}`;
  const minuteRequests = new Map<string, number>();
  for (const r of await reader.select<HourCountRow>(
    sql`SELECT ${nodeCols}, intDiv(toUInt32(window_start), 3600) * 3600 AS h, sum(requests) AS requests
        FROM ${raw(minutes)} GROUP BY ${nodeCols}, h`,
  )) {
    minuteRequests.set(hourKey(nodeOf(r), Number(r.h)), Number(r.requests));
  }

  const sketches = new Map<string, LatencySketch>();
  const sketchOf = (node: HealthNode) => {
    const id = nodeId(node);
    let s = sketches.get(id);
    if (!s) {
      s = new LatencySketch();
      sketches.set(id, s);
    }
    return s;
  };
  const covered = new Set<string>();
  await reader.forEach<SketchRow>(
    sql`SELECT ${nodeCols}, toUInt32(window_start) AS t, requests, sketch FROM ${reader.metrics} FINAL
        WHERE window_ms = ${HOUR_MS} AND window_start >= ${new Date(start)} AND window_start < ${new Date(end)}`,
    (r) => {
      const node = nodeOf(r);
      const key = hourKey(node, r.t);
      if (minuteRequests.get(key) !== Number(r.requests)) return;
      sketchOf(node).add(r.sketch);
      covered.add(key);
    },
  );

  const hoursLeft = new Set<number>();
  for (const key of minuteRequests.keys()) {
    if (!covered.has(key)) hoursLeft.add(Number(key.slice(key.lastIndexOf("\u0002") + 1)));
  }
  if (hoursLeft.size > 0) {
    await reader.forEach<SketchRow>(
      sql`SELECT ${nodeCols}, toUInt32(window_start) AS t, requests, sketch FROM ${raw(minutes)}
          AND intDiv(toUInt32(window_start), 3600) * 3600 IN (${raw([...hoursLeft].sort((a, b) => a - b).join(", "))})`,
      (r) => {
        const node = nodeOf(r);
        if (!covered.has(hourKey(node, Math.floor(r.t / 3600) * 3600))) sketchOf(node).add(r.sketch);
      },
    );
  }
  return sketches;
}

interface NodeFigures {
  requests: number;
  errors: number;
  slow: number;
  minutes: number;
  badMinutes: number;
  p50Us: number | null;
  p99Us: number | null;
  p999Us: number | null;
}

/** A node's figures against its objectives. */
export function nodeReport(node: HealthNode, slo: SloConfig, f: NodeFigures): NodeReport {
  const o = slo.objectives(node);
  const availability = availabilityOf(f.requests, f.errors);
  const compliance = latencyCompliance(f.requests, f.slow);
  return {
    ...node,
    name: nodeName(node),
    requests: f.requests,
    errors: f.errors,
    slow: f.slow,
    minutes: f.minutes,
    availability,
    levelReached: availability === null ? null : (classifyAvailability(availability)?.name ?? null),
    target: o.availability,
    targetLevel: classifyAvailability(o.availability)?.name ?? null,
    targetMet: availability === null ? null : availability >= o.availability - 1e-12,
    downtime: { equivalentS: equivalentDowntimeS(availability), badMinutes: f.badMinutes },
    errorBudget: budgetFigures(o.availability, f.requests, f.errors),
    latency: {
      thresholdUs: o.latencyThresholdUs,
      target: o.latencyTarget,
      compliance,
      met: compliance === null ? null : compliance >= o.latencyTarget - 1e-12,
      p50Us: f.p50Us,
      p99Us: f.p99Us,
      p999Us: f.p999Us,
    },
    runbook: o.runbook,
  };
}

/** Endpoints that spent budget, most consumed first, then the lowest availability, then the busiest. */
export function worstEndpoints(endpoints: readonly NodeReport[], limit = WORST_ENDPOINTS): WorstEndpoint[] {
  return endpoints
    .filter((e) => e.errors > 0 && e.errorBudget.consumed !== null)
    .sort(
      (a, b) =>
        (b.errorBudget.consumed ?? 0) - (a.errorBudget.consumed ?? 0) ||
        (a.availability ?? 1) - (b.availability ?? 1) ||
        b.requests - a.requests ||
        compareText(a.name, b.name),
    )
    .slice(0, limit)
    .map((e) => ({
      name: e.name,
      service: e.service,
      endpoint: e.endpoint,
      requests: e.requests,
      errors: e.errors,
      availability: e.availability,
      target: e.target,
      budgetConsumed: e.errorBudget.consumed,
      budgetLeft: e.errorBudget.left,
      badMinutes: e.downtime.badMinutes,
      runbook: e.runbook,
    }));
}
