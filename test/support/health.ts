// What the health pipeline's end-to-end tests share: a scratch database with the health tables, a
// worker of `weir run health` on a private input topic, an oracle computed from the access-log lines
// themselves, and the comparison of the rows in ClickHouse (the latest emission of each window, as
// FINAL reads them) with it.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ClickHouseClient } from "@clickhouse/client";
import { PROJECT_ROOT } from "../../infra/stack/config.ts";
import type { SloConfig } from "../../pipelines/health/slo.ts";
import { codecFor } from "../../schemas/codec.ts";
import type { SchemaTypes } from "../../schemas/types.generated.ts";
import { splitStatements } from "../../sinks/clickhouse/migrate.ts";
import { endpoints, kafkaClient } from "./stack.ts";

export type AccessLog = SchemaTypes["AccessLog"];

export const HOUR = 3_600_000;
/** The window lengths of the health rows, and the levels of the hierarchy. */
export const WINDOWS = [1000, 60_000, HOUR] as const;
export const LEVELS = ["ENDPOINT", "SERVICE", "SYSTEM", "APP"] as const;

/** Creates the health tables (infra/clickhouse/001_health.sql) in a database of their own. */
export async function createHealthDatabase(ch: ClickHouseClient, database: string): Promise<void> {
  const ddl = readFileSync(join(PROJECT_ROOT, "infra/clickhouse/001_health.sql"), "utf8")
    .replaceAll("CREATE DATABASE IF NOT EXISTS weir", `CREATE DATABASE IF NOT EXISTS ${database}`)
    .replaceAll("weir.", `${database}.`);
  for (const stmt of splitStatements(ddl)) await ch.command({ query: stmt });
}

export interface HealthWorker {
  child: ChildProcess;
  log(): string;
}

