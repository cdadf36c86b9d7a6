// The fraud pipeline's topology, built from a compiled rule set (rules/plan.ts) on the stream runtime:
//
//   events.behavior / events.coin / events.device (/ logs.access)   the streams the rules read
//     -> by deviceId: the latest device report per device joined (when a rule reads `device`)
//     -> by uid: the registration facts per user joined (when a rule reads `registration`)
//     -> per rule: match (a predicate), aggregate (rollingSum / countDistinct by the rule's key, then
//        its condition), sequence, absence (the stream operators of the same names)
//     -> signals, by (rule, entity): the cool-down keeps one per window
//     -> signals.risk (RiskSignal, exactly once: every stateful task checkpoints in a transaction)
//
// Between steps events travel as Avro envelopes (engine/envelope.ts), so every step reads typed
// records. State names carry the rule's id and state fingerprint: a rule whose state-deciding parts
// did not change keeps its state across snapshots; a changed one starts a new store.

import { codecFor } from "../../schemas/codec.ts";
import type { RiskSignal } from "../../schemas/types.generated.ts";
import { type KStream, StreamApp } from "../../stream/dsl/app.ts";
import type { AbsenceResult } from "../../stream/operators/absence.ts";
import type { ProcessContext } from "../../stream/operators/process.ts";
import type { SequenceMatch } from "../../stream/operators/sequence.ts";
import type { Sink } from "../../stream/sink.ts";
import type { Duration, Serde } from "../../stream/types.ts";
import type { DistinctCount } from "../../stream/windows/distinct-count.ts";
import type { RollingSum } from "../../stream/windows/rolling.ts";
import type { Windowed } from "../../stream/windows/window.ts";
import { RegistrationFacts, STREAMS, type StreamName } from "./cel/environment.ts";
import {
  decodeEvent,
  deviceIdOf,
  deviceReportSerde,
  type Envelope,
  encodeEvent,
  envelopeSerde,
  registrationSerde,
  uidOf,
} from "./engine/envelope.ts";
import { holds, newCounters, type RuleCounters, safeEvaluate } from "./engine/evaluate.ts";
import { buildSignal, type Firing, keyedHash } from "./engine/signals.ts";
import { networkOf } from "./lists/matchers.ts";
import { phoneDigits } from "./normalize.ts";
import { ENRICHMENT_LIMITS, type RulePlan, type RuleSetPlan, STATE_LIMITS, type StepPlan } from "./rules/plan.ts";

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
  /** Where signals go: signals.risk (default; null for none), and the sinks (ClickHouse, a test's collector). */
  signalsTopic?: string | null;
  signalSinks?: Array<Sink<RiskSignal>>;
}

export interface FraudTopology {
  app: StreamApp;
  /** Per rule id, what it did in this process. */
  counters: Map<string, RuleCounters>;
}

type Activation = Record<string, unknown>;

const riskSignalCodec = codecFor("RiskSignal");
const riskSignalSerde: Serde<RiskSignal> = {
  encode: (s) => riskSignalCodec.encode(s),
  decode: (b) => riskSignalCodec.decode(b),
};

