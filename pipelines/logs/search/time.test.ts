import assert from "node:assert/strict";
import { test } from "node:test";
import { SearchError } from "./errors.ts";
import { formatPeriod, parsePeriod, parseTime, resolveWindow } from "./time.ts";

const NOW = Date.UTC(2026, 10, 20, 12, 30, 0);

test("periods: a number and a unit", () => {
  assert.equal(parsePeriod("15m"), 900_000);
  assert.equal(parsePeriod("90s"), 90_000);
  assert.equal(parsePeriod("1.5h"), 5_400_000);
  assert.equal(parsePeriod("7d"), 7 * 86_400_000);
  assert.equal(parsePeriod("2w"), 14 * 86_400_000);
  assert.equal(parsePeriod("250ms"), 250);
  for (const bad of ["15", "m", "15 minutes", "-5m", "0s", "15M"]) {
    assert.throws(
      () => parsePeriod(bad),
      (e: unknown) => e instanceof SearchError && e.kind === "bad-request" && /90s, 15m/.test(e.hint ?? ""),
      bad,
    );
  }
  assert.equal(formatPeriod(900_000), "15m");
  assert.equal(formatPeriod(5_400_000), "90m");
  assert.equal(formatPeriod(86_400_000), "1d");
  assert.equal(formatPeriod(1500), "1500ms");
});

test("times: ISO with and without a zone, epoch ms, now, now-period, a period ago", () => {
  assert.equal(parseTime("2026-11-20T12:00:00Z", NOW), Date.UTC(2026, 10, 20, 12));
  assert.equal(parseTime("2026-11-20 20:00:00+08:00", NOW), Date.UTC(2026, 10, 20, 12));
  assert.equal(parseTime("2026-11-20T12:00:00", NOW), new Date(2026, 10, 20, 12).getTime());
  assert.equal(parseTime("2026-11-20 12:00", NOW), new Date(2026, 10, 20, 12).getTime());
  assert.equal(parseTime(String(NOW - 5), NOW), NOW - 5);
  assert.equal(parseTime("now", NOW), NOW);
  assert.equal(parseTime("now-1h", NOW), NOW - 3_600_000);
  assert.equal(parseTime("2h", NOW), NOW - 7_200_000);
  assert.throws(() => parseTime("yesterday", NOW), /is not a time/);
  assert.throws(() => parseTime("now-soon", NOW), /is not a period/);
});

test("windows: since, from/to, defaults, and refusals", () => {
  assert.deepEqual(resolveWindow({}, 900_000, NOW), { from: NOW - 900_000, to: NOW });
  assert.deepEqual(resolveWindow({ since: "1h" }, 900_000, NOW), { from: NOW - 3_600_000, to: NOW });
  assert.deepEqual(resolveWindow({ since: "1h", to: "30m" }, 900_000, NOW), {
    from: NOW - 5_400_000,
    to: NOW - 1_800_000,
  });
  assert.deepEqual(resolveWindow({ from: "2h", to: "1h" }, 900_000, NOW), {
    from: NOW - 7_200_000,
    to: NOW - 3_600_000,
  });
  assert.deepEqual(resolveWindow({ to: "1h" }, 900_000, NOW), { from: NOW - 4_500_000, to: NOW - 3_600_000 });
  assert.throws(() => resolveWindow({ since: "1h", from: "2h" }, 1, NOW), /both since and from/);
  assert.throws(() => resolveWindow({ from: "1h", to: "2h" }, 1, NOW), /ends before it starts/);
});
