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
