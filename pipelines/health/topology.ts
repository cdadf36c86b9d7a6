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
  /** How far out of order access events may arrive within a partition. */
  outOfOrderness?: Duration;
  /** How long after the watermark passes a second's end its window still takes records. */
  grace?: Duration;
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
  outOfOrderness: "1s",
  grace: 0,
  idleTimeout: "10s",
  rollups: ["1m", "1h"],
} as const;

const metricCodec = codecFor("HealthMetric");
const metricSerde: Serde<HealthMetric> = {
  encode: (v) => metricCodec.encode(v),
  decode: (b) => metricCodec.decode(b),
};

export function buildHealthApp(options: HealthTopologyOptions): StreamApp {
  const o = { ...HEALTH_DEFAULTS, ...options };
  const now = options.now ?? Date.now;
  const app = new StreamApp({
    appId: o.appId,
    dlqTopic: o.dlqTopic,
    guarantee: o.guarantee ?? "exactly-once",
    commitInterval: o.commitInterval ?? 1000,
  });
  const second = Windows.tumbling(1000).grace(o.grace);

  const lower = app
    .stream<"AccessLog">(o.input, {
      schema: "AccessLog",
      outOfOrderness: o.outOfOrderness,
      idleTimeout: o.idleTimeout,
    })
    .window(second)
    .aggregate(accessAggregator(o.slo), { name: "second" })
    .flatMap(windowRows(1000, now));

  const upper = lower
    .filter((r) => r.level === "SERVICE")
    .keyBy((r) => r.app, "app")
    .repartition({ name: "services", serde: metricSerde })
    .window(second)
    .aggregate(rollupAggregator(parentsOfService), { name: "second-up" })
    .flatMap(windowRows(1000, now));

  const evaluator = new AlertEvaluator(o.slo, Windows.tumbling(1000).grace(o.grace).spec.grace);
  for (const [stage, rows, levels] of [
    ["lower", lower, ["ENDPOINT", "SERVICE"]],
    ["upper", upper, ["SYSTEM", "APP"]],
  ] as const) {
    publish(rows, o);
    let previous: KStream<HealthMetric> = rows;
    for (const size of o.rollups) {
      const w = Windows.tumbling(size);
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
      if (o.alertsTopic) alerts.to(o.alertsTopic);
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
