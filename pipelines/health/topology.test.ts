import assert from "node:assert/strict";
import { test } from "node:test";
import { codecFor } from "../../schemas/codec.ts";
import { CollectingSink, TopologyTestDriver } from "../../stream/testing/test-driver.ts";
import type { HealthAlert } from "./alerts.ts";
import { type AccessLog, decodeSketch, type HealthMetric } from "./rows.ts";
import { SloConfig } from "./slo.ts";
import { buildHealthApp } from "./topology.ts";

const T0 = Date.UTC(2026, 10, 20, 12, 0, 0);
const SERVICES = [
  { system: "gifting", service: "gift-svc", endpoints: ["/gift/send", "/gift/list"] },
  { system: "gifting", service: "pay-svc", endpoints: ["/wallet/debit"] },
  { system: "room", service: "room-svc", endpoints: ["/room/{id}/enter"] },
];

const SLO = SloConfig.parse(`
defaults:
  availability: 99.9%
  latency: { threshold: 100ms, target: 99% }
  runbook: https://runbooks.test/{service}
services:
  pay-svc:
    latency: { threshold: 1s }
alerts:
  levels: [service, endpoint]
  rules:
    - { name: availability-2m-10s, slo: availability, long: 2m, short: 10s, burn: 14.4, severity: page }
    - { name: latency-1m-10s, slo: latency, long: 1m, short: 10s, burn: 1, severity: page }
    - { name: availability-1h-5m, slo: availability, long: 1h, short: 5m, burn: 14.4, severity: page }
  minRequests: 20
  minBad: 3
  resolveAfter: 5s
  spike: { factor: 3, baseline: 1m, minHistory: 30s, minRequests: 50 }
`);

/** A small deterministic random source (mulberry32). */
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

interface Traffic {
  seconds: number;
  /** Requests per second per endpoint. */
  qps: number;
  /** Per second and endpoint: overrides (error rate, latency factor, qps factor). */
  incident?: (
    second: number,
    service: string,
    endpoint: string,
  ) => { errorRate?: number; latencyFactor?: number; qpsFactor?: number };
  seed?: number;
}

function traffic(t: Traffic): AccessLog[] {
  const r = rng(t.seed ?? 7);
  const out: AccessLog[] = [];
  let n = 0;
  for (let s = 0; s < t.seconds; s++) {
    for (const svc of SERVICES) {
      for (const endpoint of svc.endpoints) {
        const inc = t.incident?.(s, svc.service, endpoint) ?? {};
        const count = Math.round(t.qps * (inc.qpsFactor ?? 1));
        for (let i = 0; i < count; i++) {
          const latencyUs = Math.round(20_000 * Math.exp(0.4 * normal(r)) * (inc.latencyFactor ?? 1));
          const error = r() < (inc.errorRate ?? 0.0005);
          out.push({
            id: `q-${n++}`,
            ts: T0 + s * 1000 + Math.floor((i * 1000) / count),
            app: "live",
            system: svc.system,
            service: svc.service,
            endpoint,
            method: "POST",
            status: error ? 503 : 200,
            latencyUs,
            bytesIn: 10,
            bytesOut: 100,
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
            host: `${svc.service}-1`,
            source: null,
          });
        }
      }
    }
  }
  return out.sort((a, b) => a.ts - b.ts);
}

