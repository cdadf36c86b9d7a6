import assert from "node:assert/strict";
import { test } from "node:test";
import {
  dailyExpiry,
  dayStart,
  monthlyExpiry,
  PartitionParseError,
  parsePartition,
  resolutionDailyExpiry,
} from "./retention.ts";

test("partition texts from system.parts are read into values", () => {
  assert.deepEqual(parsePartition("(1000,20261120)"), [1000, 20261120]);
  assert.deepEqual(parsePartition("(3600000, 20251021)"), [3600000, 20251021]);
  assert.deepEqual(parsePartition("202611"), [202611]);
  assert.deepEqual(parsePartition("-7"), [-7]);
  assert.deepEqual(parsePartition("'2026-11-20'"), ["2026-11-20"]);
  assert.deepEqual(parsePartition("('x\\'y',202611)"), ["x'y", 202611]);
  assert.deepEqual(parsePartition("tuple()"), []);
  assert.deepEqual(parsePartition("([1,2],'a')"), [[1, 2], "a"]);
  for (const bad of ["(1000,", "abc", "(1 2)", "'open", "12 13"]) {
    assert.throws(() => parsePartition(bad), PartitionParseError, bad);
  }
});

test("dayStart reads YYYYMMDD as a UTC day and refuses what is no date", () => {
  assert.equal(dayStart(20261120), Date.UTC(2026, 10, 20));
  assert.ok(Number.isNaN(dayStart(20261131)));
  assert.ok(Number.isNaN(dayStart(202611)));
});

test("a day partition expires only when its last second is older than keep", () => {
  const rule = dailyExpiry("7d");
  const day = Date.UTC(2026, 10, 13); // 2026-11-13
  const lastKept = day + 8 * 86_400_000 - 1; // 2026-11-20T23:59:59.999: the 13th's last ms is 7 days old only at the next ms
  assert.equal(rule([20261113], lastKept), false);
  assert.equal(rule([20261113], lastKept + 1), true);
  assert.equal(rule(["not a day"], lastKept + 1), false);
});

test("month partitions keep the given number of months after the month ends", () => {
  const rule = monthlyExpiry(13);
  const now = Date.UTC(2026, 10, 21); // 2026-11-21
  assert.equal(rule([202510], now), false); // October 2025 ended 2025-11-01: 13 months later is 2026-12-01
  assert.equal(rule([202509], now), true); // September 2025 ended 2025-10-01: 13 months later is 2026-11-01
  assert.equal(rule([202611], now), false);
  assert.equal(rule([202613], now), false);
  assert.throws(() => monthlyExpiry(1.5), RangeError);
});

test("each resolution of (window_ms, day) partitions keeps its own days; unknown resolutions are kept", () => {
  const rule = resolutionDailyExpiry({ 1000: "7d", 60000: "90d", 3600000: "400d" });
  const now = Date.UTC(2026, 10, 21, 12); // 2026-11-21 12:00
  assert.equal(rule([1000, 20261113], now), true); // 8 days old
  assert.equal(rule([1000, 20261114], now), false); // ends 2026-11-15, + 7 d = 2026-11-22
  assert.equal(rule([60000, 20261113], now), false);
  assert.equal(rule([60000, 20260822], now), true); // ended 2026-08-23, + 90 d = 2026-11-21 00:00
  assert.equal(rule([60000, 20260823], now), false);
  assert.equal(rule([3600000, 20251016], now), true); // ended 2025-10-17, + 400 d = 2026-11-21
  assert.equal(rule([3600000, 20251017], now), false);
  assert.equal(rule([5000, 20200101], now), false);
});
