// The health pipeline's topology. From logs.access (keyed by service):
//
//   1 s windows per service partition -> endpoint and service rows --+--> metrics.health, ClickHouse
//                                                                   +--> 1 min, then 1 h roll-ups (sketches merged)
//                                                                   +--> alerts (burn rate, latency, spike)
//   service rows, re-keyed by app (one repartition) -> 1 s system and app rows -> the same three
//
// An endpoint and its service live in one partition (the topic is keyed by service), so only the
// system and app levels need the repartition.

import { codecFor } from "../../schemas/codec.ts";
import type { KStream } from "../../stream/dsl/app.ts";
import { StreamApp } from "../../stream/dsl/app.ts";
import type { Sink } from "../../stream/sink.ts";
import type { Duration, Serde } from "../../stream/types.ts";
import { Windows } from "../../stream/windows/spec.ts";
import { AlertEvaluator, type HealthAlert } from "./alerts.ts";
import {
  type AccessLog,
  accessAggregator,
  type HealthMetric,
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
  const second = Windows.tumbling(1000).grace(o.grace);

  const seconds = app
    .stream<"AccessLog">(o.input, {
      schema: "AccessLog",
      outOfOrderness: o.outOfOrderness,
      idleTimeout: o.idleTimeout,
    })
    .window(second);
  // Early rows make a second queryable as soon as it ends; everything downstream takes final rows only.
  const everyRow = (o.earlyResults ? seconds.emitEarly(1000) : seconds)
    .aggregate(accessAggregator(o.slo), { name: "second" })
    .flatMap(windowRows(1000, now));
  const lower = everyRow.filter((r) => r.final);

  const upper = lower
    .filter((r) => r.level === "SERVICE")
    .keyBy((r) => r.app, "app")
    .repartition({ name: "services", serde: metricSerde })
    .window(second)
    .aggregate(rollupAggregator(parentsOfService), { name: "second-up" })
    .flatMap(windowRows(1000, now));

  const evaluator = new AlertEvaluator(o.slo, second.spec.grace);
  for (const [stage, rows, published, levels] of [
    ["lower", lower, everyRow, ["ENDPOINT", "SERVICE"]],
    ["upper", upper, upper, ["SYSTEM", "APP"]],
  ] as const) {
    publish(published, o);
    let previous: KStream<HealthMetric> = rows;
    for (const size of o.rollups) {
      // A second's final row comes `grace` after its end: the roll-up waits as long before it closes.
      const w = Windows.tumbling(size).grace(o.grace);
      previous = previous
        .window(w)
        .aggregate(rollupAggregator(sameNode), { name: `${stage}-${w.spec.size / 1000}s` })
        .flatMap(windowRows(w.spec.size, now));
      publish(previous, o);
    }
    if (levels.some((l) => evaluator.watches(l))) {
      const alerts = rows.process<HealthAlert>(
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

function alertRec(a: HealthAlert) {
  return { key: a.service || a.app, value: a, ts: a.ts };
}

function publish(
  rows: KStream<HealthMetric>,
  o: { metricsTopic: string | null; metricsSink?: Sink<HealthMetric> | undefined },
): void {
  if (o.metricsTopic) rows.to(o.metricsTopic);
  if (o.metricsSink) rows.to(o.metricsSink);
}

export type { AccessLog };
