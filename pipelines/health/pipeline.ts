// `weir run health`: the health topology with its ClickHouse sinks, the retention of its tables and
// the daily availability report, all in the worker process.

import { join } from "node:path";
import { createClient } from "@clickhouse/client";
import { RetentionScheduler } from "../../sinks/clickhouse/retention.ts";
import { ClickHouseSink } from "../../sinks/clickhouse/sink.ts";
import { clickhouseCredentials } from "../../sinks/credentials.ts";
import type { Rec } from "../../stream/types.ts";
import type { Pipeline, PipelineContext } from "../types.ts";
import type { HealthAlert } from "./alerts.ts";
import { scheduleDailyReport } from "./report-files.ts";
import { healthRetention } from "./retention.ts";
import type { HealthMetric } from "./rows.ts";
import { DEFAULT_SLO_FILE, SloConfig } from "./slo.ts";
import { buildHealthApp } from "./topology.ts";

export const HEALTH_DATABASE = "weir";

/** A HealthMetric as a weir.health_metrics row (infra/clickhouse/001_health.sql). */
export function metricRow(rec: Rec<HealthMetric>): object {
  const r = rec.value;
  return {
    window_start: Math.floor(r.windowStart / 1000),
    window_ms: r.windowMs,
    level: r.level,
    app: r.app,
    system: r.system,
    service: r.service,
    endpoint: r.endpoint,
    requests: r.requests,
    errors: r.errors,
    slow: r.slow,
    latency_p50_us: r.latencyP50Us,
    latency_p90_us: r.latencyP90Us,
    latency_p99_us: r.latencyP99Us,
    latency_p999_us: r.latencyP999Us,
    latency_max_us: r.latencyMaxUs,
    sketch: r.sketch.toString("base64"),
    final: r.final ? 1 : 0,
    emitted_at: r.emittedAt,
  };
}

/** A HealthAlert as a weir.health_alerts row. */
export function alertRow(rec: Rec<HealthAlert>): object {
  const a = rec.value;
  return {
    id: a.id,
    ts: Math.floor(a.ts / 1000),
    ts_ms: a.ts,
    rule: a.rule,
    kind: a.kind,
    state: a.state,
    severity: a.severity,
    level: a.level,
    app: a.app,
    system: a.system,
    service: a.service,
    endpoint: a.endpoint,
    observed: a.observed,
    threshold: a.threshold,
    objective: a.objective ?? 0,
    long_window_ms: a.longWindowMs ?? 0,
    short_window_ms: a.shortWindowMs ?? 0,
    message: a.message,
    runbook: a.runbook,
    started_at: a.startedAt,
    resolved_at: a.resolvedAt ?? 0,
    emitted_at: Date.now(),
  };
}

export async function healthPipeline(ctx: PipelineContext): Promise<Pipeline> {
  const slo = SloConfig.load(ctx.config ?? DEFAULT_SLO_FILE);
  const database = ctx.env.WEIR_HEALTH_DATABASE ?? HEALTH_DATABASE;
  const auth = ctx.endpoints.clickhouseAuth;
  const common = { url: ctx.endpoints.clickhouseUrl, ...clickhouseCredentials(auth), database, logger: ctx.logger };
  const metricsSink = new ClickHouseSink<HealthMetric>({
    ...common,
    name: "clickhouse-health-metrics",
    table: "health_metrics",
    toRow: metricRow,
  });
  const alertsSink = new ClickHouseSink<HealthAlert>({
    ...common,
    name: "clickhouse-health-alerts",
    table: "health_alerts",
    batchSize: 1000,
    toRow: alertRow,
  });
  const app = buildHealthApp({
    slo,
    metricsSink,
    alertsSink,
    ...(ctx.env.WEIR_HEALTH_APP_ID ? { appId: ctx.env.WEIR_HEALTH_APP_ID } : {}),
    ...(ctx.env.WEIR_HEALTH_INPUT ? { input: ctx.env.WEIR_HEALTH_INPUT } : {}),
    // Isolated runs (the soak) keep their rows and alerts off the shared topics other consoles follow.
    ...(ctx.env.WEIR_HEALTH_METRICS_TOPIC ? { metricsTopic: ctx.env.WEIR_HEALTH_METRICS_TOPIC } : {}),
    ...(ctx.env.WEIR_HEALTH_ALERTS_TOPIC ? { alertsTopic: ctx.env.WEIR_HEALTH_ALERTS_TOPIC } : {}),
    ...(ctx.env.WEIR_HEALTH_DLQ_TOPIC ? { dlqTopic: ctx.env.WEIR_HEALTH_DLQ_TOPIC } : {}),
  });
  // Retention drops whole day partitions hourly; the report covers the previous UTC day, just after midnight.
  const chClient = createClient({ url: ctx.endpoints.clickhouseUrl, ...clickhouseCredentials(auth) });
  const retention = new RetentionScheduler(healthRetention(chClient, {}, { database, logger: ctx.logger }), {
    cron: ctx.env.WEIR_HEALTH_RETENTION_CRON ?? "17 * * * *",
    timezone: "Etc/UTC",
    logger: ctx.logger,
  });
  let report: { stop(): Promise<void> } | null = null;
  return {
    app,
    start() {
      retention.start();
      report = scheduleDailyReport({
        cron: ctx.env.WEIR_HEALTH_REPORT_CRON ?? "5 0 * * *",
        dir: join(ctx.dataDir, "health-reports"),
        clickhouseUrl: ctx.endpoints.clickhouseUrl,
        ...(auth ? { clickhouseAuth: auth } : {}),
        database,
        slo,
        onReport: (r) =>
          ctx.logger.info({ day: r.report.day, file: r.markdownPath }, "daily availability report written"),
        onError: (e) => ctx.logger.error({ err: e }, "daily availability report failed"),
      });
    },
    async stop() {
      retention.stop();
      await report?.stop();
      await chClient.close();
    },
  };
}