/** `weir run health` on `input`, with its own consumer group, internal topics and database. */
export function startHealthWorker(o: {
  name: string;
  appId: string;
  database: string;
  input: string;
  dataDir: string;
  config?: string;
}): HealthWorker {
  const child = spawn(
    process.execPath,
    [
      "cli/weir.mjs",
      "run",
      "health",
      "--instance",
      o.name,
      "--data-dir",
      o.dataDir,
      "--metrics-port",
      "0",
      ...(o.config ? ["--config", o.config] : []),
    ],
    {
      cwd: PROJECT_ROOT,
      env: {
        ...process.env,
        WEIR_KAFKA_BROKERS: endpoints.kafkaBrokers.join(","),
        WEIR_HEALTH_APP_ID: o.appId,
        WEIR_HEALTH_DATABASE: o.database,
        WEIR_HEALTH_INPUT: o.input,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let log = "";
  const keep = (d: Buffer) => {
    log += d;
    if (log.length > 400_000) log = log.slice(-200_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  return { child, log: () => log };
}

/** The parsed lines of access-log files (JSON, the AccessLog fields). */
export function readAccessLines(files: string[]): AccessLog[] {
  const out: AccessLog[] = [];
  for (const f of files) {
    for (const line of readFileSync(f, "utf8").split("\n")) {
      if (line.length === 0) continue;
      const v = JSON.parse(line) as AccessLog;
      out.push({ ...v, errorCode: v.errorCode ?? null });
    }
  }
  return out;
}

interface Expected {
  requests: number;
  errors: number;
  slow: number;
  latencies: number[];
}

function rowKey(windowMs: number, level: string, system: string, service: string, endpoint: string, start: number) {
  return `${windowMs}|${level}|${system}|${service}|${endpoint}|${start}`;
}

/** Exact counts of every window and node of every level, from the requests. */
export function oracle(requests: AccessLog[], slo: SloConfig): Map<string, Expected> {
  const m = new Map<string, Expected>();
  for (const e of requests) {
    const error = slo.isError(e.status, e.errorCode);
    const slow = e.latencyUs > slo.slowThresholdUs(e.app, e.system, e.service, e.endpoint);
    for (const ms of WINDOWS) {
      const start = e.ts - (e.ts % ms);
      for (const key of [
        rowKey(ms, "ENDPOINT", e.system, e.service, e.endpoint, start),
        rowKey(ms, "SERVICE", e.system, e.service, "", start),
        rowKey(ms, "SYSTEM", e.system, "", "", start),
        rowKey(ms, "APP", "", "", "", start),
      ]) {
        let x = m.get(key);
        if (!x) {
          x = { requests: 0, errors: 0, slow: 0, latencies: [] };
          m.set(key, x);
        }
        x.requests++;
        if (error) x.errors++;
        if (slow) x.slow++;
        x.latencies.push(e.latencyUs);
      }
    }
  }
  return m;
}

interface Row {
  window_ms: number;
  level: string;
  system: string;
  service: string;
  endpoint: string;
  start: number;
  requests: string;
  errors: string;
  slow: string;
  p99: number;
  final: number;
  correction?: number;
}

/**
 * Every row of the windows in [from, to) against the oracle, as the tables keep them (FINAL: the
 * latest emission of each window). Returns what differs, at most `limit` lines, and the totals.
 */
export async function compareRows(
  ch: ClickHouseClient,
  database: string,
  expected: Map<string, Expected>,
  from: number,
  to: number,
  limit = 12,
): Promise<{ problems: string[]; rows: number; worstP99: number }> {
  const rows = await (
    await ch.query({
      query: `SELECT window_ms, level, system, service, endpoint, toUInt64(window_start) * 1000 AS start,
                     requests, errors, slow, latency_p99_us AS p99, final
              FROM ${database}.health_metrics FINAL
              WHERE window_start >= ${Math.floor(from / 1000)} AND window_start < ${Math.floor(to / 1000)}`,
      format: "JSONEachRow",
    })
  ).json<Row>();
  const problems: string[] = [];
  const got = new Map<string, Row>();
  for (const r of rows) {
    const start = Number(r.start);
    if (start + Number(r.window_ms) > to) continue;
    got.set(rowKey(Number(r.window_ms), r.level, r.system, r.service, r.endpoint, start), r);
  }
  let worstP99 = 0;
  const say = (s: string) => {
    if (problems.length < limit) problems.push(s);
  };
  let missing = 0;
  let wrong = 0;
  for (const [key, x] of expected) {
    const [, , , , , start] = key.split("|");
    if (Number(start) < from) continue;
    const r = got.get(key);
    if (!r) {
      missing++;
      say(`missing ${key} (${x.requests} requests)`);
      continue;
    }
    const sorted = x.latencies.sort((a, b) => a - b);
    const p99 = sorted[Math.floor(0.99 * (sorted.length - 1))] as number;
    const err = Math.abs(r.p99 - p99) / p99;
    worstP99 = Math.max(worstP99, err);
    if (
      r.final !== 1 ||
      Number(r.requests) !== x.requests ||
      Number(r.errors) !== x.errors ||
      Number(r.slow) !== x.slow ||
      err > 0.01 + 1e-9
    ) {
      wrong++;
      say(
        `${key}: final ${r.final}, requests ${r.requests}/${x.requests}, errors ${r.errors}/${x.errors}, slow ${r.slow}/${x.slow}, p99 ${r.p99}/${p99}`,
      );
    }
  }
  for (const key of got.keys()) {
    if (!expected.has(key)) {
      wrong++;
      say(`unexpected row ${key}`);
    }
  }
  if (missing + wrong > 0) problems.unshift(`${missing} rows missing and ${wrong} wrong of ${expected.size}`);
  return { problems, rows: got.size, worstP99 };
}

/** Per window length and level, the requests the final rows of [from, to) count. */
export async function totalsByLevel(
  ch: ClickHouseClient,
  database: string,
  from: number,
  to: number,
): Promise<Map<string, number>> {
  const rows = await (
    await ch.query({
      query: `SELECT window_ms, level, sum(requests) AS n FROM ${database}.health_metrics FINAL
              WHERE final = 1 AND window_start >= ${Math.floor(from / 1000)} AND window_start < ${Math.floor(to / 1000)}
              GROUP BY window_ms, level`,
      format: "JSONEachRow",
    })
  ).json<{ window_ms: number; level: string; n: string }>();
  return new Map(rows.map((r) => [`${r.window_ms} ${r.level}`, Number(r.n)]));
}

/** One request per service at `ts` (no source header): moves every partition's watermark past the run. */
export async function closeWindows(topic: string, ts: number, services: string[]): Promise<void> {
  const codec = codecFor("AccessLog");
  const producer = kafkaClient("weir-test-health").producer({ idempotent: true });
  await producer.connect();
  try {
    await producer.send({
      topic,
      acks: -1,
      messages: services.map((service, i) => ({
        key: service,
        value: codec.encode(closingAccessLog(service, i, ts)),
      })),
    });
  } finally {
    await producer.disconnect();
  }
}

/** An access line far after a run, one per service, so that every window of the run closes. */
export function closingAccessLog(service: string, i: number, ts: number): AccessLog {
  return {
    id: `closing-${i}-${ts}`,
    ts,
    app: "live",
    system: "closing",
    service,
    endpoint: "/closing",
    method: "GET",
    status: 200,
    latencyUs: 1000,
    bytesIn: 0,
    bytesOut: 0,
    errorCode: null,
    traceId: null,
    caller: null,
    uid: null,
    deviceId: null,
    clientIp: "127.0.0.1",
    roomId: null,
    userAgent: null,
    urlQuery: null,
    referrer: null,
    host: "test",
    source: null,
  };
}

/** The records a topic holds: the sum over partitions of end minus start, read_committed (commit markers count). */
export async function topicEndOffsets(topic: string): Promise<number> {
  const admin = kafkaClient("weir-test-health").admin();
  await admin.connect();
  try {
    let n = 0;
    for (const p of await admin.fetchTopicOffsets(topic)) n += Number(p.high);
    return n;
  } finally {
    await admin.disconnect();
  }
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, log?: () => string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${log ? `\n${log().slice(-5000)}` : ""}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Counts a topic's messages (read_committed) until there are `expected` or `timeoutMs` passed; returns the count. */
export async function countMessages(topic: string, expected: number, timeoutMs: number): Promise<number> {
  const consumer = kafkaClient("weir-test-health").consumer({
    groupId: `count-${topic}-${Date.now()}`,
    readUncommitted: false,
  });
  let n = 0;
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const deadline = setTimeout(resolve, timeoutMs);
      consumer
        .run({
          eachBatch: async ({ batch }) => {
            n += batch.messages.length;
            if (n >= expected) {
              clearTimeout(deadline);
              resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return n;
}

/** The ids of a topic's AccessLog messages (read_committed), for a diagnosis of what is missing. */
export async function messageIds(topic: string, timeoutMs: number): Promise<Map<string, number>> {
  const codec = codecFor("AccessLog");
  const consumer = kafkaClient("weir-test-health").consumer({ groupId: `ids-${topic}-${Date.now()}` });
  const ids = new Map<string, number>();
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      let quiet = setTimeout(resolve, timeoutMs);
      consumer
        .run({
          eachMessage: async ({ message }) => {
            if (!message.value) return;
            const id = codec.decode(message.value).id;
            ids.set(id, (ids.get(id) ?? 0) + 1);
            clearTimeout(quiet);
            quiet = setTimeout(resolve, 3000);
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return ids;
}
