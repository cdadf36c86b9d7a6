import assert from "node:assert/strict";
import { test } from "node:test";
import { assembleRuleHits, hitStep } from "./signal-stats.ts";

test("hitStep: the smallest bucket that keeps the window within the points", () => {
  assert.equal(hitStep(15 * 60_000, 120), 10_000);
  assert.equal(hitStep(3_600_000, 120), 60_000);
  assert.equal(hitStep(86_400_000, 120), 900_000);
  assert.equal(hitStep(7 * 86_400_000, 120), 10_800_000);
  assert.equal(hitStep(31 * 86_400_000, 120), 86_400_000);
  assert.equal(hitStep(31 * 86_400_000, 10), 86_400_000, "at most a day, whatever the points");
});

test("assembleRuleHits: counts in their buckets, live and shadow apart, busiest rule first", () => {
  const buckets = [0, 60_000, 120_000];
  const r = assembleRuleHits(
    { from: 0, to: 180_000 },
    60_000,
    buckets,
    [
      { rule_id: "a", bucket: "0", n: "2" },
      { rule_id: "a", bucket: "120000", n: "1" },
      { rule_id: "b", bucket: "60000", n: "5" },
      { rule_id: "b", bucket: "999999", n: "7" },
    ],
    [
      { rule_id: "a", category: "spam", shadow: 0, n: "3", entities: "2" },
      { rule_id: "b", category: "fake_phone", shadow: 1, n: "4", entities: "4" },
      { rule_id: "b", category: "fake_phone", shadow: 0, n: "1", entities: "1" },
    ],
  );
  assert.deepEqual(
    r.rules.map((x) => [x.rule, x.category, x.live, x.shadow, x.liveEntities, x.shadowEntities, x.counts]),
    [
      ["b", "fake_phone", 1, 4, 1, 4, [0, 5, 0]],
      ["a", "spam", 3, 0, 2, 0, [2, 0, 1]],
    ],
  );
  assert.deepEqual([r.stepMs, r.buckets], [60_000, buckets]);
});
