import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { RiskSignal } from "../../schemas/types.generated.ts";
import { CollectingSink, TopologyTestDriver } from "../../stream/testing/test-driver.ts";
import { keyedHash } from "./engine/signals.ts";
import { compileRuleSet, formatRuleProblem } from "./rules/compile.ts";
import { FIXTURE_EPOCH, fixtureRecord } from "./rules/fixtures.ts";
import type { RuleSetPlan } from "./rules/plan.ts";
import { FIXTURE_HASH_KEY, formatFailure, runFixtures } from "./rules/test-runner.ts";
import { fraudTopology } from "./topology.ts";

const REPO_RULES = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "rules");
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function planOf(files: Record<string, string>): RuleSetPlan {
  const root = mkdtempSync(join(tmpdir(), "weir-fraud-"));
  dirs.push(root);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, name)), { recursive: true });
    writeFileSync(join(root, name), text);
  }
  const r = compileRuleSet(root);
  assert.deepEqual(r.problems.map(formatRuleProblem), []);
  return r.plan as RuleSetPlan;
}

const FIXTURES = `
    fixtures:
      - { name: yes, expect: hit, events: [{ stream: behavior, at: 0s, type: REGISTER, phone: "17012345678" }] }
      - { name: no, expect: no_hit, events: [{ stream: behavior, at: 0s, type: LIKE }] }`;

function rule(id: string, body: string, extra = ""): string {
  return `  - id: ${id}
    version: 3
    category: test
    owner: tests
    status: shadow
    severity: HIGH
    score: 80
    action: BLOCK
    explanation: "uid {{ event.uid }} typed {{ event.phone }}"
    falsepositives: [none known]
${body}${extra}${FIXTURES}
`;
}

describe("weir rules test", () => {
  it("passes every fixture of the repository's rules", () => {
    const plan = compileRuleSet(REPO_RULES).plan as RuleSetPlan;
    const results = runFixtures(plan);
    assert.deepEqual(results.filter((r) => !r.passed).map(formatFailure), []);
    assert.ok(results.length >= 20);
  });

  it("fails a fixture whose expectation is wrong, showing what came", () => {
    const plan = compileRuleSet(REPO_RULES).plan as RuleSetPlan;
    const r = plan.rules.find((x) => x.id === "example.coin_brushing.many_cards");
    assert.ok(r);
    const wrong = {
      ...plan,
      rules: [{ ...r, fixtures: r.fixtures.map((f) => ({ ...f, expect: "no_hit" as const })) }],
    };
    const failed = runFixtures(wrong).filter((x) => !x.passed);
    assert.equal(failed.length, 1);
    assert.match(
      formatFailure(failed[0] as never),
      /expected: no signal\n {2}\+ got: USER 100000100 at .*: uid 100000100 recharged with 4 different cards in 24 h/,
    );
  });
});

describe("the fraud topology", () => {
  const plan = () =>
    planOf({
      "r.yaml": `rules:\n${rule(
        "t.phone_entity",
        '    stream: behavior\n    when: event.type == "REGISTER" && event.phone.startsWith("170")\n    entity: { type: PHONE, field: event.phone }\n',
      )}`,
    });

  function run(p: RuleSetPlan, events: Array<Record<string, unknown>>, crashAt: number[] = []) {
    const sink = new CollectingSink<RiskSignal>();
    const { app, counters } = fraudTopology(p, {
      hashKey: FIXTURE_HASH_KEY,
      signalsTopic: null,
      signalSinks: [sink],
      outOfOrderness: 0,
    });
    const d = new TopologyTestDriver(app);
    events.forEach((e, i) => {
      d.pipe("events.behavior", e, { key: String(e.uid), ts: e.ts as number });
      if (i % 50 === 49) d.checkpoint();
      if (crashAt.includes(i)) d.crash();
    });
    return { signals: sink.records.map((r) => r.value), counters };
  }

  function registrations(n: number) {
    return Array.from(
      { length: n },
      (_, i) =>
        fixtureRecord(
          "behavior",
          {
            stream: "behavior",
            at: i * 1000,
            type: i % 3 === 0 ? "LIKE" : "REGISTER",
            uid: 100 + (i % 17),
            phone: i % 3 === 1 ? `170 0000 ${String(i % 7).padStart(4, "0")}` : null,
          },
          `ev-${i}`,
        ).record,
    );
  }

  it("names a PHONE by a keyed hash, masks it in the evidence, marks shadow signals, counts a null read as an error", () => {
    const { signals, counters } = run(plan(), registrations(30));
    assert.ok(signals.length > 0);
    const s = signals[0] as RiskSignal;
    assert.equal(s.entity.type, "PHONE");
    assert.equal(s.entity.id, keyedHash(FIXTURE_HASH_KEY, "17000000001"));
    assert.equal(s.shadow, true);
    assert.equal(s.ruleVersion, 3);
    assert.equal(s.evidence.matched["event.phone"], "170********");
    assert.match(s.evidence.explanation, /typed 170\*{8}$/);
    const all = JSON.stringify(signals);
    assert.ok(!all.includes("17000000001") && !all.includes("170 0000"), "the number never appears in clear");
    const c = counters.get("t.phone_entity");
    assert.ok(c && c.errors > 0, "REGISTERs without a phone are errors of the rule, not of the worker");
  });

  it("keeps one signal per entity per cool-down", () => {
    const { signals, counters } = run(plan(), registrations(60));
    const perEntity = new Map<string, number>();
    for (const s of signals) perEntity.set(s.entity.id, (perEntity.get(s.entity.id) ?? 0) + 1);
    assert.ok(
      [...perEntity.values()].every((n) => n === 1),
      "a phone seen again within the hour gives no second signal",
    );
    assert.ok((counters.get("t.phone_entity")?.cooledDown ?? 0) > 0);
  });

  it("gives the same signals, with the same ids, after crashes", () => {
    const p = compileRuleSet(REPO_RULES).plan as RuleSetPlan;
    const events: Array<Record<string, unknown>> = [];
    for (let i = 0; i < 400; i++) {
      const device = `d-${i % 9}`;
      events.push(
        fixtureRecord(
          "behavior",
          {
            stream: "behavior",
            at: i * 7000,
            type: i % 2 ? "LOGIN" : "REGISTER",
            uid: 1000 + (i % 61),
            deviceId: device,
            phone: `1701234${String(i % 1000).padStart(4, "0")}`,
          },
          `e-${i}`,
        ).record,
      );
    }
    const clean = run(p, events);
    const crashed = run(p, events, [120, 333]);
    const ids = (xs: RiskSignal[]) => [...new Set(xs.map((s) => `${s.id} ${s.ruleId} ${s.entity.id}`))].sort();
    assert.ok(clean.signals.length > 5, `${clean.signals.length} signals`);
    assert.deepEqual(ids(crashed.signals), ids(clean.signals));
    assert.ok(FIXTURE_EPOCH > 0);
  });
});
