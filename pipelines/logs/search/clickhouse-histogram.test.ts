import assert from "node:assert/strict";
import { test } from "node:test";
import { PiiKey } from "../pii/key.ts";
import { PiiMasker } from "../pii/masker.ts";
import { ClickHouseLogHistogram, chooseHistogramStore } from "./clickhouse-histogram.ts";
import type { SearchError } from "./errors.ts";

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 10, 20, 12);

test("auto: Elasticsearch while it keeps the window, ClickHouse before its retention; an explicit store wins", () => {
  assert.equal(chooseHistogramStore("auto", NOW - DAY, NOW, 7 * DAY, true), "elasticsearch");
  assert.equal(chooseHistogramStore("auto", NOW - 7 * DAY, NOW, 7 * DAY, true), "elasticsearch");
  assert.equal(chooseHistogramStore("auto", NOW - 7 * DAY - 1, NOW, 7 * DAY, true), "clickhouse");
  assert.equal(chooseHistogramStore("auto", NOW - 30 * DAY, NOW, 7 * DAY, false), "elasticsearch");
  assert.equal(chooseHistogramStore("clickhouse", NOW - DAY, NOW, 7 * DAY, true), "clickhouse");
  assert.equal(chooseHistogramStore("elasticsearch", NOW - 30 * DAY, NOW, 7 * DAY, true), "elasticsearch");
});

const histogram = new ClickHouseLogHistogram({
  url: "http://127.0.0.1:9",
  database: "weir",
  table: "logs",
  pii: new PiiMasker({}, new PiiKey("k".repeat(32), "given")),
});

test("the SQL: buckets on ts_ms, partitions pruned on ts, the query, services and levels; values quoted", () => {
  const from = NOW - 3_600_000 + 250;
  const sql = histogram.sql(
    { from, to: NOW, query: "msg:upstream", services: ["gift-svc", "o'brien"], levels: ["warn+"] },
    60_000,
  );
  assert.equal(
    sql,
    "SELECT intDiv(ts_ms, 60000) * 60000 AS start, count() AS count FROM `weir`.`logs` " +
      `WHERE ts >= toDateTime(${Math.floor(from / 1000)}) AND ts <= toDateTime(${NOW / 1000}) AND ts_ms >= ${from} AND ts_ms <= ${NOW} ` +
      "AND positionCaseInsensitiveUTF8(message, 'upstream') > 0 AND service IN ('gift-svc', 'o\\'brien') " +
      "AND level IN ('WARN', 'ERROR', 'FATAL') GROUP BY start ORDER BY start",
  );
  // A phone number is counted by its token; the raw number is not in the SQL (nor in system.query_log).
  const pii = histogram.sql({ from, to: NOW, query: "13800138000" }, 60_000);
  assert.ok(!pii.includes("13800138000") && /pii:ph_[0-9a-f]{16}/.test(pii));
  // The scope is in the WHERE clause, and asking outside it is refused before ClickHouse is asked.
  assert.match(
    histogram.sql({ from, to: NOW, scope: ["gift-svc"] }, 60_000),
    / AND service IN \('gift-svc'\) GROUP BY/,
  );
  assert.throws(
    () => histogram.sql({ from, to: NOW, scope: ["gift-svc"], services: ["pay-svc"] }, 60_000),
    (e: SearchError) => e.kind === "forbidden",
  );
});
