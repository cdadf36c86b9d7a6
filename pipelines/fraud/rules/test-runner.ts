// `weir rules test`: every fixture of every rule through the real pipeline (the topology the workers
// run, on the stream runtime's TopologyTestDriver), one fixture at a time with only its rule, so
// windows, sequences, absences, enrichment and the cool-down are tested as they run. After the
// fixture's events, one quiet event per stream moves event time past every window, so absences are
// decided; signals it triggers itself are not counted.
import type { RiskSignal } from "../../../schemas/types.generated.ts";
import { CollectingSink, TopologyTestDriver } from "../../../stream/testing/test-driver.ts";
import { STREAMS, type StreamName } from "../cel/environment.ts";
import { keyedHash } from "../engine/signals.ts";
import { phoneDigits } from "../normalize.ts";
import { fraudTopology } from "../topology.ts";
import { FIXTURE_EPOCH, fixtureRecord } from "./fixtures.ts";
import type { FixturePlan, RulePlan, RuleSetPlan } from "./plan.ts";

/** The key fixtures' PHONE and CARD entities are hashed with (not a secret: test data only). */
export const FIXTURE_HASH_KEY = Buffer.from("weir-rules-test-fixture-hash-key-0000000", "utf8");

export interface FixtureResult {
  rule: string;
  fixture: string;
  file: string;
  line: number;
  passed: boolean;
  /** What was expected and what came, when it failed. */
  expected?: string;
  actual?: string[];
  /** Evaluation errors the rule counted (fields missing at run time, ...). */
  errors: number;
  lastError?: string;
}

export function runFixtures(plan: RuleSetPlan, filter?: (rule: RulePlan) => boolean): FixtureResult[] {
  const out: FixtureResult[] = [];
  for (const rule of plan.rules) {
    if (filter && !filter(rule)) continue;
    for (const fx of rule.fixtures) out.push(runFixture(plan, rule, fx));
  }
  return out;
}

const TICK_KEYS: Record<StreamName, string> = { behavior: "uid", coin: "uid", device: "deviceId", access: "service" };

function runFixture(plan: RuleSetPlan, rule: RulePlan, fx: FixturePlan): FixtureResult {
  const only: RuleSetPlan = {
    ...plan,
    rules: [{ ...rule, status: rule.status === "disabled" ? "active" : rule.status }],
    enrich: rule.enrich,
    streams: rule.streams,
  };
  const sink = new CollectingSink<RiskSignal>();
  const { app, counters } = fraudTopology(only, {
    hashKey: FIXTURE_HASH_KEY,
    signalsTopic: null,
    signalSinks: [sink],
    outOfOrderness: 0,
  });
  const driver = new TopologyTestDriver(app);
  const inputs = new Set(driver.topology.subtopologies.flatMap((s) => s.externalTopics));
  let last = FIXTURE_EPOCH;
  for (const ev of fx.events) {
    const topic = STREAMS[ev.stream].topic;
    if (!inputs.has(topic)) continue; // a stream this rule does not read
    driver.pipe(topic, ev.record, { key: keyOf(ev.stream, ev.record), ts: ev.ts });
    last = Math.max(last, ev.ts);
  }
  // Quiet events far enough ahead that every window, span and absence of the rule is decided.
  const horizon = last + windowOf(rule) + 1000;
  const ticks = new Set<string>();
  for (const stream of Object.keys(STREAMS) as StreamName[]) {
    const topic = STREAMS[stream].topic;
    if (!inputs.has(topic)) continue;
    const id = `tick-${stream}`;
    ticks.add(id);
    const { record } = fixtureRecord(stream, { stream, at: horizon - FIXTURE_EPOCH, uid: 1, deviceId: "d-tick" }, id);
    driver.pipe(topic, record, { key: keyOf(stream, record), ts: horizon });
  }
  const signals = sink.records
    .map((r) => r.value)
    .filter((s) => s.ruleId === rule.id && !ticks.has(s.evidence.sourceEventIds.at(-1) ?? ""));
  const c = counters.get(rule.id);
  const base = {
    rule: rule.id,
    fixture: fx.name,
    file: rule.source.file,
    line: fx.line,
    errors: c?.errors ?? 0,
    lastError: c?.lastError,
  };
  const shown = signals.map(
    (s) => `${s.entity.type} ${s.entity.id} at ${new Date(s.ts).toISOString()}: ${s.evidence.explanation}`,
  );
  if (fx.expect === "no_hit") {
    return signals.length === 0
      ? { ...base, passed: true }
      : { ...base, passed: false, expected: "no signal", actual: shown };
  }
  const wantEntity = fx.entity === undefined ? undefined : expectedEntity(rule, fx.entity);
  const matching = wantEntity === undefined ? signals : signals.filter((s) => s.entity.id === wantEntity);
  const passed = fx.signals === undefined ? matching.length > 0 : matching.length === fx.signals;
  if (passed) return { ...base, passed: true };
  const what = `${fx.signals === undefined ? "at least one signal" : `${fx.signals} signal${fx.signals === 1 ? "" : "s"}`}${wantEntity === undefined ? "" : ` for ${rule.entity.type} ${wantEntity}`}`;
  return { ...base, passed: false, expected: what, actual: shown };
}

function keyOf(stream: StreamName, record: Record<string, unknown>): string | null {
  const v = record[TICK_KEYS[stream]];
  return v === null || v === undefined ? null : String(v);
}

function expectedEntity(rule: RulePlan, given: string): string {
  if (!rule.entity.hashed) return given;
  return keyedHash(FIXTURE_HASH_KEY, rule.entity.type === "PHONE" ? phoneDigits(given) : given);
}

function windowOf(rule: RulePlan): number {
  const s = rule.shape;
  switch (s.kind) {
    case "match":
      return 0;
    case "aggregate":
      return Math.max(...s.aggregates.map((a) => a.withinMs));
    case "sequence":
      return s.maxspanMs;
    case "absence":
      return s.withinMs;
  }
}

/** A failure as `weir rules test` prints it: where, what was expected, what came. */
export function formatFailure(r: FixtureResult): string {
  const lines = [`${r.file}:${r.line}: ${r.rule}: fixture "${r.fixture}"`, `  - expected: ${r.expected}`];
  if (!r.actual || r.actual.length === 0) lines.push("  + got: no signal");
  else for (const a of r.actual) lines.push(`  + got: ${a}`);
  if (r.errors > 0) lines.push(`    (${r.errors} evaluation errors; last: ${r.lastError})`);
  return lines.join("\n");
}
