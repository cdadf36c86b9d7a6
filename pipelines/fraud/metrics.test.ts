import assert from "node:assert/strict";
import { test } from "node:test";
import { Registry } from "prom-client";
import { newCounters } from "./engine/evaluate.ts";
import { registerRuleMetrics } from "./metrics.ts";

test("per-rule counters are read when /metrics is scraped", async () => {
  const registry = new Registry();
  const a = newCounters();
  const counters = new Map([["r.a", a]]);
  registerRuleMetrics(registry, counters, "abc123");
  a.evaluations = 10;
  a.errors = 2;
  a.nanos = 5e8;
  const text = await registry.metrics();
  assert.match(text, /weir_fraud_rule_evaluations_total\{rule="r\.a",snapshot="abc123"\} 10/);
  assert.match(text, /weir_fraud_rule_errors_total\{rule="r\.a",snapshot="abc123"\} 2/);
  assert.match(text, /weir_fraud_rule_evaluation_seconds_total\{rule="r\.a",snapshot="abc123"\} 0\.5/);
  a.evaluations = 11;
  assert.match(await registry.metrics(), /weir_fraud_rule_evaluations_total\{rule="r\.a",snapshot="abc123"\} 11/);
});
