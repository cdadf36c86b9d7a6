// `weir rules backtest`: a rule set replayed over the simulator's files (the business events of a
// `weir simulate` run), in event-time order, through the same topology the workers run (on the stream
// runtime's test driver, in this process). It reports each rule's signals and entities and, with the
// run's ground truth, precision and recall per category: a flagged entity is right when the truth
// names it in a campaign of the rule's category.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { codecFor } from "../../schemas/codec.ts";
import type { RiskSignal } from "../../schemas/types.generated.ts";
import { CollectingSink, TopologyTestDriver } from "../../stream/testing/test-driver.ts";
import { STREAM_NAMES, STREAMS, type StreamName } from "./cel/environment.ts";
import type { RuleCounters } from "./engine/evaluate.ts";
import type { RuleSetPlan } from "./rules/plan.ts";
import { fraudTopology } from "./topology.ts";

/** The simulator's campaigns by the category of rules that should catch them, and the entity that counts. */
export const CAMPAIGN_CATEGORY: Record<string, { category: string; entity: "uid" | "device" }> = {
  virtual_phone_registration: { category: "fake_phone", entity: "uid" },
  emulator_farm: { category: "emulator", entity: "device" },
  rooted_devices: { category: "root_jailbreak", entity: "device" },
  coin_brushing: { category: "coin_brushing", entity: "uid" },
  fake_followers: { category: "fake_followers", entity: "uid" },
  chat_spam: { category: "spam", entity: "uid" },
};

export interface BacktestOptions {
  hashKey: Buffer;
  /** Stop after this many events (0: all). */
  limit?: number;
}

export interface RuleReport {
  rule: string;
  category: string;
  status: string;
  signals: number;
  entities: number;
  counters: RuleCounters;
}

export interface CategoryScore {
  category: string;
  entity: "uid" | "device";
  flagged: number;
  truePositives: number;
  precision: number | null;
  truth: number;
  found: number;
  recall: number | null;
}

/** A shadow rule against the rule it replaces: the entities each flagged. */
export interface ShadowComparison {
  rule: string;
  replaces: string;
  both: number;
  onlyNew: number;
  onlyOld: number;
}

export interface BacktestReport {
  events: number;
  eventsPerSecond: number;
  rules: RuleReport[];
  signals: RiskSignal[];
  shadows: ShadowComparison[];
  scores?: CategoryScore[];
}

/** For each rule that `replaces` another of the set: which entities both, or only one of them, flagged. */
export function compareShadows(plan: RuleSetPlan, signals: RiskSignal[]): ShadowComparison[] {
  const entities = (rule: string) =>
    new Set(signals.filter((s) => s.ruleId === rule).map((s) => `${s.entity.type}:${s.entity.id}`));
  return plan.rules
    .filter((r) => r.replaces !== undefined && r.status !== "disabled")
    .map((r) => {
      const mine = entities(r.id);
      const old = entities(r.replaces as string);
      const both = [...mine].filter((e) => old.has(e)).length;
      return { rule: r.id, replaces: r.replaces as string, both, onlyNew: mine.size - both, onlyOld: old.size - both };
    });
}

interface SimEvent {
  stream: StreamName;
  ts: number;
  record: Record<string, unknown>;
}

/** The business events of a simulator output folder, in event-time order; bad lines skipped. */
export function readSimulatorEvents(dir: string, streams: ReadonlySet<StreamName>, limit = 0): SimEvent[] {
  const manifestPath = join(dir, "manifest.json");
  if (!existsSync(manifestPath)) throw new Error(`${dir} has no manifest.json: give the folder of a weir simulate run`);
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as {
    streams: Array<{ path: string; topic: string }>;
  };
  const byTopic = new Map<string, StreamName>(STREAM_NAMES.map((s) => [STREAMS[s].topic, s] as const));
  const out: SimEvent[] = [];
  for (const s of manifest.streams) {
    const stream = byTopic.get(s.topic);
    if (!stream || !streams.has(stream)) continue;
    const codec = codecFor(STREAMS[stream].schema);
    for (const file of rotatedFiles(join(dir, s.path))) {
      for (const line of readFileSync(file, "utf8").split("\n")) {
        if (line === "") continue;
        try {
          const record = codec.decode(codec.encode(JSON.parse(line))) as unknown as Record<string, unknown>;
          out.push({ stream, ts: record.ts as number, record });
        } catch {
          // a bad line (--dirty): the shipper would dead-letter it
        }
      }
    }
  }
  // Stable: each file is in time order, and ties keep the files' order.
  out.sort((a, b) => a.ts - b.ts);
  return limit > 0 ? out.slice(0, limit) : out;
}

