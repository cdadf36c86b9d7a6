// The health pipeline's aggregations: access events -> 1 s rows per endpoint and service; rows ->
// rows of their parents (system, app) or of a longer window (1 min, 1 h). A row is a HealthMetric:
// counts plus a DDSketch of latency, so every roll-up merges sketches and never averages percentiles.
import { DDSketch } from "@datadog/sketches-js";
import type { SchemaTypes } from "../../schemas/types.generated.ts";
import type { Serde } from "../../stream/types.ts";
import type { Aggregator } from "../../stream/windows/aggregator.ts";
import type { Windowed } from "../../stream/windows/window.ts";
import { type HealthNode, type Level, nodeId, type SloConfig } from "./slo.ts";

export type AccessLog = SchemaTypes["AccessLog"];
export type HealthMetric = SchemaTypes["HealthMetric"];

/** DDSketch's guarantee: a quantile's value is within 1% of the true one. */
export const RELATIVE_ACCURACY = 0.01;

// Every sketch starts from a decoded empty one: decoding recomputes the index mapping from gamma
// with a last-bit difference, and a sketch restored from the changelog must map and answer exactly
// like one that never left memory (a replay must write identical rows).
const EMPTY_SKETCH = new DDSketch({ relativeAccuracy: RELATIVE_ACCURACY }).toProto();

export function newSketch(): DDSketch {
  return DDSketch.fromProto(EMPTY_SKETCH) as DDSketch;
}

export function decodeSketch(bytes: Uint8Array): DDSketch {
  return DDSketch.fromProto(bytes) as DDSketch;
}

/** Counts of one node over one window, with its latency sketch. */
export interface NodeAcc extends HealthNode {
  requests: number;
  errors: number;
  slow: number;
  maxUs: number;
  sketch: DDSketch;
}

function emptyAcc(node: HealthNode): NodeAcc {
  return {
    level: node.level,
    app: node.app,
    system: node.system,
    service: node.service,
    endpoint: node.endpoint,
    requests: 0,
    errors: 0,
    slow: 0,
    maxUs: 0,
    sketch: newSketch(),
  };
}

function toRow(
  acc: NodeAcc,
  windowStart: number,
  windowMs: number,
  emittedAt: number,
  final: boolean,
  correction: number,
): HealthMetric {
  const s = acc.sketch;
  return {
    windowStart,
    windowMs,
    level: acc.level,
    app: acc.app,
    system: acc.system,
    service: acc.service,
    endpoint: acc.endpoint,
    requests: acc.requests,
    errors: acc.errors,
    slow: acc.slow,
    latencyP50Us: s.getValueAtQuantile(0.5),
    latencyP90Us: s.getValueAtQuantile(0.9),
    latencyP99Us: s.getValueAtQuantile(0.99),
    latencyP999Us: s.getValueAtQuantile(0.999),
    latencyMaxUs: acc.maxUs,
    sketch: Buffer.from(s.toProto()),
    final,
    emittedAt,
    correction,
  };
}

// --- 1 s windows of access events, per endpoint and service ------------------------------------------

interface EndpointAcc extends NodeAcc {
  slowAboveUs: number;
}

/** Accumulator of one service partition's window: endpoints by service, then by endpoint. */
export type ServiceWindowAcc = Map<string, Map<string, EndpointAcc>>;

/**
 * Folds access events into per-endpoint counts and sketches; the result is one row per endpoint
 * and one per service (its endpoints' counts summed and sketches merged).
 */
export function accessAggregator(slo: SloConfig): Aggregator<AccessLog, ServiceWindowAcc, NodeAcc[]> {
  return {
    init: () => new Map(),
    add(acc, ev) {
      let endpoints = acc.get(ev.service);
      if (endpoints === undefined) {
        endpoints = new Map();
        acc.set(ev.service, endpoints);
      }
      let e = endpoints.get(ev.endpoint);
      if (e === undefined) {
        e = {
          ...emptyAcc({
            level: "ENDPOINT",
            app: ev.app,
            system: ev.system,
            service: ev.service,
            endpoint: ev.endpoint,
          }),
          slowAboveUs: slo.slowThresholdUs(ev.app, ev.system, ev.service, ev.endpoint),
        };
        endpoints.set(ev.endpoint, e);
      }
      const latency = ev.latencyUs;
      e.requests++;
      if (slo.isError(ev.status, ev.errorCode)) e.errors++;
      if (latency > e.slowAboveUs) e.slow++;
      if (latency > e.maxUs) e.maxUs = latency;
      e.sketch.accept(latency);
      return acc;
    },
    result(acc) {
      const out: NodeAcc[] = [];
      for (const endpoints of acc.values()) {
        let service: NodeAcc | undefined;
        for (const e of endpoints.values()) {
          out.push(e);
          service ??= emptyAcc({ level: "SERVICE", app: e.app, system: e.system, service: e.service, endpoint: "" });
          mergeInto(service, e);
        }
        if (service) out.push(service);
      }
      return out;
    },
    serde: nestedAccSerde(),
  };
}

