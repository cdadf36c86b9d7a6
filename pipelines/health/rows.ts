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
//
// A window's accumulator is written to the changelog at checkpoints while it is open, and kept
// encoded for its allowed lateness after it closed (an hour of seconds per service by default), so
// its size is the pipeline's state. The form: [u8 1][varint nodes], then per node its level, names,
// counts and sketch. A sketch is the non-zero range of each of its two stores, counts as varints
// (a DDSketch's protobuf form carries its stores' padding, 128 doubles and more: ~1 KB for a second
// of one endpoint, about ten times this). Accumulators written before (JSON with base64 sketches,
// first byte '[') are still read.

const BINARY_FORM = 1;
const LEVEL_CODES: Level[] = ["APP", "SYSTEM", "SERVICE", "ENDPOINT"];

class AccWriter {
  private buf = Buffer.allocUnsafe(1024);
  private at = 0;

  private room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n));
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
  }

  byte(v: number): void {
    this.room(1);
    this.buf[this.at++] = v;
  }

  /** A non-negative integer below 2^53. */
  varint(v: number): void {
    this.room(8);
    while (v >= 0x80) {
      this.buf[this.at++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.at++] = v;
  }

  f64(v: number): void {
    this.room(8);
    this.buf.writeDoubleLE(v, this.at);
    this.at += 8;
  }

  text(s: string): void {
    const n = Buffer.byteLength(s);
    this.varint(n);
    this.room(n);
    this.at += this.buf.write(s, this.at, "utf8");
  }

  done(): Buffer {
    return this.buf.subarray(0, this.at);
  }
}

class AccReader {
  at = 1;
  constructor(private readonly buf: Buffer) {}

  byte(): number {
    return this.buf[this.at++] as number;
  }

  varint(): number {
    let v = 0;
    let scale = 1;
    for (;;) {
      const b = this.buf[this.at++] as number;
      v += (b & 0x7f) * scale;
      if (b < 0x80) return v;
      scale *= 0x80;
    }
  }

  f64(): number {
    const v = this.buf.readDoubleLE(this.at);
    this.at += 8;
    return v;
  }

  text(): string {
    const n = this.varint();
    const s = this.buf.toString("utf8", this.at, this.at + n);
    this.at += n;
    return s;
  }
}

type SketchStore = DDSketch["store"];

/** A store's non-zero bins: [varint n] then, if n > 0, [zigzag first key][u8 integral][n counts]. */
function writeStore(w: AccWriter, store: SketchStore): void {
  const bins = store.bins;
  let lo = 0;
  let hi = bins.length - 1;
  while (lo <= hi && bins[lo] === 0) lo++;
  while (hi >= lo && bins[hi] === 0) hi--;
  const n = hi - lo + 1;
  w.varint(Math.max(0, n));
  if (n <= 0) return;
  const first = lo + store.offset;
  w.varint(first >= 0 ? first * 2 : -first * 2 - 1);
  let integral = true;
  for (let i = lo; i <= hi; i++) {
    const c = bins[i] as number;
    if (!Number.isInteger(c) || c < 0 || c > Number.MAX_SAFE_INTEGER) integral = false;
  }
  w.byte(integral ? 1 : 0);
  for (let i = lo; i <= hi; i++) {
    if (integral) w.varint(bins[i] as number);
    else w.f64(bins[i] as number);
  }
}

function readStore(r: AccReader, store: SketchStore): void {
  const n = r.varint();
  if (n === 0) return;
  const z = r.varint();
  const first = z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  const integral = r.byte() === 1;
  for (let i = 0; i < n; i++) {
    const c = integral ? r.varint() : r.f64();
    if (c !== 0) store.add(first + i, c);
  }
}

function writeAcc(w: AccWriter, a: NodeAcc & { slowAboveUs?: number }): void {
  w.byte(LEVEL_CODES.indexOf(a.level));
  w.text(a.app);
  w.text(a.system);
  w.text(a.service);
  w.text(a.endpoint);
  w.varint(a.requests);
  w.varint(a.errors);
  w.varint(a.slow);
  w.varint(a.maxUs);
  w.f64(a.slowAboveUs ?? Number.POSITIVE_INFINITY);
  writeStore(w, a.sketch.store);
  writeStore(w, a.sketch.negativeStore);
  w.f64(a.sketch.zeroCount);
}

function readAcc(r: AccReader): NodeAcc & { slowAboveUs: number } {
  const level = LEVEL_CODES[r.byte()] as Level;
  const node = { level, app: r.text(), system: r.text(), service: r.text(), endpoint: r.text() };
  const requests = r.varint();
  const errors = r.varint();
  const slow = r.varint();
  const maxUs = r.varint();
  const slowAboveUs = r.f64();
  // Built like a decoded sketch (see newSketch): it maps and answers as one that never left memory.
  const sketch = newSketch();
  readStore(r, sketch.store);
  readStore(r, sketch.negativeStore);
  sketch.zeroCount = r.f64();
  sketch.count = sketch.store.count + sketch.negativeStore.count + sketch.zeroCount;
  return { ...node, requests, errors, slow, maxUs, sketch, slowAboveUs };
}

/** Accumulators of nodes in the binary form. */
export function encodeAccs(accs: Iterable<NodeAcc & { slowAboveUs?: number }>, count: number): Buffer {
  const w = new AccWriter();
  w.byte(BINARY_FORM);
  w.varint(count);
  for (const a of accs) writeAcc(w, a);
  return w.done();
}

/** Accumulators of nodes, from the binary form or the JSON one written before it. */
export function decodeAccs(b: Buffer): Array<NodeAcc & { slowAboveUs: number }> {
  if (b[0] !== BINARY_FORM) return (JSON.parse(b.toString("utf8")) as AccJson[]).map(accFromJson);
  const r = new AccReader(b);
  const n = r.varint();
  const out: Array<NodeAcc & { slowAboveUs: number }> = [];
  for (let i = 0; i < n; i++) out.push(readAcc(r));
  return out;
}

interface AccJson extends HealthNode {
  requests: number;
  errors: number;
  slow: number;
  maxUs: number;
  sketch: string;
  slowAboveUs?: number;
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
    encode: (acc) => {
      let n = 0;
      for (const m of acc.values()) n += m.size;
      return encodeAccs(
        (function* () {
          for (const m of acc.values()) yield* m.values();
        })(),
        n,
      );
    },
    decode: (b) => {
      const acc: ServiceWindowAcc = new Map();
      for (const a of decodeAccs(b)) {
        let m = acc.get(a.service);
        if (m === undefined) {
          m = new Map();
          acc.set(a.service, m);
        }
        m.set(a.endpoint, a);
      }
      return acc;
    },
  };
}

function flatAccSerde(): Serde<RollupAcc> {
  return {
    encode: (acc) => encodeAccs(acc.values(), acc.size),
    decode: (b) => new Map(decodeAccs(b).map((a) => [nodeId(a), a])),
  };
}