/** The topology running every enabled rule of `plan`. */
export function fraudTopology(plan: RuleSetPlan, options: FraudTopologyOptions): FraudTopology {
  const app = new StreamApp({
    appId: options.appId ?? "fraud",
    dlqTopic: `${options.topicPrefix ?? ""}${FRAUD_DLQ}`,
    guarantee: "exactly-once",
  });
  const counters = new Map<string, RuleCounters>();
  const rules = plan.rules.filter((r) => r.status !== "disabled");
  const grace = options.grace ?? 0;
  const needed = new Set<StreamName>(rules.flatMap((r) => r.streams));
  if (plan.enrich.device) needed.add("device");
  if (plan.enrich.registration) needed.add("behavior");

  let events: KStream<Envelope> | undefined;
  for (const s of [...needed].sort()) {
    const stream = app
      .stream<undefined, Record<string, unknown>>(`${options.topicPrefix ?? ""}${STREAMS[s].topic}`, {
        schema: STREAMS[s].schema as never,
        outOfOrderness: options.outOfOrderness ?? "5s",
      })
      .map((e): Envelope => ({ s, e, d: null, r: null }));
    events = events ? events.merge(stream) : stream;
  }
  if (!events || rules.length === 0) return { app, counters };

  if (plan.enrich.device) {
    events = events
      .keyBy((env) => deviceIdOf(env) ?? `-${String(env.e.id)}`, "deviceId")
      .repartition({ name: "by-device", serde: envelopeSerde })
      .process<Envelope>(
        "devices",
        (rec, ctx) => {
          const env = rec.value;
          const id = deviceIdOf(env);
          if (env.s === "device") {
            const held = ctx.store.get(id as string) as { ts: number } | undefined;
            if (id && (!held || held.ts <= (env.e.ts as number))) ctx.store.put(id, env.e, rec.ts);
          } else if (id) env.d = (ctx.store.get(id) as Envelope["d"]) ?? null;
          ctx.forward(rec);
        },
        {
          ttl: ENRICHMENT_LIMITS.device.ttlMs,
          maxEntries: ENRICHMENT_LIMITS.device.maxEntries,
          serde: deviceReportSerde as Serde<unknown>,
        },
      );
  }
  if (plan.enrich.registration) {
    events = events
      .keyBy((env) => {
        const uid = uidOf(env);
        return uid === null ? `-${String(env.e.id)}` : String(uid);
      }, "uid")
      .repartition({ name: "by-uid", serde: envelopeSerde })
      .process<Envelope>(
        "registrations",
        (rec, ctx) => {
          const env = rec.value;
          const uid = uidOf(env);
          if (env.s === "behavior" && env.e.type === "REGISTER" && env.e.success === true && uid !== null) {
            ctx.store.put(String(uid), registrationFacts(env.e, options.hashKey), rec.ts);
          }
          if (uid !== null) env.r = (ctx.store.get(String(uid)) as RegistrationFacts | undefined) ?? null;
          ctx.forward(rec);
        },
        {
          ttl: ENRICHMENT_LIMITS.registration.ttlMs,
          maxEntries: ENRICHMENT_LIMITS.registration.maxEntries,
          serde: registrationSerde as Serde<unknown>,
        },
      );
  }

  // Signals go through a cool-down per (rule, entity). Streams of different sub-topologies cannot be
  // merged before a repartition, so the single-event rules (all in the enrichment's sub-topology)
  // share one, and each stateful rule has its own: inline when its key is its entity.
  const topic =
    options.signalsTopic === undefined ? `${options.topicPrefix ?? ""}${SIGNALS_TOPIC}` : options.signalsTopic;
  const deliver = (s: KStream<RiskSignal>) => {
    if (topic) s.to(topic, { schema: "RiskSignal" });
    for (const sink of options.signalSinks ?? []) s.to(sink);
  };
  const cooldown = (name: string, ttl: number) => ({
    fn: (rec: { key: string | null; value: RiskSignal; ts: number }, ctx: ProcessContext) => {
      const rule = byRule.get(rec.value.ruleId) as RulePlan;
      const c = counters.get(rule.id) as RuleCounters;
      const key = `${rec.value.ruleId}|${rec.value.entity.type}|${rec.value.entity.id}`;
      const last = ctx.store.get(key) as number | undefined;
      if (last !== undefined && rec.ts >= last && rec.ts - last < rule.cooldownMs) {
        c.cooledDown++;
        return;
      }
      ctx.store.put(key, rec.ts, rec.ts);
      c.hits++;
      ctx.forward(rec);
    },
    name,
    options: { ttl, maxEntries: STATE_LIMITS.maxCooldownEntries },
  });
  const byRule = new Map(rules.map((r) => [r.id, r]));
  const byEntity = (s: KStream<RiskSignal>, name: string) =>
    s
      .keyBy((x) => `${x.ruleId}|${x.entity.type}|${x.entity.id}`, "rule-entity")
      .repartition({ name, serde: riskSignalSerde });
  let single: KStream<RiskSignal> | undefined;
  for (const rule of rules) {
    const c = newCounters();
    counters.set(rule.id, c);
    const out = ruleSignals(events, rule, c, options.hashKey, grace);
    if (rule.shape.kind === "match") {
      single = single ? single.merge(out) : out;
      continue;
    }
    const cd = cooldown(`${storeName(rule)}-cooldown`, rule.cooldownMs);
    const keyed = sameKeyAsEntity(rule) ? out : byEntity(out, `${storeName(rule)}-signals`);
    deliver(keyed.process<RiskSignal>(cd.name, cd.fn as never, cd.options));
  }
  if (single) {
    const singles = rules.filter((r) => r.shape.kind === "match");
    const cd = cooldown("cooldown", Math.max(...singles.map((r) => r.cooldownMs)));
    deliver(byEntity(single, "signals-by-entity").process<RiskSignal>(cd.name, cd.fn as never, cd.options));
  }
  return { app, counters };
}

/** The registration facts of a REGISTER event: the number's range and keyed hash, never the number. */
export function registrationFacts(e: Record<string, unknown>, hashKey: Buffer): RegistrationFacts {
  const digits = typeof e.phone === "string" ? phoneDigits(e.phone) : "";
  const ip = String(e.ip ?? "");
  return new RegistrationFacts(
    e.uid as number,
    e.ts as number,
    digits.slice(0, 4),
    digits === "" ? "" : keyedHash(hashKey, digits),
    String(e.deviceId ?? ""),
    ip,
    networkOf(ip, ip.includes(":") ? 64 : 24),
    String(e.method ?? ""),
  );
}

