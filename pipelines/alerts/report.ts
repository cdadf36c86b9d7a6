// The report after an event: the alerts of a period, how long each took to be acknowledged and to be
// resolved (by the pipeline, when its condition cleared, or by a person), per scene and severity, with
// the medians and the worst. What a post-incident review starts from.
import type { BoardAlert } from "./board.ts";

export interface AlertReportRow {
  id: string;
  scene: string;
  severity: BoardAlert["severity"];
  rule: string;
  target: string;
  start: string;
  /** Seconds from firing to the first acknowledgement; null when nobody acknowledged it. */
  timeToAcknowledgeS: number | null;
  acknowledgedBy: string | null;
  /** Seconds from firing to resolution (cleared, or resolved by hand, whichever came first); null while open. */
  timeToResolveS: number | null;
  resolvedBy: string | null;
  message: string;
  runbook: string;
}

export interface AlertFigures {
  alerts: number;
  acknowledged: number;
  resolved: number;
  /** Seconds; null when no alert had one. */
  medianTimeToAcknowledgeS: number | null;
  maxTimeToAcknowledgeS: number | null;
  medianTimeToResolveS: number | null;
  maxTimeToResolveS: number | null;
}

export interface AlertReport {
  from: string;
  to: string;
  totals: AlertFigures;
  byScene: Array<{ scene: string } & AlertFigures>;
  bySeverity: Array<{ severity: BoardAlert["severity"] } & AlertFigures>;
  alerts: AlertReportRow[];
}

/** The report of the alerts that started in [fromMs, toMs). */
export function alertReport(alerts: readonly BoardAlert[], fromMs: number, toMs: number): AlertReport {
  const rows = alerts
    .filter((a) => {
      const t = Date.parse(a.start);
      return t >= fromMs && t < toMs;
    })
    .map(reportRow)
    .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const group = <K extends string>(key: (r: AlertReportRow) => K) => {
    const m = new Map<K, AlertReportRow[]>();
    for (const r of rows) m.set(key(r), [...(m.get(key(r)) ?? []), r]);
    return [...m.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
  };
  return {
    from: new Date(fromMs).toISOString(),
    to: new Date(toMs).toISOString(),
    totals: figures(rows),
    byScene: group((r) => r.scene).map(([scene, rs]) => ({ scene, ...figures(rs) })),
    bySeverity: group((r) => r.severity).map(([severity, rs]) => ({ severity, ...figures(rs) })),
    alerts: rows,
  };
}

export function reportRow(a: BoardAlert): AlertReportRow {
  const start = Date.parse(a.start);
  const ack = a.acknowledged ? Date.parse(a.acknowledged.at) : null;
  const cleared = a.end !== null ? Date.parse(a.end) : null;
  const byHand = a.resolvedBy ? Date.parse(a.resolvedBy.at) : null;
  const resolved = cleared !== null && byHand !== null ? Math.min(cleared, byHand) : (cleared ?? byHand ?? null);
  const resolvedBy =
    resolved === null ? null : byHand !== null && resolved === byHand ? (a.resolvedBy?.by ?? null) : "pipeline";
  return {
    id: a.id,
    scene: a.scene,
    severity: a.severity,
    rule: a.rule,
    target: a.target,
    start: a.start,
    timeToAcknowledgeS: ack === null ? null : seconds(ack - start),
    acknowledgedBy: a.acknowledged?.by ?? null,
    timeToResolveS: resolved === null ? null : seconds(resolved - start),
    resolvedBy,
    message: a.message,
    runbook: a.runbook,
  };
}

function seconds(ms: number): number {
  return Math.max(0, Math.round(ms / 100) / 10);
}

function figures(rows: readonly AlertReportRow[]): AlertFigures {
  const tta = rows.map((r) => r.timeToAcknowledgeS).filter((x): x is number => x !== null);
  const ttr = rows.map((r) => r.timeToResolveS).filter((x): x is number => x !== null);
  return {
    alerts: rows.length,
    acknowledged: tta.length,
    resolved: ttr.length,
    medianTimeToAcknowledgeS: median(tta),
    maxTimeToAcknowledgeS: tta.length > 0 ? Math.max(...tta) : null,
    medianTimeToResolveS: median(ttr),
    maxTimeToResolveS: ttr.length > 0 ? Math.max(...ttr) : null,
  };
}

export function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}
