import assert from "node:assert/strict";
import { test } from "node:test";
import type { Client } from "@elastic/elasticsearch";
import { dayExpired, IndexRetention, matchesPattern, RetentionRuleError } from "./retention.ts";

test("index patterns match as Elasticsearch's wildcards do", () => {
  assert.ok(matchesPattern("logs-*", "logs-gift-svc-2026.11.20"));
  assert.ok(!matchesPattern("logs-*", "logsx-gift-2026.11.20"));
  assert.ok(!matchesPattern("logs-*", "old-logs-gift-2026.11.20"));
  assert.ok(matchesPattern("logs-*-2026.*", "logs-a-2026.11.20"));
  assert.ok(!matchesPattern("logs-*-2025.*", "logs-a-2026.11.20"));
  assert.ok(matchesPattern("logs-audit-*", "logs-audit-x-2026.11.20"));
  assert.ok(matchesPattern("logs-a", "logs-a"));
  assert.ok(!matchesPattern("logs-a", "logs-ab"));
  assert.ok(!matchesPattern("ab*ba", "aba"), "the parts of a pattern do not overlap");
});

test("a day expires when its end plus the keep duration has passed", () => {
  const day = Date.UTC(2026, 10, 13);
  const keep = 7 * 86_400_000;
  assert.ok(dayExpired(day, keep, Date.UTC(2026, 10, 21)));
  assert.ok(!dayExpired(day, keep, Date.UTC(2026, 10, 21) - 1));
  assert.ok(!dayExpired(Date.UTC(2026, 10, 14), keep, Date.UTC(2026, 10, 21, 12)));
});

test("rules must name their indices: no pattern that starts with a wildcard, no bad keep", () => {
  const client = {} as Client;
  for (const pattern of ["*", "*-2026.11.20", "", ".ds-*", "Logs-*", "logs-*,other-*"]) {
    assert.throws(() => new IndexRetention({ client, rules: [{ pattern, keep: "7d" }] }), RetentionRuleError, pattern);
  }
  assert.throws(() => new IndexRetention({ client, rules: [{ pattern: "logs-*", keep: "a week" }] }), /not a duration/);
  assert.throws(() => new IndexRetention({ client, rules: [] }), RetentionRuleError);
  const r = new IndexRetention({
    client,
    rules: [
      { pattern: "logs-audit-*", keep: "90d" },
      { pattern: "logs-*", keep: "7d" },
    ],
  });
  assert.deepEqual(r.patterns, ["logs-audit-*", "logs-*"]);
  assert.deepEqual(
    r.rules.map((x) => x.keepMs),
    [90 * 86_400_000, 7 * 86_400_000],
  );
});