function normal(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

function run(events: AccessLog[], opts: { crashAt?: number; partitions?: number } = {}) {
  const metrics = new CollectingSink<HealthMetric>("metrics");
  const alerts = new CollectingSink<HealthAlert>("alerts");
  const app = buildHealthApp({ slo: SLO, metricsSink: metrics, alertsSink: alerts, now: () => 0 });
  const driver = new TopologyTestDriver(app, { partitions: { "logs.access": opts.partitions ?? 2 } });
  const last = events.at(-1)?.ts ?? T0;
  // One late event per service closes every window of every partition.
  const closing = SERVICES.map((s, i) => ({
    ...(events[0] as AccessLog),
    ...s,
    endpoint: s.endpoints[0] as string,
    id: `closing-${i}`,
    ts: last + 2 * 3_600_000,
  }));
  const all = [...events, ...closing];
  all.forEach((e, i) => {
    driver.pipe("logs.access", e, { key: e.service });
    if (i % 500 === 0) driver.checkpoint();
    if (opts.crashAt === i) driver.crash();
  });
  return { metrics, alerts, driver, closeAt: last + 2 * 3_600_000 };
}

/** Rows of complete windows, one per (window, node): a replay writes rows again, as it would to ClickHouse. */
function rowsBy(metrics: CollectingSink<HealthMetric>, before: number): Map<string, HealthMetric> {
  const m = new Map<string, HealthMetric>();
  for (const { value: r } of metrics.records) {
    if (r.windowStart + r.windowMs > before || !r.final) continue;
    m.set(`${r.windowMs}|${r.level}|${r.system}|${r.service}|${r.endpoint}|${r.windowStart}`, r);
  }
  return m;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.floor(q * (sorted.length - 1))] as number;
}

test("1 s rows per endpoint, service, system and app equal an exact count; p99 within the sketch's 1%", () => {
  const events = traffic({ seconds: 130, qps: 30 });
  const { metrics, closeAt } = run(events);
  const rows = rowsBy(metrics, closeAt - 3_600_000);
  const expect = new Map<string, { n: number; errors: number; slow: number; latencies: number[] }>();
  const add = (key: string, e: AccessLog, slowAbove: number) => {
    const x = expect.get(key) ?? { n: 0, errors: 0, slow: 0, latencies: [] };
    x.n++;
    if (e.status >= 500) x.errors++;
    if (e.latencyUs > slowAbove) x.slow++;
    x.latencies.push(e.latencyUs);
    expect.set(key, x);
  };
  for (const e of events) {
    const second = e.ts - (e.ts % 1000);
    const minute = e.ts - (e.ts % 60_000);
    const slowAbove = e.service === "pay-svc" ? 1_000_000 : 100_000;
    for (const [ms, start] of [
      [1000, second],
      [60_000, minute],
      [3_600_000, e.ts - (e.ts % 3_600_000)],
    ] as const) {
      add(`${ms}|ENDPOINT|${e.system}|${e.service}|${e.endpoint}|${start}`, e, slowAbove);
      add(`${ms}|SERVICE|${e.system}|${e.service}||${start}`, e, slowAbove);
      add(`${ms}|SYSTEM|${e.system}|||${start}`, e, slowAbove);
      add(`${ms}|APP||||${start}`, e, slowAbove);
    }
  }
  let checked = 0;
  for (const [key, x] of expect) {
    const row = rows.get(key);
    assert.ok(row, `missing row ${key}`);
    assert.equal(row.requests, x.n, key);
    assert.equal(row.errors, x.errors, key);
    assert.equal(row.slow, x.slow, key);
    const sorted = x.latencies.sort((a, b) => a - b);
    assert.equal(row.latencyMaxUs, sorted.at(-1), key);
    for (const [q, got] of [
      [0.5, row.latencyP50Us],
      [0.99, row.latencyP99Us],
    ] as const) {
      const exact = quantile(sorted, q);
      assert.ok(Math.abs(got - exact) <= 0.01 * exact + 1e-9, `${key} p${q * 100}: ${got} vs exact ${exact}`);
    }
    assert.equal(decodeSketch(row.sketch).count, x.n, `${key}: the sketch holds every request`);
    checked++;
  }
  // Every 1 s, 1 min and 1 h row of the run, and nothing else, came out for every node.
  assert.equal(rows.size, expect.size);
  assert.ok(checked > 130 * 8);
  // The hour rolls up from the minutes.
  const hour = [...metrics.records].find((r) => r.value.windowMs === 3_600_000 && r.value.level === "APP");
  assert.equal(hour?.value.requests, events.length);
});

