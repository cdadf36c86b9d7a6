// `weir rules backtest`: a rule set replayed over the simulator's files (the business events of a
// `weir simulate` run), in event-time order, through the same topology the workers run (on the stream
// runtime's test driver, in this process). It reports each rule's signals and entities and, with the
// run's ground truth, precision and recall per category: a flagged entity is right when the truth
// names it in a campaign of the rule's category.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { KafkaClient } from "../../kafka/client.ts";
import { codecFor } from "../../schemas/codec.ts";
import type { RiskSignal } from "../../schemas/types.generated.ts";
import { CollectingSink, TopologyTestDriver } from "../../stream/testing/test-driver.ts";
import { STREAM_NAMES, STREAMS, type StreamName } from "./cel/environment.ts";
import { encodeEvent } from "./engine/envelope.ts";
import type { RuleCounters } from "./engine/evaluate.ts";
import { replayTopics } from "./kafka-replay.ts";
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

/** A rule set replayed in this process: the workers' topology on the test driver, its signals collected. */
export class Replayer {
  private readonly sink = new CollectingSink<RiskSignal>();
  private readonly driver: TopologyTestDriver;
  private readonly counters: ReadonlyMap<string, RuleCounters>;
  readonly inputs: ReadonlySet<string>;
  events = 0;
  private nanos = 0n;

  constructor(
    readonly plan: RuleSetPlan,
    hashKey: Buffer,
    /** Partitions of the event topics (a Kafka replay keeps each record in its partition). */
    partitions: number | Record<string, number> = 1,
  ) {
    const { app, counters } = fraudTopology(plan, { hashKey, signalsTopic: null, signalSinks: [this.sink] });
    this.counters = counters;
    this.driver = new TopologyTestDriver(app, { partitions, retain: false, announceEvery: 500 });
    this.inputs = new Set(this.driver.topology.subtopologies.flatMap((x) => x.externalTopics));
  }

  /** An event as its topic holds it (Avro bytes), in its partition (default: by key). */
  pipe(topic: string, bytes: Buffer, key: string | null, ts: number, partition?: number): void {
    if (!this.inputs.has(topic)) return;
    const t0 = process.hrtime.bigint();
    this.driver.pipeRaw(topic, bytes, { key, ts, ...(partition !== undefined ? { partition } : {}) });
    this.nanos += process.hrtime.bigint() - t0;
    this.events++;
  }

  report(truthFile?: string): BacktestReport {
    this.driver.close();
    const signals = this.sink.records.map((r) => r.value);
    const seconds = Number(this.nanos) / 1e9;
    const rules: RuleReport[] = this.plan.rules
      .filter((r) => r.status !== "disabled")
      .map((r) => {
        const mine = signals.filter((x) => x.ruleId === r.id);
        return {
          rule: r.id,
          category: r.category,
          status: r.status,
          signals: mine.length,
          entities: new Set(mine.map((x) => `${x.entity.type}:${x.entity.id}`)).size,
          counters: this.counters.get(r.id) as RuleCounters,
        };
      });
    const report: BacktestReport = {
      events: this.events,
      eventsPerSecond: this.events / Math.max(seconds, 1e-9),
      rules,
      signals,
      shadows: compareShadows(this.plan, signals),
    };
    if (truthFile) report.scores = score(this.plan, signals, truthFile);
    return report;
  }
}

export function backtest(
  plan: RuleSetPlan,
  simDir: string,
  truthFile: string | undefined,
  options: BacktestOptions,
): BacktestReport {
  const replayer = new Replayer(plan, options.hashKey);
  const wanted = new Set(STREAM_NAMES.filter((s) => replayer.inputs.has(STREAMS[s].topic)));
  for (const e of readSimulatorEvents(simDir, wanted, options.limit ?? 0)) {
    const key = e.stream === "device" ? String(e.record.deviceId) : String(e.record.uid ?? "");
    replayer.pipe(STREAMS[e.stream].topic, encodeEvent(e.stream, e.record), key, e.ts);
  }
  return replayer.report(truthFile);
}

/** A rule of the candidate set against the same rule (by id) of the set it is compared with. */
export interface RuleDiff {
  rule: string;
  /** In the candidate only (added), in the other only (removed), or both. */
  in: "both" | "candidate" | "deployed";
  candidate: { signals: number; entities: number };
  deployed: { signals: number; entities: number };
  both: number;
  onlyCandidate: number;
  onlyDeployed: number;
}

