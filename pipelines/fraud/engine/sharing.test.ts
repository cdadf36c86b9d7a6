import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { RiskSignal } from "../../../schemas/types.generated.ts";
import { CollectingSink, TopologyTestDriver } from "../../../stream/testing/test-driver.ts";
import { compileRuleSet, formatRuleProblem } from "../rules/compile.ts";
import { fixtureRecord } from "../rules/fixtures.ts";
import type { RuleSetPlan } from "../rules/plan.ts";
import { FIXTURE_HASH_KEY } from "../rules/test-runner.ts";
import { fraudTopology } from "../topology.ts";
import { runtimeSnapshot } from "./snapshot.ts";

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const FIXTURES = `
    fixtures:
      - { name: yes, expect: hit, events: [{ stream: behavior, at: 0s, type: LOGIN }, { stream: behavior, at: 1s, type: LOGIN }, { stream: behavior, at: 2s, type: LOGIN }, { stream: behavior, at: 3s, type: LOGIN }, { stream: behavior, at: 4s, type: LOGIN }] }
      - { name: no, expect: no_hit, events: [{ stream: behavior, at: 0s, type: LIKE }] }`;

function rule(id: string, body: string): string {
  return `  - id: ${id}
    version: 1
    category: test
    owner: tests
    status: active
    severity: HIGH
    score: 80
    action: REVIEW
    explanation: "uid {{ event.uid }}"
    falsepositives: [none known]
    entity: { type: USER, field: event.uid }
${body}${FIXTURES}
`;
}

const logins = (within: string, threshold: number) =>
  `    stream: behavior\n    when: event.type == "LOGIN" || event.type == "REGISTER"\n    aggregates:\n      logins: { fn: count, by: event.uid, within: ${within} }\n    condition: logins >= ${threshold}\n`;

function planOf(rules: string[]): RuleSetPlan {
  const root = mkdtempSync(join(tmpdir(), "weir-fraud-sharing-"));
  dirs.push(root);
  writeFileSync(join(root, "r.yaml"), `rules:\n${rules.join("")}`);
  const r = compileRuleSet(root);
  assert.deepEqual(r.problems.map(formatRuleProblem), []);
  return r.plan as RuleSetPlan;
}

function run(plan: RuleSetPlan, events: Array<Record<string, unknown>>) {
  const sink = new CollectingSink<RiskSignal>();
  const { app, counters } = fraudTopology(plan, {
    hashKey: FIXTURE_HASH_KEY,
    signalsTopic: null,
    signalSinks: [sink],
    outOfOrderness: 0,
  });
  const d = new TopologyTestDriver(app);
  for (const e of events) d.pipe("events.behavior", e, { key: String(e.uid), ts: e.ts as number });
  return { signals: sink.records.map((r) => r.value), counters };
}

const behavior = (i: number, at: number, fields: Record<string, unknown>) =>
  fixtureRecord("behavior", { stream: "behavior", at, ...fields }, `ev-${i}`).record;

describe("rules sharing state and expressions", () => {
  it("gives rules whose state means the same one state, each judging its own threshold", () => {
    const plan = planOf([
      rule("t.logins_2", logins("10m", 2)),
      rule("t.logins_3", logins("10m", 3)),
      rule("t.logins_5", logins("10m", 5)),
      rule("t.logins_3_1h", logins("1h", 3)),
    ]);
    const ids = new Map(runtimeSnapshot(plan).runs.map((r) => [r.rule.id, r.stateId]));
    assert.equal(ids.get("t.logins_2"), ids.get("t.logins_3"));
    assert.equal(ids.get("t.logins_2"), ids.get("t.logins_5"));
    assert.notEqual(ids.get("t.logins_2"), ids.get("t.logins_3_1h"), "another window is another state");

    // uid 7: three logins in 10 min; uid 8: three logins 6 min apart (two in any 10 min, three in an hour).
    const events = [
      behavior(0, 0, { type: "LOGIN", uid: 7 }),
      behavior(1, 1000, { type: "LOGIN", uid: 7 }),
      behavior(2, 2000, { type: "LOGIN", uid: 7 }),
      behavior(3, 0, { type: "LOGIN", uid: 8 }),
      behavior(4, 360_000, { type: "LOGIN", uid: 8 }),
      behavior(5, 720_000, { type: "LOGIN", uid: 8 }),
    ].sort((a, b) => (a.ts as number) - (b.ts as number));
    const { signals } = run(plan, events);
    const fired = (id: string) =>
      signals
        .filter((s) => s.ruleId === id)
        .map((s) => `${s.entity.id}@${s.ts - (events[0]?.ts as number)}:${s.evidence.counts.logins}`)
        .sort();
    assert.deepEqual(fired("t.logins_2"), ["7@1000:2", "8@360000:2"]);
    assert.deepEqual(fired("t.logins_3"), ["7@2000:3"]);
    assert.deepEqual(fired("t.logins_5"), []);
    assert.deepEqual(fired("t.logins_3_1h"), ["7@2000:3", "8@720000:3"]);
  });

  it("evaluates a term several rules share once, yet counts its error for each rule; false && error is false", () => {
    const phone = (id: string, when: string) =>
      rule(id, `    stream: behavior\n    when: ${when}\n`).replace(
        /fixtures:[\s\S]*$/,
        `fixtures:
      - { name: yes, expect: hit, events: [{ stream: behavior, at: 0s, type: REGISTER, phone: "17012345678" }] }
      - { name: no, expect: no_hit, events: [{ stream: behavior, at: 0s, type: LIKE }] }
`,
      );
    const plan = planOf([
      phone("t.a", 'event.type == "REGISTER" && event.phone.startsWith("170")'),
      phone("t.b", 'event.phone.startsWith("170") && event.type == "REGISTER"'),
      phone("t.c", 'event.type == "LIKE" && event.phone.startsWith("170")'),
      phone("t.d", 'event.phone.startsWith("170") && event.type == "LIKE"'),
    ]);
    const events = [
      behavior(0, 0, { type: "REGISTER", uid: 1, phone: "17000000000" }),
      behavior(1, 1000, { type: "REGISTER", uid: 2, phone: null }),
    ];
    const { signals, counters } = run(plan, events);
    assert.deepEqual(signals.map((s) => s.ruleId).sort(), ["t.a", "t.b"]);
    assert.equal(counters.get("t.a")?.errors, 1, "the null phone is an error of each rule reading it");
    assert.equal(counters.get("t.b")?.errors, 1);
    assert.equal(counters.get("t.c")?.errors ?? 0, 0, "a false term decides before the error is an error");
    assert.equal(counters.get("t.d")?.errors ?? 0, 0, "false && error is false, whatever the order");
  });
});
