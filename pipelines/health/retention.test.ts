import assert from "node:assert/strict";
import { test } from "node:test";
import type { ClickHouseClient } from "@clickhouse/client";
import { HEALTH_RETENTION_DEFAULTS, healthRetention } from "./retention.ts";

/** Partitions as system.parts lists them, per table; the client answers the retention's one query. */
function partsClient(parts: Record<string, string[]>): ClickHouseClient {
  return {
    query: async ({ query }: { query: string }) => {
      const table = /table = '([^']+)'/.exec(query)?.[1] ?? "";
      const rows = (parts[table] ?? []).map((partition, i) => ({
        partition,
        partition_id: `p${i}`,
        rows: "1",
        bytes: "1",
      }));
      return { json: async () => rows };
    },
  } as unknown as ClickHouseClient;
}

const NOW = Date.UTC(2026, 10, 21, 12); // 2026-11-21 12:00
const PARTS = {
  health_metrics: ["(1000,20261113)", "(1000,20261114)", "(60000,20260822)", "(60000,20260823)", "(3600000,20251016)"],
  health_alerts: ["202509", "202510", "202611"],
};

test("the health tables: 1 s rows 7 days, 1 min rows 90, 1 h rows 400, alerts 13 months", async () => {
  assert.deepEqual(HEALTH_RETENTION_DEFAULTS, {
    metrics: { 1000: "7d", 60000: "90d", 3600000: "400d" },
    alertMonths: 13,
  });
  const [metrics, alerts] = healthRetention(partsClient(PARTS), {}, { database: "t_health" });
  assert.equal(metrics?.qualifiedName, "t_health.health_metrics");
  assert.equal(alerts?.qualifiedName, "t_health.health_alerts");
  assert.deepEqual(
    (await metrics?.expired(NOW))?.map((p) => p.partition),
    ["(1000,20261113)", "(60000,20260822)", "(3600000,20251016)"],
  );
  assert.deepEqual(
    (await alerts?.expired(NOW))?.map((p) => p.partition),
    ["202509"],
  );
});

test("keep overrides either table's policy; the database defaults to weir", async () => {
  const [metrics, alerts] = healthRetention(partsClient(PARTS), { metrics: { 1000: "9d" }, alertMonths: 1 });
  assert.equal(metrics?.qualifiedName, "weir.health_metrics");
  // Resolutions the override does not name are kept.
  assert.deepEqual(
    (await metrics?.expired(NOW))?.map((p) => p.partition),
    [],
  );
  assert.deepEqual(
    (await alerts?.expired(NOW))?.map((p) => p.partition),
    ["202509", "202510"],
  );
});
