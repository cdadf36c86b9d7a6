// Reading signals back from weir.risk_signals by event time, for `weir risk signals` (and `explain`).
import type { ClickHouseClient } from "@clickhouse/client";
import type { RiskSignal } from "../../schemas/types.generated.ts";
import { ident, raw, sql } from "../../sinks/clickhouse/sql.ts";
import { RISK_SIGNALS_TABLE, rowSignal } from "./rows.ts";

export interface SignalQuery {
  from: number;
  to: number;
  rule?: string;
  category?: string;
  limit: number;
}

/** Signals with from <= ts < to, oldest first, one row per id (FINAL: replays written twice count once). */
export async function readSignals(
  client: ClickHouseClient,
  database: string,
  q: SignalQuery,
): Promise<Array<RiskSignal & { category: string }>> {
  const filters = [
    sql`ts >= toDateTime(${Math.floor(q.from / 1000)}) AND ts_ms >= ${q.from} AND ts_ms < ${q.to}`,
    ...(q.rule ? [sql`rule_id = ${q.rule}`] : []),
    ...(q.category ? [sql`category = ${q.category}`] : []),
  ];
  const query = sql`SELECT * FROM ${ident(database, RISK_SIGNALS_TABLE)} FINAL WHERE ${raw(filters.join(" AND "))} ORDER BY ts_ms, id LIMIT ${q.limit}`;
  const rows = await (await client.query({ query, format: "JSONEachRow" })).json<Record<string, unknown>>();
  return rows.map(rowSignal);
}

/** One signal by id, looked for from event time `from` on; undefined when absent. */
export async function readSignal(
  client: ClickHouseClient,
  database: string,
  id: string,
  from: number,
): Promise<(RiskSignal & { category: string }) | undefined> {
  const query = sql`SELECT * FROM ${ident(database, RISK_SIGNALS_TABLE)} FINAL WHERE ts >= toDateTime(${Math.floor(from / 1000)}) AND id = ${id} LIMIT 1`;
  const rows = await (await client.query({ query, format: "JSONEachRow" })).json<Record<string, unknown>>();
  return rows[0] ? rowSignal(rows[0]) : undefined;
}

/** A rule's hits against another's (a shadow candidate and the live rule it would replace) over a period. */
export interface RuleComparison {
  rule: string;
  replaces: string;
  from: number;
  to: number;
  /** Signals and distinct entities of each rule. */
  signals: { rule: number; replaces: number };
  entities: { rule: number; replaces: number };
  both: number;
  onlyRule: number;
  onlyReplaces: number;
  /** Whether the candidate's signals were recorded in shadow (never acted on). */
  ruleShadow: boolean;
  /** A few entities flagged by only one of them, to look at with weir risk signals / explain. */
  samples: { onlyRule: string[]; onlyReplaces: string[] };
}

/** The entities two rules flagged from `from` to `to`, from weir.risk_signals (FINAL: a replay counts once). */
export async function compareRules(
  client: ClickHouseClient,
  database: string,
  q: { rule: string; replaces: string; from: number; to: number; samples?: number },
): Promise<RuleComparison> {
  const query = sql`SELECT rule_id, entity_type, entity_id, count() AS signals, max(shadow) AS shadow FROM ${ident(database, RISK_SIGNALS_TABLE)} FINAL WHERE ts >= toDateTime(${Math.floor(q.from / 1000)}) AND ts_ms >= ${q.from} AND ts_ms < ${q.to} AND rule_id IN (${q.rule}, ${q.replaces}) GROUP BY rule_id, entity_type, entity_id`;
  const rows = await (await client.query({ query, format: "JSONEachRow" })).json<{
    rule_id: string;
    entity_type: string;
    entity_id: string;
    signals: string | number;
    shadow: string | number;
  }>();
  const mine = new Set<string>();
  const theirs = new Set<string>();
  const signals = { rule: 0, replaces: 0 };
  let ruleShadow = false;
  for (const r of rows) {
    const entity = `${r.entity_type} ${r.entity_id}`;
    if (r.rule_id === q.rule) {
      mine.add(entity);
      signals.rule += Number(r.signals);
      if (Number(r.shadow) === 1) ruleShadow = true;
    } else {
      theirs.add(entity);
      signals.replaces += Number(r.signals);
    }
  }
  const both = [...mine].filter((e) => theirs.has(e)).length;
  const n = q.samples ?? 5;
  return {
    rule: q.rule,
    replaces: q.replaces,
    from: q.from,
    to: q.to,
    signals,
    entities: { rule: mine.size, replaces: theirs.size },
    both,
    onlyRule: mine.size - both,
    onlyReplaces: theirs.size - both,
    ruleShadow,
    samples: {
      onlyRule: [...mine]
        .filter((e) => !theirs.has(e))
        .sort()
        .slice(0, n),
      onlyReplaces: [...theirs]
        .filter((e) => !mine.has(e))
        .sort()
        .slice(0, n),
    },
  };
}
