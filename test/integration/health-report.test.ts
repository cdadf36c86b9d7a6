// The daily report and `weir health top / show` against the real ClickHouse of the local stack: a
// scratch database with the health tables of infra/clickhouse/001_health.sql, hand-built 1 s, 1 min
// and 1 h rows carrying real DDSketches of known values, duplicate rows as a replay leaves them, and
// alert episodes. Every figure is checked against what the rows were built from.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { ClickHouseClient } from "@clickhouse/client";
import { DDSketch } from "@datadog/sketches-js";
import { PROJECT_ROOT } from "../../infra/stack/config.ts";
import { HealthQueryError, show, top } from "../../pipelines/health/queries.ts";
import { buildDailyReport, type DailyReport, type NodeReport, previousUtcDay } from "../../pipelines/health/report.ts";
import { scheduleDailyReport } from "../../pipelines/health/report-files.ts";
import { type HealthNode, nodeId, SloConfig } from "../../pipelines/health/slo.ts";
import { clickhouseClient, endpoints, requireStack, uniqueName } from "../support/stack.ts";

const DAY = "2026-03-14";
const D0 = Date.UTC(2026, 2, 14);
const at = (h: number, m: number, s = 0) => D0 + ((h * 60 + m) * 60 + s) * 1000;

const SLO_YAML = `
defaults:
  availability: 99.9%
  latency: { threshold: 100ms, target: 99% }
  runbook: https://runbooks.example.com/{service}?endpoint={endpoint}
services:
  pay-svc:
    availability: 99%
    endpoints:
      /wallet/debit: { availability: 99.5%, latency: { threshold: 50ms } }
`;
const slo = SloConfig.parse(SLO_YAML, "test-slo.yaml");

const ROOM = { app: "live", system: "room", service: "room-svc" };
const PAY = { app: "live", system: "gifting", service: "pay-svc" };
const LIST: HealthNode = { level: "ENDPOINT", ...ROOM, endpoint: "/room/list" };
const ENTER: HealthNode = { level: "ENDPOINT", ...ROOM, endpoint: "/room/{id}/enter" };
const DEBIT: HealthNode = { level: "ENDPOINT", ...PAY, endpoint: "/wallet/debit" };

/** The nodes an endpoint's requests count towards: itself, its service, system and app. */
function lineage(e: HealthNode): HealthNode[] {
  return [
    e,
    { ...e, level: "SERVICE", endpoint: "" },
    { ...e, level: "SYSTEM", service: "", endpoint: "" },
    { ...e, level: "APP", system: "", service: "", endpoint: "" },
  ];
}

interface Window {
  node: HealthNode;
  start: number;
  requests: number;
  errors: number;
  slow: number;
  values: number[];
}

/** Windows keyed by node and start, built up from endpoint requests. */
class Windows {
  readonly byKey = new Map<string, Window>();
  add(e: HealthNode, start: number, latencies: number[], errors: number, thresholdUs: number, levels = lineage(e)) {
    const slow = latencies.filter((v) => v > thresholdUs).length;
    for (const node of levels) {
      const key = `${nodeId(node)}@${start}`;
      let w = this.byKey.get(key);
      if (!w) {
        w = { node, start, requests: 0, errors: 0, slow: 0, values: [] };
        this.byKey.set(key, w);
      }
      w.requests += latencies.length;
      w.errors += errors;
      w.slow += slow;
      for (const v of latencies) w.values.push(v);
    }
  }
  of(node: HealthNode): Window[] {
    return [...this.byKey.values()].filter((w) => nodeId(w.node) === nodeId(node));
  }
}

function sketchOf(values: number[]): string {
  const s = DDSketch.fromProto(new DDSketch({ relativeAccuracy: 0.01 }).toProto()) as DDSketch;
  for (const v of values) s.accept(v);
  return Buffer.from(s.toProto()).toString("base64");
}

function row(w: Window, windowMs: number, emittedAt: number, override: Partial<Window> = {}) {
  const values = override.values ?? w.values;
  return {
    window_start: Math.floor(w.start / 1000),
    window_ms: windowMs,
    ...w.node,
    requests: override.requests ?? w.requests,
    errors: override.errors ?? w.errors,
    slow: override.slow ?? w.slow,
    latency_p50_us: 0,
    latency_p90_us: 0,
    latency_p99_us: 0,
    latency_p999_us: 0,
    latency_max_us: Math.max(0, ...values),
    sketch: sketchOf(values),
    final: 1,
    emitted_at: emittedAt,
  };
}

