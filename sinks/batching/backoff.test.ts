import assert from "node:assert/strict";
import { test } from "node:test";
import { backoff, retryDelay } from "./backoff.ts";

test("backoff doubles up to its cap, with half of each step random; Retry-After lengthens it, never past the cap", () => {
  assert.equal(
    backoff(1, 200, 15_000, () => 0),
    100,
  );
  assert.equal(
    backoff(1, 200, 15_000, () => 1),
    200,
  );
  assert.equal(
    backoff(4, 200, 15_000, () => 1),
    1600,
  );
  assert.equal(
    backoff(20, 200, 15_000, () => 1),
    15_000,
  );
  assert.equal(
    backoff(20, 200, 15_000, () => 0),
    7_500,
  );
  assert.equal(
    backoff(30, 100, 10_000, () => 0.5),
    7500,
  );
  const seen = new Set(Array.from({ length: 50 }, () => backoff(3, 200, 15_000)));
  for (const d of seen) assert.ok(d >= 400 && d <= 800);
  assert.ok(seen.size > 10, "jittered");
  assert.equal(
    retryDelay(1, 200, 15_000, 5000, () => 0),
    5000,
  );
  assert.equal(
    retryDelay(1, 200, 15_000, 60_000, () => 0),
    15_000,
  );
  assert.equal(
    retryDelay(1, 200, 15_000, null, () => 0),
    100,
  );
});
