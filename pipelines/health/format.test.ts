import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { formatAvailability, formatDuration, formatLatencyUs, formatShare, formatTarget } from "./format.ts";

describe("formats", () => {
  test("availability never rounds up, and shows six nines", () => {
    assert.equal(formatAvailability(0.999), "99.9000%");
    assert.equal(formatAvailability(0.9999996), "99.9999%");
    assert.equal(formatAvailability(0.99999999), "99.9999%");
    assert.equal(formatAvailability(1), "100%");
    assert.equal(formatAvailability(null), "–");
    assert.equal(formatTarget(0.9990000000000001), "99.9%");
    assert.equal(formatTarget(0.99999), "99.999%");
    assert.equal(formatShare(-0.5), "-50.0%");
  });

  test("durations and latencies in the unit that fits", () => {
    assert.equal(formatDuration(0), "0s");
    assert.equal(formatDuration(0.0864), "0.09s");
    assert.equal(formatDuration(8.64), "8.6s");
    assert.equal(formatDuration(72), "1m 12s");
    assert.equal(formatDuration(864), "14m 24s");
    assert.equal(formatDuration(8640), "2h 24m");
    assert.equal(formatDuration(31_536), "8h 46m");
    assert.equal(formatDuration(3_153_600), "36d 12h");
    assert.equal(formatLatencyUs(850), "850µs");
    assert.equal(formatLatencyUs(149_350), "149ms");
    assert.equal(formatLatencyUs(1_234_567), "1.23s");
    assert.equal(formatLatencyUs(null), "–");
  });
});