/** The value at quantile q as DDSketch ranks it (rank q x (n - 1)), exactly. */
function exactQuantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(q * (sorted.length - 1))] as number;
}

function assertWithin1Percent(actual: number | null, expected: number, what: string) {
  assert.ok(actual !== null, `${what}: no value`);
  assert.ok(Math.abs(actual - expected) <= 0.01 * expected, `${what}: ${actual} is not within 1% of ${expected}`);
}

// --- the day's traffic ----------------------------------------------------------------------------------

// 10:00-10:59: /room/list 1000 requests a minute, 50 errors at 10:30, latencies 1 ms .. 150.85 ms;
// /room/{id}/enter 500 a minute, no error, 5 ms .. 25 ms. 10:00-10:09: /wallet/debit 200 a minute,
// 2 errors at 10:05 (99%: below its 99.5%), 1 at 10:06 (exactly 99.5%: met), 2 ms .. 61.7 ms.
const minutes = new Windows();
const listLatency = (m: number, i: number) => 1000 + ((i * 37 + m * 11) % 1000) * 150;
const enterLatency = (m: number, i: number) => 5000 + ((i * 13 + m) % 500) * 40;
const debitLatency = (m: number, i: number) => 2000 + ((i * 7 + m) % 200) * 300;
for (let m = 0; m < 60; m++) {
  const start = at(10, m);
  minutes.add(
    LIST,
    start,
    Array.from({ length: 1000 }, (_, i) => listLatency(m, i)),
    m === 30 ? 50 : 0,
    100_000,
  );
  minutes.add(
    ENTER,
    start,
    Array.from({ length: 500 }, (_, i) => enterLatency(m, i)),
    0,
    100_000,
  );
  if (m < 10) {
    minutes.add(
      DEBIT,
      start,
      Array.from({ length: 200 }, (_, i) => debitLatency(m, i)),
      m === 5 ? 2 : m === 6 ? 1 : 0,
      50_000,
    );
  }
}

// 1 s rows, 10:05:00-10:09:59, at SERVICE level (and /wallet/debit's ENDPOINT rows): room-svc 25
// requests a second with 5 errors in each second of 10:07:00-10:07:09; pay-svc 4 a second, 1 error at 10:06:30.
const seconds = new Windows();
const roomSecondLatency = (s: number, i: number) => 10_000 + ((i * 3 + s) % 25) * 2000;
const paySecondLatency = (s: number, i: number) => 2000 + ((i + s) % 4) * 30_000;
for (let s = 0; s < 300; s++) {
  const start = at(10, 5, s);
  seconds.add(
    LIST,
    start,
    Array.from({ length: 25 }, (_, i) => roomSecondLatency(s, i)),
    s >= 120 && s < 130 ? 5 : 0,
    100_000,
    [{ ...LIST, level: "SERVICE", endpoint: "" }],
  );
  seconds.add(
    DEBIT,
    start,
    Array.from({ length: 4 }, (_, i) => paySecondLatency(s, i)),
    s === 90 ? 1 : 0,
    50_000,
    [DEBIT, { ...DEBIT, level: "SERVICE", endpoint: "" }],
  );
}

async function createTables(ch: ClickHouseClient, database: string) {
  const ddl = readFileSync(join(PROJECT_ROOT, "infra", "clickhouse", "001_health.sql"), "utf8")
    .replace(/--[^\n]*/g, "")
    .replace(/CREATE DATABASE IF NOT EXISTS weir\b/, `CREATE DATABASE IF NOT EXISTS ${database}`)
    .replace(/\bweir\./g, `${database}.`);
  for (const statement of ddl.split(";").map((s) => s.trim())) {
    if (statement) await ch.command({ query: statement });
  }
}

