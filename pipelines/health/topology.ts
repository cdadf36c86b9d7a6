// The health pipeline's topology. From logs.access (keyed by service):
//
//   1 s windows per service partition -> endpoint and service rows --+--> metrics.health, ClickHouse
//                                                                   +--> 1 min, then 1 h roll-ups (sketches merged)
//                                                                   +--> alerts (burn rate, latency, spike)
//   service rows, re-keyed by app (one repartition) -> 1 s system and app rows -> the same three
//
// An endpoint and its service live in one partition (the topic is keyed by service), so only the
// system and app levels need the repartition.
//
// Late events: every window keeps its state for `allowedLateness` after it closed. A late event
// updates its second, whose rows are written again (correction n, a later emittedAt: the tables keep
// the latest); what it added (the correction's delta rows) flows on like a final row into the
// minute, the hour and the system and app seconds, which are corrected in turn. Alerts take the
// seconds' on-time final rows only: an alert already sent stays sent, and a correction raises none.
// Each partition's watermark is the minimum over its sources (weir ship's weir-source header: one
// host's log file), so a host that ships behind the others holds the windows open, up to
// `maxSourceLag`, instead of having its lines judged late.

import { codecFor } from "../../schemas/codec.ts";
import type { KStream } from "../../stream/dsl/app.ts";
import { StreamApp } from "../../stream/dsl/app.ts";
import type { Sink } from "../../stream/sink.ts";
import type { Duration, Serde } from "../../stream/types.ts";
import { Windows } from "../../stream/windows/spec.ts";
import type { WindowDef, Windowed } from "../../stream/windows/window.ts";
import type { TumblingSpec } from "../../stream/windows/window-aggregate.ts";
import { AlertEvaluator, type HealthAlert } from "./alerts.ts";
import {
  type AccessLog,
  accessAggregator,
  correctionDeltas,
  type HealthMetric,
  type NodeAcc,
  parentsOfService,
  rollupAggregator,
  sameNode,
  windowRows,
} from "./rows.ts";
import type { SloConfig } from "./slo.ts";

export interface HealthTopologyOptions {
  slo: SloConfig;
  /** Consumer group and internal topic prefix. */
  appId?: string;
  input?: string;
  /** Kafka topic for the rows; null for none. */
  metricsTopic?: string | null;
  alertsTopic?: string | null;
  dlqTopic?: string;
  /** Where rows and alerts are stored (ClickHouse in production, collecting sinks in tests). */
  metricsSink?: Sink<HealthMetric>;
  alertsSink?: Sink<HealthAlert>;
  /** Event-time settings; default: the SLO file's `stream` section. */
  outOfOrderness?: Duration;
  grace?: Duration;
  earlyResults?: boolean;
  idleTimeout?: Duration;
  maxSourceLag?: Duration;
  allowedLateness?: Duration;
  maxClosedWindows?: number;
  /** Roll-up window lengths, each from the previous: default 1 min, then 1 h. */
  rollups?: Duration[];
  guarantee?: "at-least-once" | "exactly-once";
  commitInterval?: Duration;
  /** Processing-time clock for emittedAt (tests pin it). */
  now?: () => number;
}

export const HEALTH_DEFAULTS = {
  appId: "weir-health",
  input: "logs.access",
  metricsTopic: "metrics.health",
  alertsTopic: "alerts.health",
  dlqTopic: "dlq.health",
  rollups: ["1m", "1h"],
} as const;

const metricCodec = codecFor("HealthMetric");
const metricSerde: Serde<HealthMetric> = {
  encode: (v) => metricCodec.encode(v),
  decode: (b) => metricCodec.decode(b),
};

