// The fraud pipeline's ClickHouse table on the real server: the migration applies, signals made by the
// real topology go through the ClickHouse sink, and `weir risk signals`' reader gives them back with
// their category, once each even when a replay wrote them twice.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { STREAMS } from "../../pipelines/fraud/cel/environment.ts";
import { RISK_SIGNALS_TABLE, signalRow } from "../../pipelines/fraud/rows.ts";
import { compileRuleSet } from "../../pipelines/fraud/rules/compile.ts";
import type { RuleSetPlan } from "../../pipelines/fraud/rules/plan.ts";
import { FIXTURE_HASH_KEY } from "../../pipelines/fraud/rules/test-runner.ts";
import { readSignal, readSignals } from "../../pipelines/fraud/signals-reader.ts";
import { fraudTopology } from "../../pipelines/fraud/topology.ts";
import type { RiskSignal } from "../../schemas/types.generated.ts";
import { splitStatements } from "../../sinks/clickhouse/migrate.ts";
import { ClickHouseSink } from "../../sinks/clickhouse/sink.ts";
import { CollectingSink, TopologyTestDriver } from "../../stream/testing/test-driver.ts";
import { clickhouseClient, endpoints, requireStack, uniqueName } from "../support/stack.ts";

const ch = clickhouseClient();
const database = uniqueName("fraud");
const ROOT = join(fileURLToPath(new URL(".", import.meta.url)), "..", "..");

before(async () => {
  await requireStack();
  const ddl = readFileSync(join(ROOT, "infra", "clickhouse", "003_risk_signals.sql"), "utf8")
    .replaceAll("CREATE DATABASE IF NOT EXISTS weir", `CREATE DATABASE IF NOT EXISTS ${database}`)
    .replaceAll("weir.", `${database}.`);
  for (const stmt of splitStatements(ddl)) await ch.command({ query: stmt });
});

after(async () => {
  await ch.command({ query: `DROP DATABASE IF EXISTS ${database}` }).catch(() => {});
  await ch.close();
});

/** The signals of the repository's rules on their own fixtures' events. */
function fixtureSignals(plan: RuleSetPlan): RiskSignal[] {
  const out: RiskSignal[] = [];
  for (const rule of plan.rules) {
    const sink = new CollectingSink<RiskSignal>();
    const { app } = fraudTopology(
      { ...plan, rules: [rule], enrich: rule.enrich, streams: rule.streams },
      { hashKey: FIXTURE_HASH_KEY, signalsTopic: null, signalSinks: [sink], outOfOrderness: 0 },
    );
    const d = new TopologyTestDriver(app);
    const inputs = new Set(d.topology.subtopologies.flatMap((s) => s.externalTopics));
    for (const fx of rule.fixtures.filter((f) => f.expect === "hit"))
      for (const ev of fx.events) {
        const topic = STREAMS[ev.stream].topic;
        if (inputs.has(topic))
          d.pipe(topic, ev.record, { key: String(ev.record.uid ?? ev.record.deviceId), ts: ev.ts });
      }
    out.push(...sink.records.map((r) => r.value));
  }
  return out;
}

test("signals go through the ClickHouse sink into weir.risk_signals and come back whole, once", async () => {
  const plan = compileRuleSet(join(ROOT, "rules")).plan as RuleSetPlan;
  const signals = fixtureSignals(plan);
  assert.ok(signals.length >= 5, `${signals.length} signals`);
  const categoryOf = new Map(plan.rules.map((r) => [r.id, r.category]));
  const sink = new ClickHouseSink<RiskSignal>({
    url: endpoints.clickhouseUrl,
    database,
    name: "test-risk-signals",
    table: RISK_SIGNALS_TABLE,
    toRow: (rec) => signalRow(rec.value, categoryOf.get(rec.value.ruleId) ?? ""),
  });
  try {
    // twice: a replay after a crash writes the same rows again
    for (let round = 0; round < 2; round++) {
      for (const s of signals) sink.write({ key: s.entity.id, value: s, ts: s.ts });
      await sink.flush();
    }
  } finally {
    await sink.close();
  }
  const from = Math.min(...signals.map((s) => s.ts));
  const to = Math.max(...signals.map((s) => s.ts)) + 1;
  const back = await readSignals(ch, database, { from, to, limit: 10_000 });
  assert.equal(back.length, new Set(signals.map((s) => s.id)).size, "one row per signal id");
  const byId = new Map(signals.map((s) => [s.id, s]));
  for (const b of back) {
    const { category, ...s } = b;
    assert.equal(category, categoryOf.get(s.ruleId));
    assert.deepEqual(s, JSON.parse(JSON.stringify(byId.get(s.id))));
  }
  const one = signals[0] as RiskSignal;
  const found = await readSignal(ch, database, one.id, from);
  assert.equal(found?.id, one.id, "one signal by its id (weir rules explain)");
  assert.equal(await readSignal(ch, database, "no-such-id", from), undefined);
  const coin = await readSignals(ch, database, { from, to, limit: 10_000, category: "coin_brushing" });
  assert.ok(coin.length > 0 && coin.every((s) => s.category === "coin_brushing"));
});