async function insertData(ch: ClickHouseClient, database: string) {
  const metrics = `${database}.health_metrics`;
  const insert = (values: object[]) => ch.insert({ table: metrics, values, format: "JSONEachRow" });
  const minuteWindows = [...minutes.byKey.values()];
  // An early, superseded update of 10:30 for /room/list and room-svc (a replay keeps the later one).
  await insert(
    minuteWindows
      .filter((w) => w.start === at(10, 30) && (w.node.level === "ENDPOINT" || w.node.level === "SERVICE"))
      .filter((w) => w.node.endpoint === "/room/list" || w.node.service === "room-svc")
      .map((w) => row(w, 60_000, 1, { requests: 400, errors: 10, values: w.values.slice(0, 400) })),
  );
  await insert(minuteWindows.map((w) => row(w, 60_000, 100)));
  // A replay writes 10:00-10:09 again, in another part.
  await insert(minuteWindows.filter((w) => w.start < at(10, 10)).map((w) => row(w, 60_000, 200)));

  // 1 h rows for 10:00: the roll-up of the minutes, except gifting's, written before its last minutes
  // arrived (1800 requests) with a sketch of 5 s latencies: the report must merge minutes for those.
  const hours = new Windows();
  for (const w of minuteWindows) {
    hours.add(w.node, at(10, 0), w.values, w.errors, Number.POSITIVE_INFINITY, [w.node]);
    const h = hours.byKey.get(`${nodeId(w.node)}@${at(10, 0)}`) as Window;
    h.slow += w.slow;
  }
  await insert(
    [...hours.byKey.values()].map((w) =>
      w.node.system === "gifting"
        ? row(w, 3_600_000, 300, { requests: 1800, values: Array(1800).fill(5_000_000) })
        : row(w, 3_600_000, 300),
    ),
  );

  const secondWindows = [...seconds.byKey.values()];
  await insert(secondWindows.map((w) => row(w, 1000, 100)));
  await insert(
    secondWindows.filter((w) => w.start >= at(10, 7) && w.start < at(10, 7, 10)).map((w) => row(w, 1000, 150)),
  );

  const alert = (id: string, state: "FIRING" | "RESOLVED", o: Record<string, unknown>) => ({
    id,
    ts: Math.floor((o.ts_ms as number) / 1000),
    state,
    level: "SERVICE",
    ...ROOM,
    endpoint: "",
    observed: 20,
    threshold: 14.4,
    objective: 0.999,
    long_window_ms: 120_000,
    short_window_ms: 10_000,
    message: `${id} message`,
    runbook: "https://runbooks.example.com/room-svc",
    resolved_at: 0,
    emitted_at: 1,
    ...o,
  });
  const a1 = { rule: "availability-2m-10s", kind: "BURN_RATE", severity: "PAGE", started_at: at(10, 7, 5) };
  const a2 = {
    rule: "latency-1m-10s",
    kind: "LATENCY",
    severity: "PAGE",
    started_at: at(10, 6),
    level: "ENDPOINT",
    ...PAY,
    endpoint: "/wallet/debit",
    objective: 0.99,
  };
  const a3 = { rule: "availability-3d-6h", kind: "BURN_RATE", severity: "TICKET", started_at: at(-1, 0) };
  const a4 = { rule: "availability-3d-6h", kind: "BURN_RATE", severity: "TICKET", started_at: at(-48, 0) };
  const alerts = [
    alert("a1", "FIRING", { ...a1, ts_ms: a1.started_at }),
    alert("a1", "FIRING", { ...a1, ts_ms: a1.started_at, emitted_at: 2 }), // replayed
    alert("a1", "RESOLVED", { ...a1, ts_ms: at(10, 8), resolved_at: at(10, 8) }),
    alert("a2", "FIRING", { ...a2, ts_ms: a2.started_at }),
    alert("a3", "FIRING", { ...a3, ts_ms: a3.started_at }),
    alert("a3", "RESOLVED", { ...a3, ts_ms: at(1, 0), resolved_at: at(1, 0) }),
    alert("a4", "FIRING", { ...a4, ts_ms: a4.started_at }),
    alert("a4", "RESOLVED", { ...a4, ts_ms: at(-30, 0), resolved_at: at(-30, 0) }),
  ];
  await ch.insert({ table: `${database}.health_alerts`, values: alerts, format: "JSONEachRow" });
}

const database = uniqueName("test_health");
let ch: ClickHouseClient;
const options = () => ({ clickhouseUrl: endpoints.clickhouseUrl, database, slo });

before(async () => {
  await requireStack();
  ch = clickhouseClient();
  await createTables(ch, database);
  await insertData(ch, database);
});

