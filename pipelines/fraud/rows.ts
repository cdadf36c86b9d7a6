// A RiskSignal as a row of weir.risk_signals (infra/clickhouse/003_risk_signals.sql), with the
// category of its rule; and back, for `weir risk signals`.
import type { RiskSignal } from "../../schemas/types.generated.ts";

export const RISK_SIGNALS_TABLE = "risk_signals";

export interface RiskSignalRow {
  ts: number;
  ts_ms: number;
  id: string;
  rule_id: string;
  rule_version: number;
  category: string;
  severity: string;
  score: number;
  action: string;
  shadow: number;
  entity_type: string;
  entity_id: string;
  matched_keys: string[];
  matched_values: string[];
  count_keys: string[];
  count_values: number[];
  window_start: number;
  window_end: number;
  source_event_ids: string[];
  explanation: string;
}

export function signalRow(s: RiskSignal, category: string): RiskSignalRow {
  const matched = Object.entries(s.evidence.matched);
  const counts = Object.entries(s.evidence.counts);
  return {
    ts: Math.floor(s.ts / 1000),
    ts_ms: s.ts,
    id: s.id,
    rule_id: s.ruleId,
    rule_version: s.ruleVersion,
    category,
    severity: s.severity,
    score: s.score,
    action: s.action,
    shadow: s.shadow ? 1 : 0,
    entity_type: s.entity.type,
    entity_id: s.entity.id,
    matched_keys: matched.map(([k]) => k),
    matched_values: matched.map(([, v]) => v),
    count_keys: counts.map(([k]) => k),
    count_values: counts.map(([, v]) => v),
    window_start: s.evidence.windowStart ?? 0,
    window_end: s.evidence.windowEnd ?? 0,
    source_event_ids: s.evidence.sourceEventIds,
    explanation: s.evidence.explanation,
  };
}

/** A row read back (JSONEachRow: UInt64 and Int64 come as strings) as the RiskSignal fields plus category. */
export function rowSignal(r: Record<string, unknown>): RiskSignal & { category: string } {
  const num = (v: unknown) => Number(v);
  const keys = (r.matched_keys as string[]) ?? [];
  const values = (r.matched_values as string[]) ?? [];
  const ckeys = (r.count_keys as string[]) ?? [];
  const cvalues = ((r.count_values as unknown[]) ?? []).map(num);
  return {
    id: String(r.id),
    ts: num(r.ts_ms),
    ruleId: String(r.rule_id),
    ruleVersion: num(r.rule_version),
    severity: r.severity as RiskSignal["severity"],
    score: num(r.score),
    action: r.action as RiskSignal["action"],
    shadow: num(r.shadow) === 1,
    entity: { type: r.entity_type as RiskSignal["entity"]["type"], id: String(r.entity_id) },
    evidence: {
      matched: Object.fromEntries(keys.map((k, i) => [k, values[i] ?? ""])),
      counts: Object.fromEntries(ckeys.map((k, i) => [k, cvalues[i] ?? 0])),
      windowStart: num(r.window_start) || null,
      windowEnd: num(r.window_end) || null,
      sourceEventIds: (r.source_event_ids as string[]) ?? [],
      explanation: String(r.explanation),
    },
    category: String(r.category),
  };
}
