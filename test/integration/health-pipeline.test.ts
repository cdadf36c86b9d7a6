// The health pipeline end to end on the real stack: the simulator's access logs in Kafka, `weir run
// health` (SIGKILLed mid-run and restarted), rows and alerts in ClickHouse. The per-second counts
// equal an exact SQL computation over the raw events (stored in a scratch table), p99 is within the
// sketch's 1%, every injected incident raises an alert within 10 s of its start, and an
// incident-free run raises none.
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { Admin } from "kafkajs";
import { DEFAULT_SLO_FILE, SloConfig } from "../../pipelines/health/slo.ts";
import { codecFor } from "../../schemas/codec.ts";
import type { SchemaTypes } from "../../schemas/types.generated.ts";
import { splitStatements } from "../../sinks/clickhouse/migrate.ts";
import { quoteString } from "../../sinks/clickhouse/sql.ts";
import { closingAccessLog } from "../support/health.ts";
import { clickhouseClient, kafkaClient, requireStack, uniqueName } from "../support/stack.ts";

type AccessLog = SchemaTypes["AccessLog"];
const kafka = kafkaClient("weir-health-test");
const ch = clickhouseClient();
const database = uniqueName("health");
const appId = uniqueName("health").replaceAll("_", "-");
// The run's own copy of the catalog's topics (weir simulate --topic-prefix): logs.access is shared by
// every test and engineer, and another run's events there (later ones, a calm run 10 minutes ahead)
// would push this run's partitions' watermarks past its own events.
const prefix = `test.${appId}.`;
const input = `${prefix}logs.access`;
const simulated = ["logs.access", "logs.app", "events.behavior", "events.coin", "events.device"].map((t) => prefix + t);
const dir = mkdtempSync(join(tmpdir(), "weir-health-"));
const configFile = join(dir, "slo.yaml");
const children: ChildProcess[] = [];
let admin: Admin;
const codec = codecFor("AccessLog");
// The simulator produces faster than real time and batches per topic, so its partitions run up to a
// few seconds out of order: the test allows 10 s where a live service's logs need 1 s.
const configText = readFileSync(DEFAULT_SLO_FILE, "utf8").replace(/outOfOrderness: 1s/, "outOfOrderness: 10s");
const slo = SloConfig.parse(configText);

before(async () => {
  await requireStack();
  admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    waitForLeaders: true,
    topics: simulated.map((topic) => ({ topic, numPartitions: topic === input ? 6 : 1 })),
  });
  writeFileSync(configFile, configText);
  const ddl = readFileSync(new URL("../../infra/clickhouse/001_health.sql", import.meta.url), "utf8")
    .replaceAll("CREATE DATABASE IF NOT EXISTS weir", `CREATE DATABASE IF NOT EXISTS ${database}`)
    .replaceAll("weir.", `${database}.`);
  for (const stmt of splitStatements(ddl)) await ch.command({ query: stmt });
  await ch.command({
    query: `CREATE TABLE ${database}.access_raw (ts UInt64, service String, endpoint String, status UInt16, error_code String, latency_us UInt64) ENGINE = MergeTree ORDER BY (service, endpoint, ts)`,
  });
});

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await ch.command({ query: `DROP DATABASE IF EXISTS ${database}` }).catch(() => {});
  await ch.close();
  const internal = (await admin.listTopics()).filter((t) => t.startsWith(`${appId}-`));
  await admin.deleteTopics({ topics: [...internal, ...simulated] }).catch(() => {});
  await admin.deleteGroups([appId]).catch(() => {});
  await admin.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

/** Each worker's output so far, shown when the test times out waiting for it. */
const workerLogs = new Map<string, () => string>();

