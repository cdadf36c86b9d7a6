// The fraud pipeline's topology on the stream runtime. It is the same whatever the rules: a rule set
// is data the stages read (engine/snapshot.ts), so a worker switches to a new snapshot without
// rebuilding anything, at a checkpoint boundary, all its tasks at once.
//
//   events.behavior + events.coin (+ logs.access)        keyed by uid: no repartition
//     -> uid stage: registrations; rules keyed by uid, single-event rules
//        |-- by deviceId --> events.device + these -> device stage: device reports; rules keyed by
//        |                   device, rules reading the device report or the device stream
//        |-- by key ----------------------------------+--> keyed stage: rules keyed by anything else
//        |                                (and from the device stage, for rules reading the report)
//     -> signals of the three stages, by (rule, entity) -> cool-down
//     -> signals.risk (live rules' signals, exactly once) and the sinks (ClickHouse: all, shadow included)
//
// Between stages events travel in the compact envelope of engine/envelope.ts (the event's own Avro
// bytes, nothing re-encoded). Every stage checkpoints through its task's transaction.
import { codecFor } from "../../schemas/codec.ts";
import type { RiskSignal } from "../../schemas/types.generated.ts";
import { type KStream, StreamApp } from "../../stream/dsl/app.ts";
import type { Sink } from "../../stream/sink.ts";
import type { Duration, Serde } from "../../stream/types.ts";
import { STREAMS, type StreamName } from "./cel/environment.ts";
import { cooldownOperator } from "./engine/cooldown.ts";
import { Envelope, envelopeSerde, sourceSerde } from "./engine/envelope.ts";
import type { RuleCounters } from "./engine/evaluate.ts";
import { RuleEngine } from "./engine/rule-engine.ts";
import { stageOperator } from "./engine/stage.ts";
import type { RuleSetPlan } from "./rules/plan.ts";

export const SIGNALS_TOPIC = "signals.risk";
export const FRAUD_DLQ = "dlq.fraud";

export interface FraudTopologyOptions {
  appId?: string;
  /** Keys the hashes of phone numbers and cards (the PII key). */
  hashKey: Buffer;
  /** How far out of order events of one partition may arrive (default 5s). */
  outOfOrderness?: Duration;
  /** How long after its time a record may still count in the rules' windows (default 0). */
  grace?: number;
  /** Put before every input topic's, the signals topic's and the DLQ's name (isolated runs: tests). Default "". */
  topicPrefix?: string;
  /** Where live signals go: signals.risk (default; null for none), and the sinks (ClickHouse, a test's collector) get every signal. */
  signalsTopic?: string | null;
  signalSinks?: Array<Sink<RiskSignal>>;
  /** Read logs.access too (default: when a rule of the first snapshot reads it). */
  readAccess?: boolean;
}

export interface FraudTopology {
  app: StreamApp;
  /** The rules the topology runs, switchable at checkpoint boundaries. */
  engine: RuleEngine;
  /** Per rule id, what it did in this process. */
  counters: ReadonlyMap<string, RuleCounters>;
  /** The streams the topology reads: a snapshot that reads another needs new workers. */
  streams: ReadonlySet<StreamName>;
}

const riskSignalCodec = codecFor("RiskSignal");
export const riskSignalSerde: Serde<RiskSignal> = {
  encode: (s) => riskSignalCodec.encode(s),
  decode: (b) => riskSignalCodec.decode(b),
};

/** The topology running `rules` (a plan, or an engine a worker switches). */
export function fraudTopology(rules: RuleSetPlan | RuleEngine, options: FraudTopologyOptions): FraudTopology {
  const engine =
    rules instanceof RuleEngine
      ? rules
      : new RuleEngine(rules, { hashKey: options.hashKey, grace: options.grace ?? 0 });
  const prefix = options.topicPrefix ?? "";
  const app = new StreamApp({
    appId: options.appId ?? "fraud",
    dlqTopic: `${prefix}${FRAUD_DLQ}`,
    guarantee: "exactly-once",
  });
  const outOfOrderness = options.outOfOrderness ?? "5s";
  const source = (s: StreamName, key: string) =>
    app.stream<undefined, Envelope>(`${prefix}${STREAMS[s].topic}`, {
      serde: sourceSerde(s),
      // logs.access is keyed by service: the uid stage reads it for single-event rules and routing
      // only, never for state keyed by uid, so it joins the stage's tasks under the stage's key name.
      key,
      timestamp: (env) => env.ts,
      outOfOrderness,
    });
  const streams = new Set<StreamName>(["behavior", "coin", "device"]);
  if (options.readAccess ?? engine.current.streams.has("access")) streams.add("access");

  let uidIn = source("behavior", "uid").merge(source("coin", "uid"));
  if (streams.has("access")) uidIn = uidIn.merge(source("access", "uid"));
  const uidOut = uidIn.transform<unknown>(stageOperator(engine, "uid"));

  const toDevice = routed(uidOut, "toDevice", "deviceId").repartition({ name: "by-device", serde: envelopeSerde });
  const deviceOut = source("device", "deviceId").merge(toDevice).transform<unknown>(stageOperator(engine, "device"));

  const keyFromUid = routed(uidOut, "toKey", "rule-key").repartition({ name: "by-key", serde: envelopeSerde });
  const keyFromDevice = routed(deviceOut, "toKey", "rule-key").repartition({
    name: "by-key-device",
    serde: envelopeSerde,
  });
  const keyOut = keyFromUid.merge(keyFromDevice).transform<unknown>(stageOperator(engine, "key"));

  const signalsOf = (s: KStream<unknown>, name: string) =>
    (s.filter((v) => !(v instanceof Envelope)) as unknown as KStream<RiskSignal>)
      .keyBy((_v, k) => k as string, "rule-entity")
      .repartition({ name, serde: riskSignalSerde });
  const signals = signalsOf(uidOut, "signals-uid")
    .merge(signalsOf(deviceOut, "signals-device"))
    .merge(signalsOf(keyOut, "signals-key"))
    .transform<RiskSignal>(cooldownOperator(engine));

  const topic = options.signalsTopic === undefined ? `${prefix}${SIGNALS_TOPIC}` : options.signalsTopic;
  // Shadow signals are recorded (the sinks: ClickHouse), never published where the platform acts on signals.
  if (topic) signals.filter((s) => !s.shadow).to(topic, { schema: "RiskSignal" });
  for (const sink of options.signalSinks ?? []) signals.to(sink);
  return { app, engine, counters: engine.allCounters(), streams };
}

/** The envelopes a stage sends on: to the device stage (no key expressions) or to the keyed stage. */
function routed(stage: KStream<unknown>, to: "toDevice" | "toKey", keyName: string): KStream<Envelope> {
  return (
    stage.filter((v) => v instanceof Envelope && (to === "toKey") === (v.keys !== null)) as KStream<Envelope>
  ).keyBy((_v, k) => k as string, keyName);
}
