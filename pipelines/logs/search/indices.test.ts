import assert from "node:assert/strict";
import { test } from "node:test";
import { DailyIndexNamer } from "../../../sinks/elasticsearch/index-name.ts";
import { INDEX_PREFIX_ENV, LogIndices, logsIndexPrefix, utcDaysBetween } from "./indices.ts";

const T = Date.UTC(2026, 10, 20, 23, 50);
const DAY = 86_400_000;

test("the prefix: WEIR_LOGS_INDEX_PREFIX, else logs; checked like the sink checks it", () => {
  assert.equal(logsIndexPrefix({}), "logs");
  assert.equal(logsIndexPrefix({ [INDEX_PREFIX_ENV]: "t_logs_1" }), "t_logs_1");
  assert.throws(() => logsIndexPrefix({ [INDEX_PREFIX_ENV]: "Logs" }), /uppercase/);
  assert.throws(() => new LogIndices("-x"), /starts with/);
});

test("the UTC days of a window, oldest first", () => {
  assert.deepEqual(utcDaysBetween(T, T + 5 * 60_000), ["2026.11.20"]);
  assert.deepEqual(utcDaysBetween(T, T + 15 * 60_000), ["2026.11.20", "2026.11.21"]);
  assert.deepEqual(utcDaysBetween(T - 2 * DAY, T), ["2026.11.18", "2026.11.19", "2026.11.20"]);
});

test("a window's indices name the days, and the services when given; they match the sink's names", () => {
  const ix = new LogIndices("logs");
  assert.equal(ix.forWindow(T - 60_000, T), "logs-*-2026.11.20");
  assert.equal(ix.forWindow(T, T + 15 * 60_000), "logs-*-2026.11.20,logs-*-2026.11.21");
  assert.equal(
    ix.forWindow(T, T + 15 * 60_000, ["gift-svc", "Room Svc"]),
    "logs-gift-svc-2026.11.20,logs-gift-svc-2026.11.21,logs-room_svc-2026.11.20,logs-room_svc-2026.11.21",
  );
  const namer = new DailyIndexNamer("logs");
  assert.ok(ix.forWindow(T, T, ["Room Svc"]).split(",").includes(namer.name("Room Svc", T)));
  // Long windows read every index, and the @timestamp range skips the shards outside it.
  assert.equal(ix.forWindow(T - 90 * DAY, T), "logs-*");
  assert.equal(ix.forWindow(T - 90 * DAY, T, ["gift-svc"]), "logs-gift-svc-*");
  // Too many names for a request line: one pattern per day instead.
  const many = Array.from({ length: 200 }, (_, i) => `service-number-${i}`);
  assert.equal(ix.forWindow(T - 60_000, T, many), "logs-*-2026.11.20");
  assert.equal(ix.ofService("Gift Svc"), "logs-gift_svc-*");
  assert.equal(ix.all, "logs-*");
});
