// How long the health pipeline's tables keep their data, as partition retentions
// (sinks/clickhouse/retention.ts): `health_metrics` (partitions `(window_ms, YYYYMMDD)`) keeps each
// resolution its own number of days, `health_alerts` (partitions `YYYYMM`) whole months.
import type { ClickHouseClient } from "@clickhouse/client";
import type { Logger } from "pino";
import { monthlyExpiry, PartitionRetention, resolutionDailyExpiry } from "../../sinks/clickhouse/retention.ts";
import type { Duration } from "../../stream/types.ts";

/** How long the health pipeline's tables keep their data. */
export interface HealthRetentionKeep {
  /** window_ms -> keep duration for weir.health_metrics. Default 1 s rows 7 days, 1 min rows 90 days, 1 h rows 400 days. */
  metrics?: Readonly<Record<number, Duration>>;
  /** Months weir.health_alerts keeps. Default 13. */
  alertMonths?: number;
}

export const HEALTH_RETENTION_DEFAULTS = {
  metrics: { 1000: "7d", 60000: "90d", 3600000: "400d" },
  alertMonths: 13,
} as const satisfies Required<HealthRetentionKeep>;

/**
 * The health tables' retention: `health_metrics` is partitioned by (window_ms, YYYYMMDD) and each
 * resolution keeps its own number of days; `health_alerts` is partitioned by YYYYMM.
 */
export function healthRetention(
  client: ClickHouseClient,
  keep: HealthRetentionKeep = {},
  options: { database?: string; logger?: Logger; dryRun?: boolean } = {},
): PartitionRetention[] {
  const database = options.database ?? "weir";
  const common = {
    client,
    database,
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.dryRun ? { dryRun: true } : {}),
  };
  return [
    new PartitionRetention({
      ...common,
      table: "health_metrics",
      isExpired: resolutionDailyExpiry(keep.metrics ?? HEALTH_RETENTION_DEFAULTS.metrics),
    }),
    new PartitionRetention({
      ...common,
      table: "health_alerts",
      isExpired: monthlyExpiry(keep.alertMonths ?? HEALTH_RETENTION_DEFAULTS.alertMonths),
    }),
  ];
}