after(async () => {
  await ch?.command({ query: `DROP DATABASE IF EXISTS ${database}` }).catch(() => {});
  await ch?.close();
});

function find(nodes: NodeReport[], name: string): NodeReport {
  const n = nodes.find((x) => x.name === name);
  assert.ok(n, `no ${name} in ${nodes.map((x) => x.name).join(", ")}`);
  return n;
}

function weir(...args: string[]) {
  return spawnSync(process.execPath, [join(PROJECT_ROOT, "cli", "weir.mjs"), "health", ...args], {
    encoding: "utf8",
    timeout: 120_000,
    env: { ...process.env, NO_COLOR: "1" },
  });
}

describe("daily report", () => {
  let report: DailyReport;
  before(async () => {
    report = await buildDailyReport({ ...options(), day: DAY, now: new Date(at(24, 5)) });
  });

  test("every node of the hierarchy, counted once despite replayed rows", () => {
    assert.equal(report.hasData, true);
    assert.deepEqual(
      report.app.map((n) => n.name),
      ["live"],
    );
    assert.deepEqual(
      report.systems.map((n) => n.name),
      ["live/gifting", "live/room"],
    );
    assert.deepEqual(
      report.services.map((n) => n.name),
      ["pay-svc", "room-svc"],
    );
    assert.deepEqual(
      report.endpoints.map((n) => n.name),
      ["pay-svc /wallet/debit", "room-svc /room/list", "room-svc /room/{id}/enter"],
    );
    const app = find(report.app, "live");
    assert.equal(app.requests, 92_000);
    assert.equal(app.errors, 53);
    assert.equal(app.minutes, 60);
    assert.equal(find(report.endpoints, "room-svc /room/list").requests, 60_000);
    assert.equal(find(report.endpoints, "room-svc /room/list").errors, 50);
    assert.equal(find(report.endpoints, "room-svc /room/list").slow, 339 * 60);
    assert.equal(find(report.endpoints, "pay-svc /wallet/debit").slow, 39 * 10);
    assert.equal(find(report.services, "room-svc").requests, 90_000);
  });

  test("availability, the level reached and the target's level", () => {
    const list = find(report.endpoints, "room-svc /room/list");
    assert.equal(list.availability, 1 - 50 / 60_000);
    assert.equal(list.levelReached, "higher");
    assert.equal(list.targetLevel, "higher");
    assert.equal(list.targetMet, true);
    const enter = find(report.endpoints, "room-svc /room/{id}/enter");
    assert.equal(enter.availability, 1);
    assert.equal(enter.levelReached, "strong");
    const debit = find(report.endpoints, "pay-svc /wallet/debit");
    assert.equal(debit.availability, 1 - 3 / 2000);
    assert.equal(debit.levelReached, "basic");
    assert.ok(Math.abs(debit.target - 0.995) < 1e-12);
    assert.equal(debit.targetLevel, "basic");
    const gifting = find(report.systems, "live/gifting");
    assert.ok(Math.abs(gifting.target - 0.999) < 1e-12); // pay-svc's 99% is the service's, not its system's
    assert.equal(gifting.targetMet, false);
    const app = find(report.app, "live");
    assert.equal(app.levelReached, "higher");
    assert.equal(app.targetMet, true);
  });

  test("downtime: equivalent, and bad minutes against each node's own target", () => {
    const list = find(report.endpoints, "room-svc /room/list");
    assert.ok(Math.abs((list.downtime.equivalentS ?? 0) - 72) < 1e-6, `${list.downtime.equivalentS}`);
    assert.equal(list.downtime.badMinutes, 1); // 10:30
    // 10:05 (99%) misses 99.5%; 10:06 (exactly 99.5%) meets it.
    assert.equal(find(report.endpoints, "pay-svc /wallet/debit").downtime.badMinutes, 1);
    // The same 10:05 meets pay-svc's 99%, and misses gifting's 99.9% like 10:06.
    assert.equal(find(report.services, "pay-svc").downtime.badMinutes, 0);
    assert.equal(find(report.systems, "live/gifting").downtime.badMinutes, 2);
    // The app: 10:05 (2 of 1700) and 10:30 (50 of 1500); 10:06 (1 of 1700) is within 99.9%.
    assert.equal(find(report.app, "live").downtime.badMinutes, 2);
    assert.equal(find(report.endpoints, "room-svc /room/{id}/enter").downtime.badMinutes, 0);
  });

  test("error budget: allowed, consumed, left (negative when overspent)", () => {
    const list = find(report.endpoints, "room-svc /room/list");
    assert.ok(Math.abs(list.errorBudget.allowed - 60) < 1e-9);
    assert.ok(Math.abs((list.errorBudget.left ?? 0) - (1 - 50 / 60)) < 1e-9);
    const debit = find(report.endpoints, "pay-svc /wallet/debit");
    assert.ok(Math.abs((debit.errorBudget.left ?? 0) - 0.7) < 1e-9);
    const gifting = find(report.systems, "live/gifting");
    assert.ok(Math.abs((gifting.errorBudget.left ?? 0) - -0.5) < 1e-9, `${gifting.errorBudget.left}`);
    assert.deepEqual(
      report.worstEndpoints.map((e) => e.name),
      ["room-svc /room/list", "pay-svc /wallet/debit"],
    );
  });

  test("latency: compliance against the target, quantiles from merged sketches within 1%", () => {
    const list = find(report.endpoints, "room-svc /room/list");
    assert.equal(list.latency.compliance, 1 - (339 * 60) / 60_000);
    assert.equal(list.latency.met, false);
    assert.equal(find(report.endpoints, "room-svc /room/{id}/enter").latency.met, true);
    for (const [nodes, node] of [
      [report.endpoints, LIST],
      [report.endpoints, DEBIT],
      [report.services, lineage(DEBIT)[1]],
      [report.systems, lineage(DEBIT)[2]],
      [report.app, lineage(LIST)[3]],
    ] as const) {
      const values = minutes.of(node as HealthNode).flatMap((w) => w.values);
      const r = (nodes as NodeReport[]).find((n) => nodeId(n) === nodeId(node as HealthNode)) as NodeReport;
      assertWithin1Percent(r.latency.p50Us, exactQuantile(values, 0.5), `${r.name} p50`);
      assertWithin1Percent(r.latency.p99Us, exactQuantile(values, 0.99), `${r.name} p99`);
      assertWithin1Percent(r.latency.p999Us, exactQuantile(values, 0.999), `${r.name} p99.9`);
    }
    assert.equal(report.unreadableSketches, 0);
  });

  test("alerts of the day: episodes overlapping it, counted once per episode", () => {
    assert.equal(report.alerts.episodes, 3);
    assert.deepEqual(
      report.alerts.list.map((e) => [e.id, e.start, e.end, e.target]),
      [
        ["a3", "2026-03-13T23:00:00Z", "2026-03-14T01:00:00Z", "room-svc"],
        ["a2", "2026-03-14T10:06:00Z", null, "pay-svc /wallet/debit"],
        ["a1", "2026-03-14T10:07:05Z", "2026-03-14T10:08:00Z", "room-svc"],
      ],
    );
    assert.equal(report.alerts.list[2]?.durationS, 55);
    assert.deepEqual(report.alerts.byRule.map((b) => `${b.rule}/${b.severity}=${b.count}`).sort(), [
      "availability-2m-10s/PAGE=1",
      "availability-3d-6h/TICKET=1",
      "latency-1m-10s/PAGE=1",
    ]);
  });

  test("a day without rows reports no data", async () => {
    const empty = await buildDailyReport({ ...options(), day: "2026-03-15" });
    assert.equal(empty.hasData, false);
    assert.equal(empty.services.length, 0);
  });
});