test("an error burst pages within seconds, once, and resolves after it ends; quiet traffic raises nothing", () => {
  const quiet = run(traffic({ seconds: 150, qps: 30 }));
  assert.deepEqual(
    quiet.alerts.records.map((r) => r.value.id),
    [],
  );

  const burstStart = 90;
  const events = traffic({
    seconds: 150,
    qps: 30,
    incident: (s, svc, ep) =>
      svc === "room-svc" && ep === "/room/{id}/enter" && s >= burstStart && s < burstStart + 20
        ? { errorRate: 0.3 }
        : {},
  });
  const { alerts } = run(events);
  const got = alerts.records.map((r) => r.value);
  const firing = got.filter((a) => a.state === "FIRING" && a.rule === "availability-2m-10s");
  assert.deepEqual(firing.map((a) => `${a.level} ${a.service} ${a.endpoint}`).sort(), [
    "ENDPOINT room-svc /room/{id}/enter",
    "SERVICE room-svc ",
  ]);
  const start = T0 + burstStart * 1000;
  for (const a of firing) {
    assert.ok(a.ts - start <= 10_000, `fired ${(a.ts - start) / 1000}s after the burst began`);
    assert.equal(a.kind, "BURN_RATE");
    assert.equal(a.severity, "PAGE");
    assert.equal(a.runbook, "https://runbooks.test/room-svc");
    assert.ok(a.observed >= 14.4);
  }
  const resolved = got.filter((a) => a.state === "RESOLVED" && a.rule === "availability-2m-10s");
  assert.deepEqual(resolved.map((a) => a.id).sort(), firing.map((a) => a.id).sort());
  for (const a of resolved) assert.ok((a.resolvedAt as number) >= start + 20_000);
});

test("latency over the objective and a sudden spike raise their alerts", () => {
  const events = traffic({
    seconds: 120,
    qps: 30,
    incident: (s, svc, ep) => {
      if (svc === "gift-svc" && ep === "/gift/send" && s >= 60 && s < 80) return { latencyFactor: 8 };
      if (svc === "room-svc" && s >= 90) return { qpsFactor: 6 };
      return {};
    },
  });
  const got = run(events).alerts.records.map((r) => r.value);
  const latency = got.find((a) => a.rule === "latency-1m-10s" && a.level === "ENDPOINT" && a.state === "FIRING");
  assert.ok(latency, "latency alert fired");
  assert.equal(latency.endpoint, "/gift/send");
  assert.ok(latency.ts - (T0 + 60_000) <= 10_000);
  const spike = got.find((a) => a.rule === "spike" && a.level === "SERVICE" && a.state === "FIRING");
  assert.ok(spike, "spike alert fired");
  assert.equal(spike.service, "room-svc");
  assert.equal(spike.ts, T0 + 91_000);
  assert.equal(spike.kind, "SPIKE");
  // A firing alert is not repeated while it holds.
  const ids = got.filter((a) => a.state === "FIRING").map((a) => a.id);
  assert.equal(new Set(ids).size, ids.length);
});

test("a crash and restore from the changelog changes no row and no alert", () => {
  const events = traffic({
    seconds: 150,
    qps: 20,
    incident: (s, svc, ep) =>
      svc === "gift-svc" && ep === "/gift/send" && s >= 80 && s < 100 ? { errorRate: 0.4 } : {},
  });
  const clean = run(events);
  const crashed = run(events, { crashAt: Math.floor(events.length * 0.6) + 123 });
  const a = rowsBy(clean.metrics, clean.closeAt - 3_600_000);
  const b = rowsBy(crashed.metrics, crashed.closeAt - 3_600_000);
  assert.equal(b.size, a.size);
  for (const [k, row] of a) {
    const other = b.get(k);
    assert.ok(other, `missing after crash: ${k}`);
    assert.deepEqual({ ...other, sketch: null }, { ...row, sketch: null }, k);
  }
  const ids = (s: CollectingSink<HealthAlert>) => [...new Set(s.records.map((r) => `${r.value.id} ${r.value.state}`))];
  assert.deepEqual(ids(crashed.alerts).sort(), ids(clean.alerts).sort());
  assert.ok(ids(clean.alerts).length >= 2);
});