function activation(env: Envelope): Activation {
  return { event: env.e, device: env.d, registration: env.r };
}

function ready(rule: RulePlan, env: Envelope, c: RuleCounters): boolean {
  if ((rule.enrich.device && env.s !== "device" && !env.d) || (rule.enrich.registration && !env.r)) {
    c.skipped++;
    return false;
  }
  return true;
}

function keyText(v: unknown): string | null {
  if (v === null || v === undefined || v === "") return null;
  return typeof v === "number" ? String(Math.trunc(v) === v ? v : v) : String(v);
}

/** Whether a stateful rule's signals are already keyed by their entity (its key expression names it). */
function sameKeyAsEntity(rule: RulePlan): boolean {
  if (rule.entity.hashed) return false;
  const e = rule.entity.expression.text.replace(/\s+/g, "");
  const s = rule.shape;
  const keys =
    s.kind === "aggregate"
      ? s.aggregates.map((a) => a.by.text)
      : s.kind === "sequence"
        ? s.steps.map((st) => st.by.text)
        : s.kind === "absence"
          ? [s.after.by.text, s.missing.by.text]
          : [];
  return keys.length > 0 && keys.every((k) => k.replace(/\s+/g, "") === e);
}

/** A store name: the rule's id and its state fingerprint. */
function storeName(rule: RulePlan): string {
  return `${rule.id}.${rule.stateFingerprint.slice(0, 8)}`;
}

