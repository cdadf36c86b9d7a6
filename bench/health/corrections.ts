// What late events cost the health pipeline: the same traffic run through the health topology in the
// stream runtime's TopologyTestDriver (the worker's task code, no broker, one process), once with every
// host on time and once with one host of every service shipping 2 minutes behind the others (its
// events corrected into rows already written), and once with one host per service 20 s behind (held
// by the per-source watermarks, nothing to correct). Reports CPU per event and per corrected event,
// rows written, corrections emitted, and the closed windows kept for corrections (count and bytes).
//   node --import tsx bench/health/corrections.ts [--seconds 300] [--rate 2000] [--runs 3]
import { ENDPOINTS, SERVICES } from "../../infra/simulator/platform.ts";
import type { HealthAlert } from "../../pipelines/health/alerts.ts";
import type { AccessLog, HealthMetric } from "../../pipelines/health/rows.ts";
import { SloConfig } from "../../pipelines/health/slo.ts";
import { buildHealthApp } from "../../pipelines/health/topology.ts";
import type { Sink } from "../../stream/sink.ts";
import { TopologyTestDriver } from "../../stream/testing/test-driver.ts";
import type { Rec } from "../../stream/types.ts";
import { benchFlags } from "../support/flags.ts";
import { median } from "../support/process.ts";

const { argv, num } = benchFlags();
const SECONDS = num("seconds", 300);
const RATE = num("rate", 2000);
const RUNS = num("runs", 3);
const T0 = Date.UTC(2026, 10, 20, 12, 0, 0);

class CountingSink<V> implements Sink<V> {
  records = 0;
  corrections = 0;
  readonly highWater = Number.POSITIVE_INFINITY;
  constructor(readonly name: string) {}
  write(rec: Rec<V>): void {
    this.records++;
    if ((rec.value as { correction?: number }).correction) this.corrections++;
  }
  async flush(): Promise<void> {}
  pending(): number {
    return 0;
  }
  async close(): Promise<void> {}
}

function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Shipped {
  event: AccessLog;
  source: string;
  /** When it reaches Kafka, in event time of the on-time hosts. */
  at: number;
}

/** The traffic, each event with its host's source and when it is shipped (`delayOf` its host's delay). */
function traffic(delayOf: (host: string, hostIndex: number) => number): Shipped[] {
  const r = rng(11);
  const out: Shipped[] = [];
  const n = SECONDS * RATE;
  for (let i = 0; i < n; i++) {
    const ts = T0 + Math.floor((i * 1000) / RATE);
    const svc = SERVICES[Math.floor(r() * SERVICES.length)] as (typeof SERVICES)[number];
    const endpoints = ENDPOINTS.filter((e) => e.service === svc.name);
    const ep = endpoints[Math.floor(r() * endpoints.length)] as (typeof ENDPOINTS)[number];
    const hostIndex = Math.floor(r() * svc.hosts);
    const host = `${svc.name}-${hostIndex + 1}`;
    const latencyUs = Math.round(
      ep.medianMs * 1000 * Math.exp(ep.sigma * Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r())),
    );
    out.push({
      event: {
        id: `e${i}`,
        ts,
        app: "live",
        system: svc.system,
        service: svc.name,
        endpoint: ep.path,
        method: ep.method,
        status: r() < ep.errorRate ? 503 : 200,
        latencyUs,
        bytesIn: 0,
        bytesOut: ep.bytesOut,
        errorCode: null,
        traceId: null,
        caller: null,
        uid: null,
        deviceId: null,
        clientIp: "10.0.0.1",
        roomId: null,
        userAgent: null,
        urlQuery: null,
        referrer: null,
        host,
        source: null,
      },
      source: `${host}:/var/log/${svc.name}/access.log`,
      at: ts + delayOf(host, hostIndex),
    });
  }
  return out.sort((a, b) => a.at - b.at);
}

interface Result {
  cpuMs: number;
  events: number;
  rows: number;
  correctedRows: number;
  correctedRecords: number;
  correctionsEmitted: number;
  late: number;
  kept: number;
  keptBytes: number;
}