describe("queries", () => {
  const now = at(10, 10);

  test("top: per service over 15 minutes of 1 s rows, worst first", async () => {
    const r = await top({ ...options(), since: "15m", now });
    assert.equal(r.resolutionMs, 1000);
    assert.equal(r.from, "2026-03-14T09:55:00Z");
    assert.equal(r.to, "2026-03-14T10:10:00Z");
    assert.deepEqual(
      r.services.map((s) => s.service),
      ["room-svc", "pay-svc"],
    );
    const [room, pay] = r.services as [(typeof r.services)[0], (typeof r.services)[0]];
    assert.equal(room.requests, 7500); // the replayed seconds once
    assert.equal(room.errors, 50);
    assert.equal(room.qps, 7500 / 900);
    assert.ok(Math.abs((room.burnRate ?? 0) - 50 / 7500 / 0.001) < 1e-9);
    assert.equal(room.alertsInPeriod, 1);
    assert.equal(room.alertsFiring, 0);
    const roomValues = seconds.of({ level: "SERVICE", ...ROOM, endpoint: "" }).flatMap((w) => w.values);
    assertWithin1Percent(room.p99Us, exactQuantile(roomValues, 0.99), "room-svc p99");
    assert.equal(pay.requests, 1200);
    assert.equal(pay.errors, 1);
    assert.equal(pay.slowShare, 0.5);
    assert.ok(Math.abs((pay.burnRate ?? 0) - 1 / 1200 / 0.01) < 1e-9);
    assert.equal(pay.alertsFiring, 1);
  });

  test("top: a period over an hour reads the 1 min rows", async () => {
    const r = await top({ ...options(), since: "2h", now: at(11, 0) });
    assert.equal(r.resolutionMs, 60_000);
    const room = r.services.find((s) => s.service === "room-svc");
    assert.equal(room?.requests, 90_000);
    assert.equal(room?.errors, 50);
  });

  test("show: the series in 10 s buckets, sketches merged per bucket, and the service's alerts", async () => {
    const r = await show({ ...options(), service: "room-svc", since: "15m", now });
    assert.equal(r.hasData, true);
    assert.equal(r.bucketMs, 10_000);
    assert.equal(r.series.length, 90);
    assert.equal(r.series[59]?.qps, null); // 10:04:50: no rows
    const b = r.series[72]; // 10:07:00-10:07:10
    assert.equal(b?.start, "2026-03-14T10:07:00Z");
    assert.equal(b?.requests, 250);
    assert.equal(b?.errors, 50);
    assert.equal(b?.qps, 25);
    const bucketValues = seconds
      .of({ level: "SERVICE", ...ROOM, endpoint: "" })
      .filter((w) => w.start >= at(10, 7) && w.start < at(10, 7, 10))
      .flatMap((w) => w.values);
    assertWithin1Percent(b?.p99Us ?? null, exactQuantile(bucketValues, 0.99), "bucket p99");
    assert.equal(r.totals.requests, 7500);
    assert.equal(r.totals.errors, 50);
    assert.deepEqual(
      r.alerts.map((a) => a.id),
      ["a1"],
    );
  });

  test("show: an endpoint; an unknown service or endpoint names the known ones; a quiet period has no data", async () => {
    const e = await show({ ...options(), service: "pay-svc", endpoint: "/wallet/debit", since: "15m", now });
    assert.equal(e.totals.requests, 1200);
    assert.equal(e.totals.slow, 600);
    assert.ok(Math.abs(e.objectives.availability - 0.995) < 1e-12);
    await assert.rejects(
      show({ ...options(), service: "nope-svc", since: "15m", now }),
      (err: unknown) =>
        err instanceof HealthQueryError && err.kind === "unknown-service" && /pay-svc, room-svc/.test(err.hint ?? ""),
    );
    await assert.rejects(
      show({ ...options(), service: "pay-svc", endpoint: "/nope", since: "15m", now }),
      (err: unknown) => err instanceof HealthQueryError && /\/wallet\/debit/.test(err.hint ?? ""),
    );
    const quiet = await show({ ...options(), service: "room-svc", since: "15m", now: at(12, 0) });
    assert.equal(quiet.hasData, false);
    assert.equal(quiet.node.system, "room");
  });
});