test("rows and alerts also go to metrics.health and alerts.health as Avro", () => {
  const events = traffic({ seconds: 70, qps: 10 });
  const { driver } = run(events);
  const rows = driver.output("metrics.health", (b) => codecFor("HealthMetric").decode(b));
  const final = rows.filter((r) => r.value.final);
  assert.ok(final.length > 70 * 4);
  // Each second is written early, as soon as it ends, then corrected by its final row.
  const early = rows.filter((r) => !r.value.final);
  assert.ok(early.length >= 70 * 4);
  assert.ok(early.every((r) => r.value.windowMs === 1000));
  assert.deepEqual(driver.deadLetters, []);
});

/** The latest final row of each window and node, as the tables keep it (the latest emission wins). */
function latestRows(metrics: CollectingSink<HealthMetric>, before: number): Map<string, HealthMetric> {
  return rowsBy(metrics, before);
}

/** Exact counts per window and node of every level, from the events. */
function oracle(events: AccessLog[]): Map<string, { n: number; errors: number; latencies: number[] }> {
  const m = new Map<string, { n: number; errors: number; latencies: number[] }>();
  for (const e of events) {
    for (const ms of [1000, 60_000, 3_600_000]) {
      const start = e.ts - (e.ts % ms);
      for (const key of [
        `${ms}|ENDPOINT|${e.system}|${e.service}|${e.endpoint}|${start}`,
        `${ms}|SERVICE|${e.system}|${e.service}||${start}`,
        `${ms}|SYSTEM|${e.system}|||${start}`,
        `${ms}|APP||||${start}`,
      ]) {
        const x = m.get(key) ?? { n: 0, errors: 0, latencies: [] };
        x.n++;
        if (e.status >= 500) x.errors++;
        x.latencies.push(e.latencyUs);
        m.set(key, x);
      }
    }
  }
  return m;
}

function assertExact(rows: Map<string, HealthMetric>, events: AccessLog[]): void {
  const expect = oracle(events);
  assert.equal(rows.size, expect.size, "one row per window and node, no more, no fewer");
  for (const [key, x] of expect) {
    const row = rows.get(key);
    assert.ok(row, `missing row ${key}`);
    assert.equal(row.requests, x.n, `requests ${key}`);
    assert.equal(row.errors, x.errors, `errors ${key}`);
    const exact = quantile(
      x.latencies.sort((a, b) => a - b),
      0.99,
    );
    assert.ok(Math.abs(row.latencyP99Us - exact) <= 0.01 * exact + 1e-9, `p99 ${key}`);
  }
}

/**
 * room-svc on two hosts, each its own source (weir-source); `delay(e)` says how far (event time)
 * behind the others a host-2 event is shipped.
 */
function runHosts(events: AccessLog[], delay: (e: AccessLog) => number) {
  const metrics = new CollectingSink<HealthMetric>("metrics");
  const alerts = new CollectingSink<HealthAlert>("alerts");
  const app = buildHealthApp({ slo: SLO, metricsSink: metrics, alertsSink: alerts, now: () => 0 });
  const driver = new TopologyTestDriver(app, { partitions: { "logs.access": 2 } });
  let n = 0;
  const hosted = events.map((e) => (e.service === "room-svc" && n++ % 2 === 1 ? { ...e, host: "room-svc-2" } : e));
  const shipped = hosted
    .map((e) => ({ e, at: e.ts + (e.host === "room-svc-2" ? delay(e) : 0) }))
    .sort((a, b) => a.at - b.at);
  const last = events.at(-1)?.ts ?? T0;
  const closing = SERVICES.map((s, i) => ({
    e: {
      ...(events[0] as AccessLog),
      ...s,
      endpoint: s.endpoints[0] as string,
      id: `closing-${i}`,
      ts: last + 2 * 3_600_000,
      host: "closing",
    },
    at: Number.POSITIVE_INFINITY,
  }));
  const pipeAll = [...shipped, ...closing];
  pipeAll.forEach(({ e }, i) => {
    driver.pipe("logs.access", e, {
      key: e.service,
      headers: { "weir-source": `${e.host}:/var/log/${e.service}/access.log` },
    });
    if (i % 400 === 0) driver.checkpoint();
  });
  // The closing events' seconds stay open; everything before them is final (and corrected).
  driver.checkpoint();
  return { metrics, alerts, driver, before: last + 3_600_000, corrections: sumCorrections(driver) };
}

