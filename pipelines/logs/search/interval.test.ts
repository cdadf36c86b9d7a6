import assert from "node:assert/strict";
import { test } from "node:test";
import type { SearchError } from "./errors.ts";
import { bucketCount, chooseInterval, esFixedInterval, parseInterval, ROUND_INTERVALS_MS } from "./interval.ts";

const M = 60_000;
const H = 60 * M;

test("an interval is chosen from the window: the shortest round one giving at most the bars asked for", () => {
  assert.equal(chooseInterval(15 * M), 15_000); // 60 bars of 15 s
  assert.equal(chooseInterval(H), M);
  assert.equal(chooseInterval(H + 1), 2 * M);
  assert.equal(chooseInterval(24 * H), 30 * M); // 48 bars
  assert.equal(chooseInterval(7 * 24 * H), 3 * H); // 56 bars
  assert.equal(chooseInterval(10_000), 1000);
  assert.equal(chooseInterval(H, 10), 10 * M);
  assert.equal(chooseInterval(10 * 365 * 24 * H), ROUND_INTERVALS_MS[ROUND_INTERVALS_MS.length - 1]);
  for (const w of [1, 999, 61_000, 5 * H, 3 * 24 * H]) assert.ok(Math.ceil(w / chooseInterval(w)) <= 60, String(w));
});

test("buckets a window touches, partial ones at the ends included", () => {
  assert.equal(bucketCount(0, 59_999, M), 1);
  assert.equal(bucketCount(30_000, 90_000, M), 2);
  assert.equal(bucketCount(0, H, M), 61);
});

test("a typed interval is checked against the window", () => {
  assert.equal(parseInterval("1m", 0, H), M);
  assert.throws(
    () => parseInterval("1s", 0, 24 * H),
    (e: SearchError) => /86401 buckets/.test(e.message) && /longer interval, e\.g\. 2m/.test(e.hint ?? ""),
  );
  assert.throws(() => parseInterval("1 minute", 0, H), /not a period/);
});

test("Elasticsearch's fixed_interval: the largest unit that divides", () => {
  assert.equal(esFixedInterval(M), "1m");
  assert.equal(esFixedInterval(90_000), "90s");
  assert.equal(esFixedInterval(3 * H), "3h");
  assert.equal(esFixedInterval(86_400_000), "1d");
  assert.equal(esFixedInterval(1500), "1500ms");
});
