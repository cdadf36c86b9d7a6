import assert from "node:assert/strict";
import { test } from "node:test";
import {
  DailyIndexNamer,
  dailyIndexDay,
  IndexNameError,
  MAX_KEY_BYTES,
  prefixProblem,
  sanitizeIndexPart,
  utcDay,
} from "./index-name.ts";

test("keys become valid index-name parts: lowercase, refused characters as _, never empty", () => {
  assert.equal(sanitizeIndexPart("gift-svc"), "gift-svc");
  assert.equal(sanitizeIndexPart("Gift-Svc"), "gift-svc");
  assert.equal(sanitizeIndexPart('a\\b/c*d?e"f<g>h|i,j#k l:m'), "a_b_c_d_e_f_g_h_i_j_k_l_m");
  assert.equal(sanitizeIndexPart(""), "_unknown");
  assert.equal(sanitizeIndexPart("."), "_unknown");
  assert.equal(sanitizeIndexPart(".."), "_unknown");
  assert.equal(sanitizeIndexPart("Überweisung"), "überweisung");
  const long = sanitizeIndexPart("é".repeat(200));
  assert.ok(Buffer.byteLength(long) <= MAX_KEY_BYTES);
  assert.equal(long, "é".repeat(MAX_KEY_BYTES / 2), "cut on whole characters");
});

test("a prefix is checked, not repaired: configuration mistakes are named", () => {
  assert.equal(prefixProblem("logs"), null);
  assert.equal(prefixProblem("t_es_abc123"), null);
  assert.match(prefixProblem("Logs") ?? "", /uppercase/);
  assert.match(prefixProblem("logs*") ?? "", /one of/);
  assert.match(prefixProblem("_logs") ?? "", /starts with/);
  assert.match(prefixProblem("") ?? "", /empty/);
  assert.throws(
    () => new DailyIndexNamer("Logs"),
    (e: unknown) => e instanceof IndexNameError && /"Logs"/.test(e.message),
  );
});

test("daily index names use the UTC day of the event time", () => {
  const namer = new DailyIndexNamer("logs");
  assert.equal(namer.name("gift-svc", Date.UTC(2026, 10, 20, 23, 59, 59, 999)), "logs-gift-svc-2026.11.20");
  assert.equal(namer.name("gift-svc", Date.UTC(2026, 10, 21)), "logs-gift-svc-2026.11.21");
  // Back to an earlier day after the cache moved on.
  assert.equal(namer.name("Room Svc", Date.UTC(2026, 0, 5, 3)), "logs-room_svc-2026.01.05");
  assert.equal(namer.name("room svc", Date.UTC(1969, 11, 31, 23)), "logs-room_svc-1969.12.31");
  assert.equal(namer.pattern, "logs-*");
  assert.throws(() => namer.name("x", Number.NaN), IndexNameError);
  assert.equal(utcDay(Date.UTC(2026, 8, 9)), "2026.09.09");
});

test("the day of a daily index is read back from its name, only when it is a real date", () => {
  assert.equal(dailyIndexDay("logs-gift-svc-2026.11.20"), Date.UTC(2026, 10, 20));
  assert.equal(dailyIndexDay("logs-2026.11.20-x"), null);
  assert.equal(dailyIndexDay("logs-gift-svc-2026.02.30"), null);
  assert.equal(dailyIndexDay("logs-gift-svc-2026.13.01"), null);
  assert.equal(dailyIndexDay("logs-gift-svc"), null);
  const namer = new DailyIndexNamer("logs");
  const t = Date.UTC(2026, 1, 28, 17);
  assert.equal(dailyIndexDay(namer.name("a-b", t)), Date.UTC(2026, 1, 28));
});