export function buildHealthApp(options: HealthTopologyOptions): StreamApp {
  const o = { ...HEALTH_DEFAULTS, ...options.slo.file.stream, ...options };
  const now = options.now ?? Date.now;
  const app = new StreamApp({
    appId: o.appId,
    dlqTopic: o.dlqTopic,
    guarantee: o.guarantee ?? "exactly-once",
    commitInterval: o.commitInterval ?? 1000,
  });
  const lateness = (w: WindowDef<TumblingSpec>) =>
    w.grace(o.grace).allowedLateness(o.allowedLateness, { maxClosed: o.maxClosedWindows });
  const second = lateness(Windows.tumbling(1000));

  const secondWindows = app
    .stream<"AccessLog">(o.input, {
      schema: "AccessLog",
      outOfOrderness: o.outOfOrderness,
      idleTimeout: o.idleTimeout,
      maxSourceLag: o.maxSourceLag,
    })
    .window(second);
  // Early rows make a second queryable as soon as it ends; everything downstream takes final rows only.
  const seconds = (o.earlyResults ? secondWindows.emitEarly(1000) : secondWindows).aggregate(accessAggregator(o.slo), {
    name: "second",
  });
  const lower = rowsOf(seconds, 1000, now);

  const upper = rowsOf(
    lower.increments
      .filter((r) => r.level === "SERVICE")
      .keyBy((r) => r.app, "app")
      .repartition({ name: "services", serde: metricSerde })
      .window(second)
      .aggregate(rollupAggregator(parentsOfService), { name: "second-up" }),
    1000,
    now,
  );

  const evaluator = new AlertEvaluator(o.slo, second.spec.grace);
  for (const [stage, rows, levels] of [
    ["lower", lower, ["ENDPOINT", "SERVICE"]],
    ["upper", upper, ["SYSTEM", "APP"]],
  ] as const) {
    publish(rows.emitted, o);
    let previous = rows.increments;
    for (const size of o.rollups) {
      // A second's final row comes `grace` after its end: the roll-up waits as long before it closes.
      const w = lateness(Windows.tumbling(size));
      const rolled = rowsOf(
        previous.window(w).aggregate(rollupAggregator(sameNode), { name: `${stage}-${w.spec.size / 1000}s` }),
        w.spec.size,
        now,
      );
      publish(rolled.emitted, o);
      previous = rolled.increments;
    }
    if (levels.some((l) => evaluator.watches(l))) {
      const alerts = rows.onTime.process<HealthAlert>(
        `alerts-${stage}`,
        (rec, ctx) => evaluator.onRow(rec.value, ctx.store, (a) => ctx.forward(alertRec(a))),
        {
          ttl: evaluator.retentionMs,
          onWatermark: (wm, ctx) => evaluator.onWatermark(wm, ctx.store, (a) => ctx.forward(alertRec(a))),
        },
      );
      if (o.alertsTopic) alerts.to(o.alertsTopic, { schema: "HealthAlert" });
      if (o.alertsSink) alerts.to(o.alertsSink);
    }
  }
  return app;
}

/**
 * A window step's rows: `emitted`, every row written (early, final, corrected); `onTime`, the final
 * rows as the windows closed (alerts); `increments`, those and the deltas of corrections (roll-ups).
 */
function rowsOf(windows: KStream<Windowed<NodeAcc[]>>, windowMs: number, now: () => number) {
  const emitted = windows.flatMap(windowRows(windowMs, now));
  const onTime = emitted.filter((r) => r.final && r.correction === 0);
  const increments = onTime.merge(windows.flatMap(correctionDeltas(windowMs, now)));
  return { emitted, onTime, increments };
}

function alertRec(a: HealthAlert) {
  return { key: a.service || a.app, value: a, ts: a.ts };
}

function publish(
  rows: KStream<HealthMetric>,
  o: { metricsTopic: string | null; metricsSink?: Sink<HealthMetric> | undefined },
): void {
  if (o.metricsTopic) rows.to(o.metricsTopic, { schema: "HealthMetric" });
  if (o.metricsSink) rows.to(o.metricsSink);
}

export type { AccessLog };
