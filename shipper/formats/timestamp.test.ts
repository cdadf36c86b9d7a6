import assert from "node:assert/strict";
import { test } from "node:test";
import { parseTimestamp, timeZone } from "./timestamp.ts";

const utc = timeZone("UTC");

test("ISO-8601 with an offset or Z, any fraction", () => {
  assert.equal(parseTimestamp("2026-11-20T20:30:00.040+08:00", utc), Date.UTC(2026, 10, 20, 12, 30, 0, 40));
  assert.equal(parseTimestamp("2026-11-20T12:30:00Z", utc), Date.UTC(2026, 10, 20, 12, 30));
  assert.equal(parseTimestamp("2026-11-20T12:30:00.123456789Z", utc), Date.UTC(2026, 10, 20, 12, 30, 0, 123));
  assert.equal(parseTimestamp("2026-11-20T12:30:00.5-0530", utc), Date.UTC(2026, 10, 20, 18, 0, 0, 500));
  assert.equal(parseTimestamp("2026-11-20T12:30+01", utc), Date.UTC(2026, 10, 20, 11, 30));
  assert.equal(
    parseTimestamp("2026-11-20T20:30:00.040+08:00", timeZone("America/New_York")),
    Date.UTC(2026, 10, 20, 12, 30, 0, 40),
    "an explicit offset wins over the zone",
  );
});

test("local times in a zone: fixed offsets, Asia/Shanghai, and a zone with daylight saving", () => {
  assert.equal(
    parseTimestamp("2026-11-20 20:30:20.670", timeZone("Asia/Shanghai")),
    Date.UTC(2026, 10, 20, 12, 30, 20, 670),
  );
  assert.equal(parseTimestamp("2026-11-20 20:30:20,670", timeZone("+08:00")), Date.UTC(2026, 10, 20, 12, 30, 20, 670));
  assert.equal(parseTimestamp("2026-11-20 20:30:20", timeZone("-0300")), Date.UTC(2026, 10, 20, 23, 30, 20));
  const ny = timeZone("America/New_York");
  assert.equal(parseTimestamp("2026-07-01 12:00:00", ny), Date.UTC(2026, 6, 1, 16), "EDT, UTC-4");
  assert.equal(parseTimestamp("2026-01-15 12:00:00", ny), Date.UTC(2026, 0, 15, 17), "EST, UTC-5");
  assert.equal(parseTimestamp("2026-03-08 01:59:59", ny), Date.UTC(2026, 2, 8, 6, 59, 59), "the last second of EST");
  assert.equal(parseTimestamp("2026-03-08 03:00:00", ny), Date.UTC(2026, 2, 8, 7), "the first of EDT");
  assert.equal(timeZone("local").name, "local");
});

test("what is not a timestamp is NaN", () => {
  for (const s of [
    "yesterday",
    "",
    "2026-13-01 00:00:00",
    "2026-11-32 00:00:00",
    "2026-11-20 24:00:00",
    "2026-11-20T20:30:00+0800x",
    "2026-11-20T20:30:00.Z",
    "2026/11/20 20:30:00",
    "2026-11-20",
  ]) {
    assert.ok(Number.isNaN(parseTimestamp(s, utc)), s);
  }
});

test("unknown zones are refused with what is accepted", () => {
  assert.throws(
    () => timeZone("Mars/Olympus"),
    /unknown time zone "Mars\/Olympus": use UTC, an offset such as \+08:00/,
  );
});