function ruleSignals(
  events: KStream<Envelope>,
  rule: RulePlan,
  c: RuleCounters,
  hashKey: Buffer,
  grace: number,
): KStream<RiskSignal> {
  const fire = (f: Firing): RiskSignal[] => {
    const s = buildSignal(f, hashKey, c);
    return s ? [s] : [];
  };
  const shape = rule.shape;
  switch (shape.kind) {
    case "match":
      return events.flatMap((env) => {
        if (env.s !== shape.stream || !ready(rule, env, c)) return [];
        const act = activation(env);
        if (!holds(shape.when, act, c)) return [];
        return fire({
          rule,
          activation: act,
          counts: {},
          window: null,
          sourceEventIds: [String(env.e.id)],
          ts: env.e.ts as number,
        });
      });

    case "aggregate": {
      const agg = shape.aggregates[0];
      if (!agg) throw new Error(`rule ${rule.id}: an aggregate rule without its aggregate`);
      const keyOf = (env: Envelope) => keyText(safeEvaluate(agg.by, activation(env), c));
      const keyed = events
        .filter((env) => {
          if (env.s !== shape.stream || !ready(rule, env, c)) return false;
          const act = activation(env);
          if (shape.when && !holds(shape.when, act, c)) return false;
          if (agg.where && !holds(agg.where, act, c)) return false;
          return keyOf(env) !== null;
        })
        .keyBy((env) => keyOf(env) as string, `${rule.id}-key`)
        .repartition({ name: `${storeName(rule)}-by-key`, serde: envelopeSerde });
      const conclude = (env: Envelope, value: number, window: { start: number; end: number }) => {
        const act = { ...activation(env), [agg.name]: value };
        if (!holds(shape.condition, act, c)) return [];
        return fire({
          rule,
          activation: act,
          counts: { [agg.name]: Math.round(value) },
          window,
          sourceEventIds: [String(env.e.id)],
          ts: env.e.ts as number,
        });
      };
      if (agg.fn === "distinct_count") {
        return keyed
          .countDistinct(
            (env) => {
              const v = agg.of ? safeEvaluate(agg.of, activation(env), c) : undefined;
              return v === null || v === undefined ? null : typeof v === "string" ? v : String(v);
            },
            {
              name: storeName(rule),
              within: agg.withinMs,
              grace,
              cap: agg.maxDistinct,
              maxKeys: agg.maxKeys,
            },
          )
          .flatMap((w: Windowed<DistinctCount<Envelope>>) =>
            conclude(w.value.record, w.value.count, { start: w.start, end: w.end }),
          );
      }
      return keyed
        .rollingSum(
          (env) => {
            if (agg.fn === "count") return 1;
            const v = agg.of ? safeEvaluate(agg.of, activation(env), c) : undefined;
            return typeof v === "number" ? v : typeof v === "bigint" ? Number(v) : null;
          },
          { name: storeName(rule), within: agg.withinMs, grace, maxKeys: agg.maxKeys },
        )
        .flatMap((w: Windowed<RollingSum<Envelope>>) =>
          conclude(w.value.record, agg.fn === "count" ? w.value.count : w.value.sum, { start: w.start, end: w.end }),
        );
    }

    case "sequence": {
      const steps = shape.steps;
      const stepFor = (env: Envelope) => steps.find((s) => s.stream === env.s);
      const keyOf = (env: Envelope) => {
        const step = stepFor(env);
        return step ? keyText(safeEvaluate(step.by, { event: env.e }, c)) : null;
      };
      return events
        .filter((env) => stepFor(env) !== undefined && ready(rule, env, c) && keyOf(env) !== null)
        .keyBy((env) => keyOf(env) as string, `${rule.id}-key`)
        .repartition({ name: `${storeName(rule)}-by-key`, serde: envelopeSerde })
        .sequence(
          steps.map((step, i) => ({
            name: step.name,
            matches: (env: Envelope, _key: string | null, earlier: readonly unknown[]) =>
              env.s === step.stream && holds(step.when, { ...activation(env), ...earlierSteps(steps, earlier) }, c),
            capture: (env: Envelope) => capture(env, step, i < steps.length - 1),
          })),
          {
            name: storeName(rule),
            maxspan: shape.maxspanMs,
            grace,
            maxPending: shape.maxPending,
            maxKeys: shape.maxKeys,
          },
        )
        .flatMap((m: SequenceMatch<Envelope>) => {
          const env = m.record;
          const earlier = m.steps.slice(0, -1).map((s) => s.captured);
          const last = m.steps[m.steps.length - 1] as { ts: number };
          return fire({
            rule,
            activation: { ...activation(env), ...earlierSteps(steps, earlier) },
            counts: {},
            window: { start: m.start, end: last.ts },
            sourceEventIds: m.steps.map((s) => (s.captured as Captured).id),
            ts: last.ts,
          });
        });
    }

    case "absence": {
      const { after, missing } = shape;
      const readsAfter = missing.when.variables.includes("after");
      const stepOf = (env: Envelope): StepPlan | undefined =>
        env.s === after.stream ? after : env.s === missing.stream ? missing : undefined;
      const keyOf = (env: Envelope) => {
        const step = stepOf(env);
        return step ? keyText(safeEvaluate(step.by, { event: env.e }, c)) : null;
      };
      return events
        .filter((env) => stepOf(env) !== undefined && ready(rule, env, c) && keyOf(env) !== null)
        .keyBy((env) => keyOf(env) as string, `${rule.id}-key`)
        .repartition({ name: `${storeName(rule)}-by-key`, serde: envelopeSerde })
        .absence(
          {
            starts: (env) => env.s === after.stream && holds(after.when, activation(env), c),
            capture: (env) => ({ id: String(env.e.id), b: envelopeSerde.encode(env).toString("base64") }),
            mayCancel: (env) => env.s === missing.stream && (readsAfter || holds(missing.when, activation(env), c)),
            captureCancel: (env) => (readsAfter ? envelopeSerde.encode(env).toString("base64") : null),
            cancels: (b, started) => {
              if (!readsAfter) return true;
              const env = envelopeSerde.decode(Buffer.from(b as string, "base64"));
              const a = envelopeSerde.decode(Buffer.from((started as { b: string }).b, "base64"));
              return holds(missing.when, { ...activation(env), after: a.e }, c);
            },
          },
          {
            name: storeName(rule),
            within: shape.withinMs,
            grace,
            maxPending: STATE_LIMITS.defaultMaxPending,
            maxKeys: shape.maxKeys,
          },
        )
        .flatMap((r: AbsenceResult) => {
          const started = r.started as { id: string; b: string };
          const env = envelopeSerde.decode(Buffer.from(started.b, "base64"));
          return fire({
            rule,
            activation: activation(env),
            counts: {},
            window: { start: r.startTs, end: r.deadline },
            sourceEventIds: [started.id],
            ts: r.deadline,
          });
        });
    }
  }
}

interface Captured {
  id: string;
  s: StreamName;
  /** The step's event (Avro, base64) when a later expression reads the step. */
  b?: string;
}

function capture(env: Envelope, step: StepPlan, notLast: boolean): Captured {
  const out: Captured = { id: String(env.e.id), s: env.s };
  if (notLast && step.captures.length > 0) out.b = encodeEvent(env.s, env.e).toString("base64");
  return out;
}

/** The earlier steps' events, by step name, for the expressions that read them. */
function earlierSteps(steps: readonly StepPlan[], earlier: readonly unknown[]): Activation {
  const out: Activation = {};
  earlier.forEach((c, i) => {
    const cap = c as Captured;
    const step = steps[i];
    if (step && cap.b) out[step.name] = decodeEvent(cap.s, Buffer.from(cap.b, "base64"));
  });
  return out;
}