function runOnce(shipped: Shipped[]): Result {
  const metrics = new CountingSink<HealthMetric>("metrics");
  const alerts = new CountingSink<HealthAlert>("alerts");
  const app = buildHealthApp({
    slo: SloConfig.load(),
    metricsSink: metrics,
    alertsSink: alerts,
    metricsTopic: null,
    alertsTopic: null,
  });
  const driver = new TopologyTestDriver(app, { partitions: { "logs.access": 6 } });
  const closing = SERVICES.map((s, i) => ({
    ...(shipped[0]?.event as AccessLog),
    service: s.name,
    system: s.system,
    id: `closing-${i}`,
    ts: T0 + SECONDS * 1000 + 20 * 60_000,
  }));
  const cpu = process.cpuUsage();
  let i = 0;
  for (const s of shipped) {
    driver.pipe("logs.access", s.event, { key: s.event.service, headers: { "weir-source": s.source } });
    // The worker checkpoints every second of wall clock; at these rates, about every RATE events.
    if (++i % RATE === 0) driver.checkpoint();
  }
  for (const e of closing) driver.pipe("logs.access", e, { key: e.service });
  driver.checkpoint();
  const used = process.cpuUsage(cpu);
  let correctedRecords = 0;
  let correctionsEmitted = 0;
  let late = 0;
  let kept = 0;
  let keptBytes = 0;
  for (const t of driver.allTasks()) {
    const c = t.corrections();
    // Late events: what the seconds' step corrected (the roll-ups count the deltas again).
    correctedRecords += t.corrections("aggregate second").records;
    correctionsEmitted += c.emitted;
    kept += c.kept;
    late += t.counters.late;
    for (const store of t.stores.values()) {
      for (const [, v] of store.entries()) {
        const bytes = (v as { closed?: { bytes: Buffer | null } }).closed?.bytes;
        if (bytes) keptBytes += bytes.length;
      }
    }
  }
  return {
    cpuMs: (used.user + used.system) / 1000,
    events: shipped.length,
    rows: metrics.records,
    correctedRows: metrics.corrections,
    correctedRecords,
    correctionsEmitted,
    late,
    kept,
    keptBytes,
  };
}

const scenarios: Array<[string, (host: string, hostIndex: number) => number]> = [
  ["every host on time", () => 0],
  ["one host per service 2 min behind", (_h, i) => (i === 0 ? 120_000 : 0)],
  ["one host per service 20 s behind", (_h, i) => (i === 0 ? 20_000 : 0)],
];

console.log(`node --import tsx bench/health/corrections.ts ${argv.join(" ")}`.trim());
console.log(`${SECONDS} s of event time at ${RATE} events/s, 7 services on 2-4 hosts each, 6 partitions\n`);
const results = new Map<string, Result[]>();
for (let run = 0; run < RUNS; run++) {
  for (const [name, delay] of scenarios) {
    const shipped = traffic(delay);
    const r = runOnce(shipped);
    const list = results.get(name) ?? [];
    list.push(r);
    results.set(name, list);
  }
}
const base = median((results.get(scenarios[0]?.[0] as string) ?? []).map((r) => r.cpuMs));
console.log(
  "| scenario | events | CPU (median, s) | µs per event | rows written | corrected rows | late events corrected | corrections emitted (all steps) | late (DLQ) | closed windows kept | bytes kept (per window) | extra CPU per corrected event |",
);
console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
for (const [name, list] of results) {
  const cpu = median(list.map((r) => r.cpuMs));
  const r = list[0] as Result;
  const extra = r.correctedRecords > 0 ? `${(((cpu - base) * 1000) / r.correctedRecords).toFixed(1)} µs` : "–";
  console.log(
    `| ${name} | ${r.events.toLocaleString("en")} | ${(cpu / 1000).toFixed(2)} | ${((cpu * 1000) / r.events).toFixed(1)} | ${r.rows.toLocaleString("en")} | ${r.correctedRows.toLocaleString("en")} | ${r.correctedRecords.toLocaleString("en")} | ${r.correctionsEmitted.toLocaleString("en")} | ${r.late} | ${r.kept.toLocaleString("en")} | ${r.keptBytes.toLocaleString("en")} (${r.kept ? Math.round(r.keptBytes / r.kept) : 0}) | ${extra} |`,
  );
}
