import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { RiskSignal } from "../../schemas/types.generated.ts";
import { CollectingSink, TopologyTestDriver } from "../../stream/testing/test-driver.ts";
import { RuleEngine } from "./engine/rule-engine.ts";
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

  it("lets one signal per (rule, entity) through a cool-down whatever order the triggering records arrive in", () => {
    const p = planOf({
      "r.yaml": `rules:
  - id: t.follows
    version: 1
    category: test
    owner: tests
    status: active
    severity: HIGH
    score: 80
    action: BLOCK
    stream: behavior
    when: event.type == "FOLLOW" && event.targetUid != null
    aggregates:
      follows: { fn: count, by: event.targetUid, within: 10m }
    condition: follows >= 3
    entity: { type: STREAMER, field: event.targetUid }
    explanation: "{{ follows }} follows"
    falsepositives: [none known]
    fixtures:
      - { name: yes, expect: hit, events: [{ stream: behavior, at: 0s, type: FOLLOW, targetUid: 9 }, { stream: behavior, at: 1s, type: FOLLOW, targetUid: 9 }, { stream: behavior, at: 2s, type: FOLLOW, targetUid: 9 }] }
      - { name: no, expect: no_hit, events: [{ stream: behavior, at: 0s, type: FOLLOW, targetUid: 9 }] }
`,
    });
    // Seconds after the epoch, in arrival order: within the source's out-of-orderness (10 s), so none is late.
    const follows = (order: number[]) => {
      const sink = new CollectingSink<RiskSignal>();
      const { app } = fraudTopology(p, {
        hashKey: FIXTURE_HASH_KEY,
        signalsTopic: null,
        signalSinks: [sink],
        outOfOrderness: "10s",
      });
      const d = new TopologyTestDriver(app);
      for (const [i, at] of order.entries()) {
        const { record } = fixtureRecord(
          "behavior",
          { stream: "behavior", at: at * 1000, type: "FOLLOW", uid: 100 + i, targetUid: 9 },
          `f-${at}`,
        );
        d.pipe("events.behavior", record, { key: String(100 + i), ts: FIXTURE_EPOCH + at * 1000 });
      }
      return sink.records.map((r) => `${r.value.ruleId} ${r.value.entity.type} ${r.value.entity.id}`);
    };
    const sorted = follows([1, 2, 3, 4, 5, 6]);
    assert.deepEqual(sorted, ["t.follows STREAMER 9"]);
    // The threshold is crossed at 7 s; the records of 1 to 5 s, read after, each hold the condition too.
    assert.deepEqual(follows([6, 7, 8, 1, 2, 3, 4, 5]), sorted);
  });

  it("switches to a new snapshot at a switch point only, every stage at once; a rule whose state did not change keeps it, one whose window changed starts empty", () => {
    const rules = (condition: string, within: string, version: number) =>
      planOf({
        "r.yaml": `rules:
  - id: t.cards
    version: ${version}
    category: test
    owner: tests
    status: active
    severity: HIGH
    score: 80
    action: BLOCK
    stream: coin
    when: event.type == "RECHARGE" && event.cardToken != null
    aggregates:
      cards: { fn: distinct_count, of: event.cardToken, by: event.uid, within: ${within} }
    condition: ${condition}
    entity: { type: USER, field: event.uid }
    explanation: "{{ cards }} cards"
    falsepositives: [none known]
    fixtures:
      - { name: yes, expect: hit, events: [{ stream: coin, at: 0s, type: RECHARGE, cardToken: a }, { stream: coin, at: 1s, type: RECHARGE, cardToken: b }, { stream: coin, at: 2s, type: RECHARGE, cardToken: c }, { stream: coin, at: 3s, type: RECHARGE, cardToken: d }, { stream: coin, at: 4s, type: RECHARGE, cardToken: e }] }
      - { name: no, expect: no_hit, events: [{ stream: coin, at: 0s, type: RECHARGE, cardToken: a }] }
`,
      });
    const engine = new RuleEngine(rules("cards >= 6", "24h", 1), { hashKey: FIXTURE_HASH_KEY, grace: 0 });
    const sink = new CollectingSink<RiskSignal>();
    const { app } = fraudTopology(engine, {
      hashKey: FIXTURE_HASH_KEY,
      signalsTopic: null,
      signalSinks: [sink],
      outOfOrderness: 0,
    });
    const d = new TopologyTestDriver(app);
    let t = FIXTURE_EPOCH;
    const recharge = (uid: number, card: string) => {
      t += 1000;
      const { record } = fixtureRecord(
        "coin",
        { stream: "coin", at: t - FIXTURE_EPOCH, type: "RECHARGE", uid, cardToken: card },
        `c-${t}`,
      );
      d.pipe("events.coin", record, { key: String(uid), ts: t });
    };
    for (const card of ["a", "b", "c", "d"]) recharge(7, card);
    assert.equal(sink.records.length, 0, "4 cards, the rule wants 6");
    // A new threshold (and version): the state fingerprint is the same.
    const v2 = engine.offer(rules("cards >= 4", "24h", 2));
    recharge(7, "e");
    assert.equal(sink.records.length, 0, "offered, not switched: the old rules (6 cards) run until the switch point");
    assert.equal(engine.switchPoint(), v2);
    recharge(7, "f");
    assert.equal(sink.records.length, 1, "the new threshold, on the state kept from the first snapshot");
    assert.equal(sink.records[0]?.value.evidence.counts.cards, 6);
    assert.equal(sink.records[0]?.value.ruleVersion, 2);
    // A new window: the state starts empty, and the old state is deleted (its changelog forgets it).
    engine.offer(rules("cards >= 2", "2h", 3));
    engine.switchPoint();
    recharge(8, "x");
    recharge(7, "g");
    assert.equal(sink.records.length, 1, "uid 7's six cards are gone with the old window; one card is not two");
    // The stage's store (what its changelog holds) has the rules' changes as of the last checkpoint.
    d.checkpoint();
    const keys = [...d.task(0, 0).store<unknown>("rules-uid").entries()].map(([k]) => k.split("\u0001")[1]);
    assert.deepEqual(keys.sort(), ["7", "8"]);
    recharge(8, "y");
    assert.equal(sink.records.length, 2);
    assert.equal(sink.records[1]?.value.evidence.counts.cards, 2);
    recharge(7, "h");
    assert.equal(sink.records.length, 2, "uid 7 reaches two cards again, within the cool-down of its signal");
    assert.equal(engine.counters("t.cards").cooledDown, 1);
  });
});
