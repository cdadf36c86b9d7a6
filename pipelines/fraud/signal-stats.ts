// What the console's Risk page reads of weir.risk_signals: the newest signals (by rule, category,
// shadow), per-rule hit counts in buckets of event time, shadow against live per rule, and the entities
// a shadow rule and the rule it replaces flagged in the same window (compareShadows, as a backtest
// compares them). Every query reads FINAL: a replay written twice counts once.
import type { ClickHouseClient } from "@clickhouse/client";
import type { RiskSignal } from "../../schemas/types.generated.ts";
import { ident, raw, sql } from "../../sinks/clickhouse/sql.ts";
import { RISK_SIGNALS_TABLE, rowSignal } from "./rows.ts";

export interface SignalFilter {
  from: number;
  to: number;
  rule?: string;
  category?: string;
  /** Only shadow signals (true) or only live ones (false). */
  shadow?: boolean;
}

function where(f: SignalFilter): string {
  return [
    sql`ts >= toDateTime(${Math.floor(f.from / 1000)}) AND ts <= toDateTime(${Math.ceil(f.to / 1000)})`,
    sql`ts_ms >= ${f.from} AND ts_ms < ${f.to}`,
    ...(f.rule !== undefined ? [sql`rule_id = ${f.rule}`] : []),
    ...(f.category !== undefined ? [sql`category = ${f.category}`] : []),
    ...(f.shadow !== undefined ? [sql`shadow = ${f.shadow ? 1 : 0}`] : []),
  ].join(" AND ");
}

/** The newest `limit` signals of the window, newest first. */
export async function newestSignals(
  client: ClickHouseClient,
  database: string,
  f: SignalFilter,
  limit: number,
): Promise<Array<RiskSignal & { category: string }>> {
  const query = sql`SELECT * FROM ${ident(database, RISK_SIGNALS_TABLE)} FINAL WHERE ${raw(where(f))} ORDER BY ts_ms DESC, id LIMIT ${limit}`;
  const rows = await (await client.query({ query, format: "JSONEachRow" })).json<Record<string, unknown>>();
  return rows.map(rowSignal);
}

export interface RuleHits {
  rule: string;
  category: string;
  /** Signals of the window, live and shadow. */
  live: number;
  shadow: number;
  /** Distinct entities flagged, live and shadow. */
  liveEntities: number;
  shadowEntities: number;
  /** Signals per bucket (live + shadow), aligned with RuleHitSeries.buckets. */
  counts: number[];
}

export interface RuleHitSeries {
  from: number;
  to: number;
  stepMs: number;
  /** Bucket starts, ms. */
  buckets: number[];
  rules: RuleHits[];
}

/** A bucket width that gives at most `maxPoints` buckets over the window: 10 s, 1 min, 5 min, ... */
export function hitStep(windowMs: number, maxPoints: number): number {
  const steps = [10_000, 60_000, 300_000, 900_000, 3_600_000, 10_800_000, 86_400_000];
  return steps.find((s) => windowMs / s <= maxPoints) ?? 86_400_000;
}

/** Per rule: signals per bucket of event time, and live against shadow over the window. */
export async function ruleHits(
  client: ClickHouseClient,
  database: string,
  f: SignalFilter,
  maxPoints = 120,
): Promise<RuleHitSeries> {
  const stepMs = hitStep(f.to - f.from, maxPoints);
  const first = Math.floor(f.from / stepMs) * stepMs;
  const buckets: number[] = [];
  for (let t = first; t < f.to; t += stepMs) buckets.push(t);
  const table = ident(database, RISK_SIGNALS_TABLE);
  const series = sql`SELECT rule_id, intDiv(ts_ms, ${stepMs}) * ${stepMs} AS bucket, count() AS n FROM ${table} FINAL WHERE ${raw(where(f))} GROUP BY rule_id, bucket`;
  const totals = sql`SELECT rule_id, any(category) AS category, shadow, count() AS n, uniqExact(entity_type, entity_id) AS entities FROM ${table} FINAL WHERE ${raw(where(f))} GROUP BY rule_id, shadow`;
  const [points, sums] = await Promise.all([
    client.query({ query: series, format: "JSONEachRow" }).then((r) => r.json<Record<string, unknown>>()),
    client.query({ query: totals, format: "JSONEachRow" }).then((r) => r.json<Record<string, unknown>>()),
  ]);
  return assembleRuleHits(f, stepMs, buckets, points, sums);
}

/** The rows of ruleHits' two queries as one series per rule, busiest rule first. */
export function assembleRuleHits(
  f: SignalFilter,
  stepMs: number,
  buckets: number[],
  points: Array<Record<string, unknown>>,
  sums: Array<Record<string, unknown>>,
): RuleHitSeries {
  const index = new Map(buckets.map((b, i) => [b, i]));
  const rules = new Map<string, RuleHits>();
  const ruleOf = (id: string): RuleHits => {
    let r = rules.get(id);
    if (!r) {
      r = {
        rule: id,
        category: "",
        live: 0,
        shadow: 0,
        liveEntities: 0,
        shadowEntities: 0,
        counts: buckets.map(() => 0),
      };
      rules.set(id, r);
    }
    return r;
  };
  for (const s of sums) {
    const r = ruleOf(String(s.rule_id));
    if (s.category) r.category = String(s.category);
    if (Number(s.shadow) === 1) {
      r.shadow += Number(s.n);
      r.shadowEntities += Number(s.entities);
    } else {
      r.live += Number(s.n);
      r.liveEntities += Number(s.entities);
    }
  }
  for (const p of points) {
    const i = index.get(Number(p.bucket));
    if (i === undefined) continue;
    const r = ruleOf(String(p.rule_id));
    r.counts[i] = (r.counts[i] ?? 0) + Number(p.n);
  }
  const sorted = [...rules.values()].sort(
    (a, b) => b.live + b.shadow - (a.live + a.shadow) || a.rule.localeCompare(b.rule),
  );
  return { from: f.from, to: f.to, stepMs, buckets, rules: sorted };
}

/** The distinct entities each of `rules` flagged in the window, as signals compareShadows reads; at most `limit`. */
export async function flaggedEntities(
  client: ClickHouseClient,
  database: string,
  f: SignalFilter,
  rules: readonly string[],
  limit: number,
): Promise<Array<Pick<RiskSignal, "ruleId" | "entity">>> {
  if (rules.length === 0) return [];
  const query = sql`SELECT DISTINCT rule_id, entity_type, entity_id FROM ${ident(database, RISK_SIGNALS_TABLE)} FINAL WHERE ${raw(where(f))} AND has(${rules}, rule_id) LIMIT ${limit}`;
  const rows = await (await client.query({ query, format: "JSONEachRow" })).json<Record<string, unknown>>();
  return rows.map((r) => ({
    ruleId: String(r.rule_id),
    entity: { type: r.entity_type as RiskSignal["entity"]["type"], id: String(r.entity_id) },
  }));
}