/** Rule by rule, the entities each set flagged. */
export function diffReports(candidate: BacktestReport, deployed: BacktestReport): RuleDiff[] {
  const entities = (r: BacktestReport, rule: string) =>
    new Set(r.signals.filter((s) => s.ruleId === rule).map((s) => `${s.entity.type}:${s.entity.id}`));
  const ids = [...new Set([...candidate.rules.map((r) => r.rule), ...deployed.rules.map((r) => r.rule)])].sort();
  return ids.map((rule) => {
    const inC = candidate.rules.find((r) => r.rule === rule);
    const inD = deployed.rules.find((r) => r.rule === rule);
    const c = entities(candidate, rule);
    const d = entities(deployed, rule);
    const both = [...c].filter((e) => d.has(e)).length;
    return {
      rule,
      in: inC && inD ? "both" : inC ? "candidate" : "deployed",
      candidate: { signals: inC?.signals ?? 0, entities: c.size },
      deployed: { signals: inD?.signals ?? 0, entities: d.size },
      both,
      onlyCandidate: c.size - both,
      onlyDeployed: d.size - both,
    };
  });
}

/** The records a Kafka backtest holds to order them by event time (about 250 bytes each). */
export const MAX_KAFKA_RECORDS = 5_000_000;

/** A candidate set and the deployed one over the event topics' records of [from, to), in one pass. */
export async function backtestKafka(
  candidate: RuleSetPlan,
  deployed: RuleSetPlan | null,
  options: {
    kafka: KafkaClient;
    topicPrefix: string;
    from: number;
    to: number;
    hashKey: Buffer;
    truthFile?: string;
    /** At most this many records (held in memory to be ordered); default MAX_KAFKA_RECORDS. */
    maxRecords?: number;
  },
): Promise<{ candidate: BacktestReport; deployed?: BacktestReport; diff?: RuleDiff[]; seconds: number }> {
  const streams: StreamName[] = ["behavior", "coin", "device"];
  const topicOf = new Map(streams.map((s) => [`${options.topicPrefix}${STREAMS[s].topic}`, STREAMS[s].topic]));
  // The driver's partitions are the topics': a record stays in its partition, as a worker reads it.
  const admin = options.kafka.native.admin();
  await admin.connect();
  const partitions: Record<string, number> = {};
  try {
    for (const [prefixed, topic] of topicOf) partitions[topic] = (await admin.fetchTopicOffsets(prefixed)).length;
  } finally {
    await admin.disconnect();
  }
  const c = new Replayer(candidate, options.hashKey, partitions);
  const d = deployed ? new Replayer(deployed, options.hashKey, partitions) : null;
  const started = process.hrtime.bigint();
  // Kafka gives the records partition by partition; the rules see them in event-time order, as the
  // workers read topics shipped as they happen (a partition replayed ahead of another would make the
  // other's records late in the stages that merge partitions by key).
  const max = options.maxRecords ?? MAX_KAFKA_RECORDS;
  const records: Array<{ topic: string; value: Buffer; key: string | null; ts: number; partition: number }> = [];
  await replayTopics({
    kafka: options.kafka,
    topics: [...topicOf.keys()],
    from: options.from,
    to: options.to,
    onRecord: (r) => {
      if (records.length >= max)
        throw new Error(`more than ${max} events in the period: give a shorter one (--from/--to), or several in turn`);
      records.push({
        topic: topicOf.get(r.topic) as string,
        value: r.value,
        key: r.key,
        ts: r.ts,
        partition: r.partition,
      });
    },
  });
  records.sort((a, b) => a.ts - b.ts);
  for (const r of records) {
    c.pipe(r.topic, r.value, r.key, r.ts, r.partition);
    d?.pipe(r.topic, r.value, r.key, r.ts, r.partition);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cr = c.report(options.truthFile);
  if (!d) return { candidate: cr, seconds };
  const dr = d.report(options.truthFile);
  return { candidate: cr, deployed: dr, diff: diffReports(cr, dr), seconds };
}

/**
 * Every entity of the ground truth's fraud campaigns, whatever their kind, as `TYPE:id` (USER, DEVICE,
 * STREAMER): campaigns overlap (an emulator farm's accounts register with virtual numbers), so a rule
 * may rightly flag a fraudster of another category's campaign.
 */
export function campaignEntities(truthFile: string): Set<string> {
  const out = new Set<string>();
  const kinds: Record<string, string> = { uid: "USER", device: "DEVICE", streamer: "STREAMER" };
  for (const line of readFileSync(truthFile, "utf8").split("\n")) {
    if (!line.includes('"kind":"fraud"')) continue;
    const t = JSON.parse(line) as { entities: Record<string, Array<string | number>> };
    for (const [k, type] of Object.entries(kinds)) for (const id of t.entities[k] ?? []) out.add(`${type}:${id}`);
  }
  return out;
}

/** Precision and recall per category against a simulator ground truth. */
export function score(plan: RuleSetPlan, signals: RiskSignal[], truthFile: string): CategoryScore[] {
  return scoreSignals(new Map(plan.rules.map((r) => [r.id, r.category])), signals, truthFile);
}

/**
 * The same, for signals whose rules are known only by their category (read back from ClickHouse, of
 * whichever snapshot the workers ran).
 */
export function scoreSignals(
  categoryOf: ReadonlyMap<string, string>,
  signals: RiskSignal[],
  truthFile: string,
): CategoryScore[] {
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