function mergeInto(into: NodeAcc, from: NodeAcc): void {
  into.requests += from.requests;
  into.errors += from.errors;
  into.slow += from.slow;
  if (from.maxUs > into.maxUs) into.maxUs = from.maxUs;
  into.sketch.merge(from.sketch);
}

// --- roll-ups: rows into parents or longer windows ------------------------------------------------------

/** Nodes a row counts towards. */
export type Targets = (row: HealthMetric) => HealthNode[];

/** The same node (a longer window). */
export const sameNode: Targets = (row) => [row];

/** The system and the app of a service row. */
export const parentsOfService: Targets = (row) => [
  { level: "SYSTEM", app: row.app, system: row.system, service: "", endpoint: "" },
  { level: "APP", app: row.app, system: "", service: "", endpoint: "" },
];

export type RollupAcc = Map<string, NodeAcc>;

/** Merges rows (counts summed, sketches merged) into the nodes `targets` names. */
export function rollupAggregator(targets: Targets): Aggregator<HealthMetric, RollupAcc, NodeAcc[]> {
  return {
    init: () => new Map(),
    add(acc, row) {
      const sketch = decodeSketch(row.sketch);
      for (const node of targets(row)) {
        const id = nodeId(node);
        let a = acc.get(id);
        if (a === undefined) {
          a = emptyAcc(node);
          acc.set(id, a);
        }
        a.requests += row.requests;
        a.errors += row.errors;
        a.slow += row.slow;
        if (row.latencyMaxUs > a.maxUs) a.maxUs = row.latencyMaxUs;
        a.sketch.merge(sketch);
      }
      return acc;
    },
    result: (acc) => [...acc.values()],
    serde: flatAccSerde(),
  };
}

/**
 * A window's nodes as HealthMetric rows, what the sinks take: early, final and corrected rows. A
 * correction's emittedAt is later than any row the step emitted before, its window's final row
 * included, even within one millisecond: the tables keep the latest emittedAt of a window.
 */
export function windowRows(windowMs: number, now: () => number = Date.now) {
  let last = Number.NEGATIVE_INFINITY;
  return (w: Windowed<NodeAcc[]>): HealthMetric[] => {
    let emittedAt = now();
    if (w.correction && emittedAt <= last) emittedAt = last + 1;
    if (emittedAt > last) last = emittedAt;
    return w.value.map((acc) => toRow(acc, w.start, windowMs, emittedAt, w.final, w.correction ?? 0));
  };
}

/**
 * What a correction adds, as rows: the late events' own counts and sketch for each node they touched.
 * Roll-ups (the 1 min and 1 h windows, the system and app levels) take the on-time final rows and
 * these, never a corrected row itself, which would count its window twice. Not for the sinks.
 */
export function correctionDeltas(windowMs: number, now: () => number = Date.now) {
  return (w: Windowed<NodeAcc[]>): HealthMetric[] => {
    if (!w.correction || !w.delta) return [];
    const emittedAt = now();
    return w.delta.map((acc) => toRow(acc, w.start, windowMs, emittedAt, true, w.correction ?? 0));
  };
}

// --- changelog encodings of the accumulators -------------------------------------------------------------

interface AccJson extends HealthNode {
  requests: number;
  errors: number;
  slow: number;
  maxUs: number;
  sketch: string;
  slowAboveUs?: number;
}

function accToJson(a: NodeAcc & { slowAboveUs?: number }): AccJson {
  return {
    level: a.level,
    app: a.app,
    system: a.system,
    service: a.service,
    endpoint: a.endpoint,
    requests: a.requests,
    errors: a.errors,
    slow: a.slow,
    maxUs: a.maxUs,
    sketch: Buffer.from(a.sketch.toProto()).toString("base64"),
    ...(a.slowAboveUs !== undefined ? { slowAboveUs: a.slowAboveUs } : {}),
  };
}

function accFromJson(j: AccJson): NodeAcc & { slowAboveUs: number } {
  return {
    level: j.level as Level,
    app: j.app,
    system: j.system,
    service: j.service,
    endpoint: j.endpoint,
    requests: j.requests,
    errors: j.errors,
    slow: j.slow,
    maxUs: j.maxUs,
    sketch: decodeSketch(Buffer.from(j.sketch, "base64")),
    slowAboveUs: j.slowAboveUs ?? Number.POSITIVE_INFINITY,
  };
}

function nestedAccSerde(): Serde<ServiceWindowAcc> {
  return {
    encode: (acc) => Buffer.from(JSON.stringify([...acc.values()].flatMap((m) => [...m.values()].map(accToJson)))),
    decode: (b) => {
      const acc: ServiceWindowAcc = new Map();
      for (const j of JSON.parse(b.toString("utf8")) as AccJson[]) {
        let m = acc.get(j.service);
        if (m === undefined) {
          m = new Map();
          acc.set(j.service, m);
        }
        m.set(j.endpoint, accFromJson(j));
      }
      return acc;
    },
  };
}

function flatAccSerde(): Serde<RollupAcc> {
  return {
    encode: (acc) => Buffer.from(JSON.stringify([...acc.values()].map(accToJson))),
    decode: (b) => new Map((JSON.parse(b.toString("utf8")) as AccJson[]).map((j) => [nodeId(j), accFromJson(j)])),
  };
}