function startWorker(name: string): ChildProcess {
  const child = spawn(
    process.execPath,
    ["cli/weir.mjs", "run", "health", "--config", configFile, "--instance", name, "--data-dir", dir],
    {
      env: { ...process.env, WEIR_HEALTH_APP_ID: appId, WEIR_HEALTH_DATABASE: database, WEIR_HEALTH_INPUT: input },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let log = "";
  child.stdout?.on("data", (d) => {
    log += d;
    if (log.length > 200_000) log = log.slice(-100_000);
  });
  child.stderr?.on("data", (d) => {
    log += d;
  });
  workerLogs.set(name, () => log);
  child.on("exit", (code, signal) => {
    if (code !== 0 && signal !== "SIGKILL" && signal !== "SIGTERM")
      console.error(`${name} exited ${code}:\n${log.slice(-3000)}`);
  });
  children.push(child);
  return child;
}

async function endOffsets(): Promise<Map<number, number>> {
  return new Map((await admin.fetchTopicOffsets(input)).map((o) => [o.partition, Number(o.high)]));
}

function simulate(scenario: string, start: number, seconds: number, out: string) {
  const r = spawnSync(
    process.execPath,
    [
      "cli/weir.mjs",
      "simulate",
      "--to",
      "kafka",
      "--topic-prefix",
      prefix,
      "--scenario",
      scenario,
      "--duration",
      `${seconds}s`,
      "--rate",
      "1500",
      // The same volume at any hour: the daily curve falls to 15% of its peak at night in Beijing (around
      // 01:00 UTC), when the run had too few events for its own check below.
      "--no-diurnal",
      "--fraud",
      "0",
      "--start",
      new Date(start).toISOString(),
      "--out",
      out,
      "--force",
    ],
    { encoding: "utf8" },
  );
  assert.equal(r.status, 0, r.stderr);
  return readFileSync(join(out, "ground-truth.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { kind: string; type?: string; service?: string; start: number; end: number });
}

/** One event per service far after `at`, so every window of the run closes. */
async function closeWindows(at: number): Promise<void> {
  const producer = kafka.producer({ idempotent: true });
  await producer.connect();
  const services = ["user-svc", "room-svc", "im-svc", "social-svc", "gift-svc", "pay-svc", "device-svc"];
  await producer.send({
    topic: input,
    acks: -1,
    messages: services.map((service, i) => ({
      key: service,
      value: codec.encode(closingAccessLog(service, i, at)),
    })),
  });
  await producer.disconnect();
}

/** Reads the run's access topic between two offset maps with a plain consumer, and stores the events in access_raw. */
async function readRaw(from: Map<number, number>, to: Map<number, number>): Promise<AccessLog[]> {
  const consumer = kafka.consumer({ groupId: uniqueName("health-raw") });
  const events: AccessLog[] = [];
  let remaining = 0;
  for (const [p, end] of to) remaining += end - (from.get(p) ?? 0);
  await consumer.connect();
  await consumer.subscribe({ topic: input });
  await new Promise<void>((resolve, reject) => {
    consumer.on(consumer.events.GROUP_JOIN, () => {
      for (const [p, o] of from) consumer.seek({ topic: input, partition: p, offset: String(o) });
    });
    consumer
      .run({
        eachMessage: async ({ partition, message }) => {
          const off = Number(message.offset);
          if (off < (from.get(partition) ?? 0) || off >= (to.get(partition) ?? 0)) return;
          events.push(codec.decode(message.value as Buffer));
          if (--remaining === 0) resolve();
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  for (let i = 0; i < events.length; i += 50_000) {
    await ch.insert({
      table: `${database}.access_raw`,
      format: "JSONEachRow",
      values: events.slice(i, i + 50_000).map((e) => ({
        ts: e.ts,
        service: e.service,
        endpoint: e.endpoint,
        status: e.status,
        error_code: e.errorCode ?? "",
        latency_us: e.latencyUs,
      })),
    });
  }
  return events;
}

async function rows<T>(query: string): Promise<T[]> {
  return (await ch.query({ query, format: "JSONEachRow" })).json<T>();
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      const logs = [...workerLogs].map(([name, log]) => `--- ${name}:\n${log().slice(-4000)}`).join("\n");
      throw new Error(`timed out waiting for ${what}\n${logs}`);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

test("health end to end: exact per-second counts despite a SIGKILL, incidents alert within 10 s, a calm run alerts nothing", async () => {
  // A little ahead of now, well inside the 45 min a worker accepts ahead of its clock, calm run included.
  const start = Math.ceil((Date.now() + 120_000) / 60_000) * 60_000;
  const seconds = 150;
  const end = start + seconds * 1000;
  const before = await endOffsets();

  let worker = startWorker("health-1");
  const truth = simulate("incidents", start, seconds, join(dir, "sim"));
  const after = await endOffsets();
  // Kill the worker once part of the run is in ClickHouse: it restores from its changelogs and resumes.
  await waitFor(
    "the first rows in ClickHouse",
    async () =>
      Number(
        (
          await rows<{ n: string }>(
            `SELECT count() AS n FROM ${database}.health_metrics WHERE window_start >= ${start / 1000}`,
          )
        )[0]?.n,
      ) > 200,
    180_000,
  );
  worker.kill("SIGKILL");
  await new Promise((r) => worker.once("exit", r));
  worker = startWorker("health-2");
  await closeWindows(end + 60_000);

  const raw = await readRaw(before, after);
  assert.ok(raw.length > 50_000, `the simulator produced ${raw.length} access events`);
  const lastMinute = Math.floor(end / 60_000) * 60_000 - 60_000;
  await waitFor(
    "the run's last minute at app level",
    async () =>
      (
        await rows(
          `SELECT 1 FROM ${database}.health_metrics WHERE window_ms = 60000 AND level = 'APP' AND window_start = ${lastMinute / 1000}`,
        )
      ).length > 0,
    300_000,
  );

  // Per second and endpoint: count and errors from SQL over the raw events, slow and p99 computed here.
  const codes = slo.file.errorCodes.map(quoteString).join(",");
  const exact = await rows<{ service: string; endpoint: string; s: string; n: string; errors: string }>(
    `SELECT service, endpoint, intDiv(ts, 1000) AS s, count() AS n, countIf(status >= 500 OR error_code IN (${codes})) AS errors
     FROM ${database}.access_raw WHERE ts >= ${start} AND ts < ${end} GROUP BY service, endpoint, s`,
  );
  const got = await rows<{
    service: string;
    endpoint: string;
    s: string;
    requests: string;
    errors: string;
    slow: string;
    p99: number;
  }>(
    `SELECT service, endpoint, toUInt32(window_start) AS s, requests, errors, slow, latency_p99_us AS p99
     FROM ${database}.health_metrics FINAL
     WHERE window_ms = 1000 AND level = 'ENDPOINT' AND final = 1 AND window_start >= ${start / 1000} AND window_start < ${end / 1000}`,
  );
  const byKey = new Map(got.map((r) => [`${r.service} ${r.endpoint} ${r.s}`, r]));
  const latencies = new Map<string, number[]>();
  for (const e of raw) {
    if (e.ts < start || e.ts >= end) continue;
    const k = `${e.service} ${e.endpoint} ${Math.floor(e.ts / 1000)}`;
    const l = latencies.get(k) ?? [];
    l.push(e.latencyUs);
    latencies.set(k, l);
  }
  assert.equal(got.length, exact.length, "one final row per endpoint and second, no more, no fewer");
  let worstError = 0;
  for (const x of exact) {
    const key = `${x.service} ${x.endpoint} ${x.s}`;
    const r = byKey.get(key);
    assert.ok(r, `no row for ${key}`);
    assert.equal(Number(r.requests), Number(x.n), `requests ${key}`);
    assert.equal(Number(r.errors), Number(x.errors), `errors ${key}`);
    const sorted = (latencies.get(key) as number[]).sort((a, b) => a - b);
    const threshold = slo.slowThresholdUs("live", "", x.service, x.endpoint);
    assert.equal(Number(r.slow), sorted.filter((l) => l > threshold).length, `slow ${key}`);
    const p99 = sorted[Math.floor(0.99 * (sorted.length - 1))] as number;
    const err = Math.abs(r.p99 - p99) / p99;
    worstError = Math.max(worstError, err);
    assert.ok(err <= 0.01 + 1e-9, `p99 ${key}: ${r.p99} vs exact ${p99}`);
  }
  console.log(
    `# ${exact.length} endpoint-seconds equal the raw events; worst p99 error ${(worstError * 100).toFixed(3)}%`,
  );

  // Every level adds up: the app's seconds and minutes hold every request of the run.
  const totals = await rows<{ level: string; ms: string; n: string }>(
    `SELECT level, window_ms AS ms, sum(requests) AS n FROM ${database}.health_metrics FINAL
     WHERE final = 1 AND window_start >= ${start / 1000} AND window_start < ${lastMinute / 1000 + 60} GROUP BY level, ms`,
  );
  const inRun = raw.filter((e) => e.ts >= start && e.ts < lastMinute + 60_000).length;
  for (const t of totals) {
    if (t.ms === "3600000") continue;
    assert.equal(Number(t.n), inRun, `${t.level} ${t.ms} ms rows sum to every request`);
  }
  assert.equal(totals.filter((t) => t.ms !== "3600000").length, 8);

  // Every incident raises an alert on its service within 10 s of its start (event time).
  const alerts = await rows<{ id: string; rule: string; service: string; ts_ms: string; state: string }>(
    `SELECT id, rule, service, ts_ms, state FROM ${database}.health_alerts FINAL WHERE ts_ms >= ${start} AND ts_ms < ${end + 30_000}`,
  );
  const incidents = truth.filter((t) => t.kind === "incident");
  assert.equal(incidents.length, 3);
  for (const inc of incidents) {
    const hit = alerts
      .filter((a) => a.state === "FIRING" && a.rule !== "spike" && a.service === inc.service)
      .map((a) => Number(a.ts_ms) - inc.start)
      .filter((d) => d >= 0)
      .sort((a, b) => a - b)[0];
    assert.ok(
      hit !== undefined && hit <= 10_000,
      `${inc.type} on ${inc.service}: first alert ${hit} ms after its start`,
    );
    console.log(`# ${inc.type} on ${inc.service}: alert ${hit / 1000} s after its start`);
  }

  // An incident-free run: the same worker, no alert.
  const calmStart = end + 600_000;
  simulate("calm", calmStart, 180, join(dir, "calm"));
  await closeWindows(calmStart + 240_000);
  const calmEnd = calmStart + 180_000;
  await waitFor(
    "the calm run's last second",
    async () =>
      (
        await rows(
          `SELECT 1 FROM ${database}.health_metrics WHERE window_ms = 1000 AND level = 'APP' AND final = 1 AND window_start >= ${calmEnd / 1000 - 2}`,
        )
      ).length > 0,
    300_000,
  );
  const calmAlerts = await rows<{ id: string }>(
    `SELECT id FROM ${database}.health_alerts FINAL WHERE ts_ms >= ${calmStart} AND state = 'FIRING'`,
  );
  assert.deepEqual(
    calmAlerts.map((a) => a.id),
    [],
    "no alert in an incident-free run",
  );
  worker.kill("SIGTERM");
});