describe("weir health (the command)", () => {
  let dir: string;
  let sloFile: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "weir-health-"));
    sloFile = join(dir, "slo.yaml");
    writeFileSync(sloFile, SLO_YAML);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("report --json prints the report; --out writes the Markdown and JSON files", () => {
    const r = weir("report", "--day", DAY, "--database", database, "--config", sloFile, "--json");
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as DailyReport;
    assert.equal(report.app[0]?.requests, 92_000);
    assert.equal(report.app[0]?.downtime.badMinutes, 2);
    assert.equal(find(report.endpoints, "pay-svc /wallet/debit").levelReached, "basic");

    const md = weir("report", "--day", DAY, "--database", database, "--config", sloFile, "--out", dir);
    assert.equal(md.status, 0, md.stderr);
    assert.match(md.stdout, /^# Health report for 2026-03-14 \(UTC\)/);
    assert.match(
      md.stdout,
      /\| `room-svc \/room\/list` \| 60,000 \| 50 \| 99\.9166% \| higher \| 99\.9% \(higher\) \|/,
    );
    assert.match(
      md.stdout,
      /\| `live\/gifting` \| 2,000 \| 3 \| 99\.8500% \| basic \| 99\.9% \(higher\) \| \*\*no\*\* \|/,
    );
    assert.ok(existsSync(join(dir, `health-${DAY}.md`)));
    assert.equal((JSON.parse(readFileSync(join(dir, `health-${DAY}.json`), "utf8")) as DailyReport).alerts.episodes, 3);
  });

  test("clear errors: a bad day, a day without data, an unknown service", () => {
    const bad = weir("report", "--day", "2026-02-30", "--database", database);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /not a day: "2026-02-30"/);
    const none = weir("report", "--day", "2026-03-15", "--database", database, "--config", sloFile);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /no health metrics for 2026-03-15/);
    assert.match(none.stderr, /weir run health/);
    const unknown = weir("show", "nope-svc", "--database", database, "--config", sloFile);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /no service nope-svc/);
    assert.match(unknown.stderr, /pay-svc, room-svc/);
    const quiet = weir("top", "--database", database, "--config", sloFile, "--since", "90s");
    assert.equal(quiet.status, 2);
    assert.match(quiet.stderr, /no health metrics in the last 90s/);
  });

  test("top and show on rows of the last minutes: table, sparklines, JSON", async () => {
    // 1 s rows for the last 2 minutes, so the command's "now" finds them.
    const end = Math.floor(Date.now() / 1000) * 1000 - 5000;
    const recent = new Windows();
    for (let s = 0; s < 120; s++) {
      recent.add(
        LIST,
        end - (120 - s) * 1000,
        Array.from({ length: 10 + (s % 7) }, (_, i) => 20_000 + i * 1000),
        s === 100 ? 3 : 0,
        100_000,
        [{ ...LIST, level: "SERVICE", endpoint: "" }],
      );
    }
    await ch.insert({
      table: `${database}.health_metrics`,
      values: [...recent.byKey.values()].map((w) => row(w, 1000, 100)),
      format: "JSONEachRow",
    });
    const t = weir("top", "--database", database, "--config", sloFile, "--since", "5m");
    assert.equal(t.status, 0, t.stderr);
    assert.match(t.stdout, /SERVICE\s+SYSTEM\s+REQUESTS\s+QPS\s+ERRORS\s+AVAILABILITY/);
    assert.match(t.stdout, /room-svc\s+room\s+/);
    const s = weir("show", "room-svc", "--database", database, "--config", sloFile, "--since", "5m");
    assert.equal(s.status, 0, s.stderr);
    assert.match(s.stdout, /^room-svc {2}live\/room/);
    assert.match(s.stdout, /\nQPS +\S+ [▁▂▃▄▅▆▇█ ]+ \S+\n/);
    assert.match(s.stdout, /\nerrors +0 [▁▂▃▄▅▆▇█ ]+ 3\n/);
    assert.match(s.stdout, /\np99 +\S+ [▁▂▃▄▅▆▇█ ]+ \S+\n/);
    const j = weir("show", "room-svc", "--database", database, "--config", sloFile, "--since", "5m", "--json");
    assert.equal(j.status, 0, j.stderr);
    const result = JSON.parse(j.stdout) as { totals: { errors: number }; bucketMs: number };
    assert.equal(result.totals.errors, 3);
    assert.equal(result.bucketMs, 5000);
  });
});

test("scheduleDailyReport writes the previous UTC day's files on its cron, until stopped", async () => {
  const dir = mkdtempSync(join(tmpdir(), "weir-health-cron-"));
  try {
    let schedule: ReturnType<typeof scheduleDailyReport> | undefined;
    const written = await new Promise<string>((resolve, reject) => {
      schedule = scheduleDailyReport({
        ...options(),
        cron: "* * * * * *",
        dir,
        onReport: (w) => resolve(w.markdownPath),
        onError: reject,
      });
    });
    await schedule?.stop();
    assert.equal(written, join(dir, `health-${previousUtcDay(new Date())}.md`));
    assert.ok(existsSync(written.replace(/\.md$/, ".json")));
    assert.match(readFileSync(written, "utf8"), /No health metrics for this day/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
