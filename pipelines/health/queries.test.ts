import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { burnRate, chooseBucket, HealthQueryError, parseSince, periodEnding, resolutionFor } from "./queries.ts";

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

describe("periods", () => {
  test("--since takes a whole number of seconds, minutes, hours or days", () => {
    assert.equal(parseSince("90s"), 90 * S);
    assert.equal(parseSince("15m"), 15 * M);
    assert.equal(parseSince("1h"), H);
    assert.equal(parseSince("2d"), 2 * D);
    for (const bad of ["", "15", "0m", "1.5h", "-5m", "5w", "15 minutes", "1h30m"]) {
      assert.throws(
        () => parseSince(bad),
        (e: unknown) =>
          e instanceof HealthQueryError && e.kind === "bad-argument" && /90s, 15m, 1h, 2d/.test(e.hint ?? ""),
        bad,
      );
    }
  });

  test("up to an hour reads 1 s rows, up to a week 1 min rows, beyond 1 h rows", () => {
    assert.equal(resolutionFor(15 * M), S);
    assert.equal(resolutionFor(H), S);
    assert.equal(resolutionFor(H + S), M);
    assert.equal(resolutionFor(7 * D), M);
    assert.equal(resolutionFor(30 * D), H);
  });

  test("the period ends at now rounded down to the resolution, and lasts whole windows", () => {
    const now = Date.UTC(2026, 2, 14, 10, 10, 0, 700);
    assert.deepEqual(periodEnding(now, 15 * M, S), {
      from: Date.UTC(2026, 2, 14, 9, 55),
      to: Date.UTC(2026, 2, 14, 10, 10),
    });
    assert.deepEqual(periodEnding(now + 30 * S, 90 * M, M), {
      from: Date.UTC(2026, 2, 14, 8, 40),
      to: Date.UTC(2026, 2, 14, 10, 10),
    });
    const odd = periodEnding(now, H + 30 * S, M); // rounded up to whole minutes
    assert.equal(odd.to - odd.from, 61 * M);
  });
});

describe("buckets", () => {
  test("the smallest round bucket that keeps the series at 120 points or fewer", () => {
    assert.equal(chooseBucket(90 * S, S), S);
    assert.equal(chooseBucket(2 * M, S), S);
    assert.equal(chooseBucket(5 * M, S), 5 * S);
    assert.equal(chooseBucket(15 * M, S), 10 * S);
    assert.equal(chooseBucket(H, S), 30 * S);
    assert.equal(chooseBucket(2 * H, M), M);
    assert.equal(chooseBucket(6 * H, M), 5 * M);
    assert.equal(chooseBucket(2 * D, M), 30 * M);
    assert.equal(chooseBucket(7 * D, M), 2 * H);
    assert.equal(chooseBucket(30 * D, H), 6 * H);
    assert.equal(chooseBucket(400 * D, H), 4 * D);
  });

  test("never finer than the rows, and fewer points when the terminal is narrow", () => {
    assert.equal(chooseBucket(90 * M, M), M); // 90 points of 1 min rows, not 45 s buckets
    assert.equal(chooseBucket(15 * M, S, 60), 15 * S);
    assert.equal(chooseBucket(15 * M, S, 0), 15 * M); // at least one point
    for (const [period, res] of [
      [90 * S, S],
      [15 * M, S],
      [H, S],
      [3 * H, M],
      [2 * D, M],
      [7 * D, M],
      [90 * D, H],
    ] as const) {
      const b = chooseBucket(period, res);
      assert.ok(Math.ceil(period / b) <= 120, `${period}: ${b}`);
      assert.equal(b % res, 0);
    }
  });
});

test("burn rate: error rate over the budget's share (1 means exactly sustainable)", () => {
  assert.ok(Math.abs((burnRate(1000, 1, 0.999) as number) - 1) < 1e-9);
  assert.ok(Math.abs((burnRate(7500, 50, 0.999) as number) - 6.6667) < 1e-4);
  assert.equal(burnRate(1000, 0, 0.999), 0);
  assert.equal(burnRate(0, 0, 0.999), null);
});