/** A stream's files, oldest first: x.log.N ... x.log.1, x.log. */
function rotatedFiles(live: string): string[] {
  const dir = dirname(live);
  const name = basename(live);
  const rotated = readdirSync(dir)
    .map((f) => ({ f, m: new RegExp(`^${name.replace(/\./g, "\\.")}\\.(\\d+)$`).exec(f) }))
    .filter((x): x is { f: string; m: RegExpExecArray } => x.m !== null)
    .sort((a, b) => Number(b.m[1]) - Number(a.m[1]))
    .map((x) => join(dir, x.f));
  return existsSync(live) ? [...rotated, live] : rotated;
}

export function backtest(
  plan: RuleSetPlan,
  simDir: string,
  truthFile: string | undefined,
  options: BacktestOptions,
): BacktestReport {
  const sink = new CollectingSink<RiskSignal>();
  const { app, counters } = fraudTopology(plan, { hashKey: options.hashKey, signalsTopic: null, signalSinks: [sink] });
  const driver = new TopologyTestDriver(app);
  const inputs = new Set(driver.topology.subtopologies.flatMap((s) => s.externalTopics));
  const wanted = new Set(STREAM_NAMES.filter((s) => inputs.has(STREAMS[s].topic)));
  const events = readSimulatorEvents(simDir, wanted, options.limit ?? 0);
  const t0 = process.hrtime.bigint();
  for (const e of events) {
    const key = e.stream === "device" ? String(e.record.deviceId) : String(e.record.uid ?? "");
    driver.pipe(STREAMS[e.stream].topic, e.record, { key, ts: e.ts });
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const signals = sink.records.map((r) => r.value);
  const rules: RuleReport[] = plan.rules
    .filter((r) => r.status !== "disabled")
    .map((r) => {
      const mine = signals.filter((s) => s.ruleId === r.id);
      return {
        rule: r.id,
        category: r.category,
        status: r.status,
        signals: mine.length,
        entities: new Set(mine.map((s) => `${s.entity.type}:${s.entity.id}`)).size,
        counters: counters.get(r.id) as RuleCounters,
      };
    });
  const report: BacktestReport = {
    events: events.length,
    eventsPerSecond: events.length / Math.max(seconds, 1e-9),
    rules,
    signals,
    shadows: compareShadows(plan, signals),
  };
  if (truthFile) report.scores = score(plan, signals, truthFile);
  return report;
}

/** Precision and recall per category against a simulator ground truth. */
export function score(plan: RuleSetPlan, signals: RiskSignal[], truthFile: string): CategoryScore[] {
  const truth = new Map<string, { uid: Set<string>; device: Set<string>; streamer: Set<string> }>();
  for (const line of readFileSync(truthFile, "utf8").split("\n")) {
    if (!line.includes('"kind":"fraud"')) continue;
    const t = JSON.parse(line) as { campaign: string; entities: Record<string, Array<string | number>> };
    const cat = CAMPAIGN_CATEGORY[t.campaign];
    if (!cat) continue;
    const sets = truth.get(cat.category) ?? { uid: new Set(), device: new Set(), streamer: new Set() };
    for (const u of t.entities.uid ?? []) sets.uid.add(String(u));
    for (const d of t.entities.device ?? []) sets.device.add(String(d));
    for (const s of t.entities.streamer ?? []) sets.streamer.add(String(s));
    truth.set(cat.category, sets);
  }
  const categoryOf = new Map(plan.rules.map((r) => [r.id, r.category]));
  const out: CategoryScore[] = [];
  for (const { category, entity } of Object.values(CAMPAIGN_CATEGORY)) {
    const t = truth.get(category) ?? { uid: new Set(), device: new Set(), streamer: new Set() };
    const flagged = new Set<string>();
    let tp = 0;
    const found = new Set<string>();
    for (const s of signals) {
      if (categoryOf.get(s.ruleId) !== category) continue;
      const k = `${s.entity.type}:${s.entity.id}`;
      if (flagged.has(k)) continue;
      flagged.add(k);
      const right = ((s.entity.type === "USER" && t.uid.has(s.entity.id)) ||
        (s.entity.type === "DEVICE" && t.device.has(s.entity.id)) ||
        (s.entity.type === "STREAMER" && t.streamer.has(s.entity.id))) as boolean;
      if (right) tp++;
      if ((entity === "uid" && s.entity.type === "USER") || (entity === "device" && s.entity.type === "DEVICE"))
        if (right) found.add(s.entity.id);
    }
    const truthSize = (entity === "uid" ? t.uid : t.device).size;
    out.push({
      category,
      entity,
      flagged: flagged.size,
      truePositives: tp,
      precision: flagged.size > 0 ? tp / flagged.size : null,
      truth: truthSize,
      found: found.size,
      recall: truthSize > 0 ? found.size / truthSize : null,
    });
  }
  return out;
}