function sumCorrections(driver: TopologyTestDriver) {
  let records = 0;
  let emitted = 0;
  for (const t of driver.allTasks()) {
    records += t.corrections().records;
    emitted += t.corrections().emitted;
  }
  return { records, emitted };
}

test("a host that ships 2 minutes behind the others: its requests are corrected into the 1 s, 1 min and 1 h rows of every level", () => {
  const events = traffic({ seconds: 200, qps: 20 });
  const { metrics, driver, before, corrections } = runHosts(events, () => 120_000);
  assert.deepEqual(driver.deadLetters, [], "nothing late beyond the allowed lateness");
  assertExact(latestRows(metrics, before), events);
  const host2 = events.filter((e) => e.service === "room-svc").length / 2;
  assert.ok(corrections.records >= host2 * 0.9, `${corrections.records} corrected records (host 2 sent ${host2})`);
  // A few corrections per window, not one per record: they go out at checkpoints.
  assert.ok(corrections.emitted < corrections.records / 3, `${corrections.emitted} corrections emitted`);
  const corrected = metrics.records.filter((r) => r.value.correction > 0).map((r) => r.value);
  // (The hour was still open when they came: its final row has them, no correction needed.)
  for (const level of ["ENDPOINT", "SERVICE", "SYSTEM", "APP"])
    for (const ms of [1000, 60_000])
      assert.ok(
        corrected.some((r) => r.level === level && r.windowMs === ms),
        `corrected ${level} rows of ${ms} ms windows`,
      );
  // Published with the correction's number on metrics.health.
  const published = driver.output("metrics.health", (b) => codecFor("HealthMetric").decode(b));
  assert.ok(published.some((r) => r.value.correction > 0));
});

test("a host a little behind (within maxSourceLag) holds the windows open: no correction at all", () => {
  const events = traffic({ seconds: 150, qps: 20 });
  // Host 2 drifts up to 20 s behind and catches up again.
  const { metrics, driver, before, corrections } = runHosts(
    events,
    (e) => 20_000 * Math.sin(((e.ts - T0) / 150_000) * Math.PI),
  );
  assert.deepEqual(driver.deadLetters, []);
  assert.deepEqual(corrections, { records: 0, emitted: 0 });
  assertExact(latestRows(metrics, before), events);
});

test("corrections change no alert: one already sent is not sent again", () => {
  // room-svc answers 30% errors for 20 s; its host 2 ships 2 minutes late. Alerts come from the
  // on-time rows (host 1's half of the burst) once; the corrected rows, which hold all of it (for
  // weir health and the report), send nothing again.
  const events = traffic({
    seconds: 220,
    qps: 30,
    incident: (s, svc) => (svc === "room-svc" && s >= 60 && s < 80 ? { errorRate: 0.3 } : {}),
  });
  const late = runHosts(events, () => 120_000);
  const onTime = runHosts(events, () => 0);
  const firing = (r: ReturnType<typeof runHosts>) =>
    r.alerts.records.filter((a) => a.value.state === "FIRING").map((a) => a.value.id);
  assert.ok(firing(onTime).length > 0, "shipped on time, the burst pages");
  assert.ok(late.corrections.records > 0);
  const ids = firing(late);
  assert.equal(new Set(ids).size, ids.length, "no alert sent twice");
  assertExact(latestRows(late.metrics, late.before), events);
});
