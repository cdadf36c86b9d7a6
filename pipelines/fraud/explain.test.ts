import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import type { RiskSignal } from "../../schemas/types.generated.ts";
import { CollectingSink, TopologyTestDriver } from "../../stream/testing/test-driver.ts";
import { STREAMS } from "./cel/environment.ts";
import { explainSignal } from "./explain.ts";
import { compileRuleSet } from "./rules/compile.ts";
import type { RuleSetPlan } from "./rules/plan.ts";
import { FIXTURE_HASH_KEY } from "./rules/test-runner.ts";
import { fraudTopology } from "./topology.ts";

const REPO_RULES = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "rules");

function firstSignal(plan: RuleSetPlan, id: string): RiskSignal {
  const rule = plan.rules.find((r) => r.id === id);
  assert.ok(rule);
  const sink = new CollectingSink<RiskSignal>();
  const { app } = fraudTopology(
    { ...plan, rules: [rule], enrich: rule.enrich, streams: rule.streams },
    { hashKey: FIXTURE_HASH_KEY, signalsTopic: null, signalSinks: [sink], outOfOrderness: 0 },
  );
  const d = new TopologyTestDriver(app);
  const fx = rule.fixtures.find((f) => f.expect === "hit");
  for (const e of fx?.events ?? [])
    d.pipe(STREAMS[e.stream].topic, e.record, { key: String(e.record.uid ?? e.record.deviceId), ts: e.ts });
  const s = sink.records[0]?.value;
  assert.ok(s);
  return s;
}

test("explains a signal with its rule's expressions as written, the values they saw, the counts and events", () => {
  const plan = compileRuleSet(REPO_RULES).plan as RuleSetPlan;
  const s = firstSignal(plan, "example.coin_brushing.many_cards");
  const lines = explainSignal(
    { ...s, category: "coin_brushing" },
    plan.rules.find((r) => r.id === s.ruleId),
  );
  const text = lines.join("\n");
  assert.match(text, /rule example\.coin_brushing\.many_cards v1 \(coin_brushing\): HIGH, score 75, action LIMIT/);
  assert.match(text, /entity: USER 100000100/);
  assert.match(text, /cards_24h = distinct_count by: event\.uid/);
  assert.match(text, /condition: cards_24h >= 4/);
  assert.match(text, /event\.cardToken = card_d/);
  assert.match(text, /counts: cards_24h = 4/);
  assert.match(text, /defined at .*windows\.yaml:\d+/);
});

test("shows lists and matches as the analyst wrote them, and warns of another version", () => {
  const plan = compileRuleSet(REPO_RULES).plan as RuleSetPlan;
  const s = firstSignal(plan, "example.spam.contact_in_chat");
  const rule = plan.rules.find((r) => r.id === s.ruleId);
  const text = explainSignal({ ...s, ruleVersion: 0 }, rule).join("\n");
  assert.match(text, /in @contact_words/);
  assert.match(text, /\.matches\("/);
  assert.match(text, /the rules folder holds version 1; the signal came from version 0/);
  assert.match(text, /event\.text = \[\d+ characters masked\]/);
  assert.match(explainSignal(s, undefined).join("\n"), /has no rule example\.spam\.contact_in_chat any more/);
});
