import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { Registry } from "prom-client";
import type { RiskSignal } from "../../schemas/types.generated.ts";
import { CollectingSink, TopologyTestDriver } from "../../stream/testing/test-driver.ts";
import { RuleEngine } from "./engine/rule-engine.ts";
import { registerRuleMetrics } from "./metrics.ts";
import { compileRuleSet } from "./rules/compile.ts";
import type { RuleSetPlan } from "./rules/plan.ts";
import { FIXTURE_HASH_KEY } from "./rules/test-runner.ts";
import { fraudTopology } from "./topology.ts";

const REPO_RULES = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "rules");

test("per-rule metrics are read from the engine when /metrics is scraped: counters, state entries, drops", async () => {
  const plan = compileRuleSet(REPO_RULES).plan as RuleSetPlan;
  const engine = new RuleEngine(plan, { hashKey: FIXTURE_HASH_KEY, grace: 0 });
  const sink = new CollectingSink<RiskSignal>();
  const { app } = fraudTopology(engine, { hashKey: FIXTURE_HASH_KEY, signalsTopic: null, signalSinks: [sink] });
  const driver = new TopologyTestDriver(app);
  const registry = new Registry();
  registerRuleMetrics(registry, engine);
  const rule = plan.rules.find((r) => r.id === "example.coin_brushing.many_cards");
  assert.ok(rule);
  const fixture = rule.fixtures.find((f) => f.expect === "hit");
  assert.ok(fixture);
  for (const ev of fixture.events) driver.pipe("events.coin", ev.record, { key: String(ev.record.uid), ts: ev.ts });
  const text = await registry.metrics();
  const v = plan.version;
  assert.match(text, new RegExp(`weir_fraud_rule_evaluations_total\\{rule="${rule.id}",snapshot="${v}"\\} 8`)); // when, then the condition
  assert.match(text, new RegExp(`weir_fraud_rule_signals_total\\{rule="${rule.id}",snapshot="${v}"\\} 1`));
  assert.match(text, new RegExp(`weir_fraud_rule_state_entries\\{rule="${rule.id}",snapshot="${v}"\\} 1`));
  // rules/ holds the packs too, whose rules may also fire on this fixture: count this rule's signals.
  assert.equal(sink.records.filter((r) => r.value.ruleId === rule.id).length, 1);
  // A task that leaves the process takes its state out of the metrics.
  driver.close();
  assert.doesNotMatch(await registry.metrics(), new RegExp(`weir_fraud_rule_state_entries\\{rule="${rule.id}"`));
});
