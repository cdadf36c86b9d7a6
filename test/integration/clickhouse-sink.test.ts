// The ClickHouse sink, migrations and retention against the local stack's real ClickHouse (18.16).
// Every table and database here has a unique name and is dropped in a `finally`.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { type ClickHouseClient, ClickHouseLogLevel, createClient } from "@clickhouse/client";
import pino from "pino";
import { LogTraffic } from "../../bench/logs/traffic.ts";
import { PROJECT_ROOT } from "../../infra/stack/config.ts";
import type { LogLine } from "../../pipelines/logs/lines.ts";
import { denseLogRow, LOG_COLUMNS, logRow } from "../../pipelines/logs/rows.ts";
import { logsTableStatements } from "../../pipelines/logs/table.ts";
import { MigrationError, migrate } from "../../sinks/clickhouse/migrate.ts";
import {
  monthlyExpiry,
  PartitionRetention,
  RetentionScheduler,
  resolutionDailyExpiry,
} from "../../sinks/clickhouse/retention.ts";
import type { ColumnSpec } from "../../sinks/clickhouse/rowbinary.ts";
import { ClickHouseSink, ClickHouseSinkError } from "../../sinks/clickhouse/sink.ts";
import { ident, sql } from "../../sinks/clickhouse/sql.ts";
import type { Rec } from "../../stream/types.ts";
import { clickhouseClient, endpoints, requireStack, uniqueName } from "../support/stack.ts";

const quiet = pino({ level: "silent" });

/** The health_metrics DDL of infra/clickhouse/001_health.sql, under another name. */
function healthMetricsDdl(database: string, table: string): string {
  const text = readFileSync(join(PROJECT_ROOT, "infra/clickhouse/001_health.sql"), "utf8");
  const start = text.indexOf("CREATE TABLE IF NOT EXISTS weir.health_metrics");
  const end = text.indexOf(";", start);
  return text
    .slice(start, end)
    .replace("weir.health_metrics", `${ident(database, table)}`)
    .replace(/--[^\n]*/g, "");
}

interface Metric {
  windowStart: number;
  windowMs: number;
  level: string;
  endpoint: string;
  requests: number;
  errors: number;
  sketch: string;
}

function metricRow(r: Rec<Metric>) {
  const m = r.value;
  return {
    window_start: Math.floor(m.windowStart / 1000), // DateTime: seconds since the epoch
    window_ms: m.windowMs,
    level: m.level, // Enum8: the element's name
    app: "live",
    system: "room",
    service: "room-svc",
    endpoint: m.endpoint,
    requests: m.requests,
    errors: m.errors,
    slow: 0,
    latency_p50_us: 1200.5,
    latency_p90_us: 4000,
    latency_p99_us: 9000.25,
    latency_p999_us: 15000,
    latency_max_us: 20000,
    sketch: m.sketch,
    emitted_at: r.ts,
  };
}

async function count(ch: ClickHouseClient, query: string): Promise<Record<string, string>> {
  const rs = await ch.query({ query, format: "JSONEachRow" });
  return ((await rs.json()) as Array<Record<string, string>>)[0] ?? {};
}

const T0 = Date.UTC(2026, 10, 20, 10, 0, 0);

test("the sink lands every row exactly once, in batches, and flush waits for ClickHouse", async () => {
  await requireStack();
  const ch = clickhouseClient();
  const table = uniqueName("sink_rows");
  const sink = new ClickHouseSink<Metric>({
    url: endpoints.clickhouseUrl,
    database: "default",
    table,
    batchSize: 10_000,
    flushInterval: "1h",
    logger: quiet,
    toRow: metricRow,
  });
  try {
    await ch.command({ query: healthMetricsDdl("default", table) });
    const n = 25_000;
    let requests = 0;
    for (let i = 0; i < n; i++) {
      const value: Metric = {
        windowStart: T0 + i * 1000,
        windowMs: 1000,
        level: "ENDPOINT",
        endpoint: `/api/room/${i % 50}/enter`,
        requests: i,
        errors: i % 3,
        sketch: Buffer.from(`sketch-${i}`).toString("base64"),
      };
      requests += i;
      sink.write({ key: null, ts: T0 + i * 1000 + 5, value });
    }
    await sink.flush();
    assert.equal(sink.pending(), 0);
    assert.equal(sink.stats.rowsWritten, n);
    assert.equal(sink.stats.batches, 3);
    const got = await count(
      ch,
      sql`SELECT count() AS n, sum(requests) AS requests, uniqExact(window_start) AS windows, min(window_start) AS first, countIf(level = 'ENDPOINT') AS endpoints FROM ${ident("default", table)} FINAL`,
    );
    assert.equal(Number(got.n), n);
    assert.equal(Number(got.requests), requests);
    assert.equal(Number(got.windows), n);
    assert.equal(got.first, "2026-11-20 10:00:00");
    assert.equal(Number(got.endpoints), n);
    const [sketch] = (await (
      await ch.query({
        query: sql`SELECT sketch FROM ${ident("default", table)} WHERE requests = 7`,
        format: "JSONEachRow",
      })
    ).json()) as Array<{ sketch: string }>;
    assert.equal(Buffer.from(sketch?.sketch ?? "", "base64").toString(), "sketch-7");
    assert.deepEqual(sink.takeRejected(), []);
  } finally {
    await sink.close();
    await ch.command({ query: sql`DROP TABLE IF EXISTS ${ident("default", table)}` });
    await ch.close();
  }
});

test("a bad row among good ones is rejected with ClickHouse's reason; the rest land", async () => {
  await requireStack();
  const ch = clickhouseClient();
  const table = uniqueName("sink_bad");
  const sink = new ClickHouseSink<Metric>({
    url: endpoints.clickhouseUrl,
    database: "default",
    table,
    logger: quiet,
    toRow: (r) => {
      if (r.value.endpoint === "") throw new Error("endpoint missing");
      const row = metricRow(r) as Record<string, unknown>;
      // A bad row: a string where ClickHouse reads a number, an Enum8 element that does not exist.
      if (r.value.requests === 500) row.requests = "five hundred";
      return row;
    },
  });
  try {
    await ch.command({ query: healthMetricsDdl("default", table) });
    for (let i = 0; i < 1000; i++) {
      sink.write({
        key: null,
        ts: T0,
        value: {
          windowStart: T0 + i * 1000,
          windowMs: 1000,
          level: i === 250 ? "GALAXY" : "SERVICE",
          endpoint: i === 750 ? "" : "/x",
          requests: i,
          errors: 0,
          sketch: "",
        },
      });
    }
    await sink.flush();
    const rejected = sink.takeRejected();
    assert.deepEqual(
      rejected.map((r) => r.rec.value.requests).sort((a, b) => a - b),
      [250, 500, 750],
    );
    const byRow = new Map(rejected.map((r) => [r.rec.value.requests, r]));
    for (const r of rejected) assert.equal(r.reason, "sink-rejected");
    assert.match(byRow.get(250)?.message ?? "", /Unknown element 'GALAXY' for type Enum8/);
    assert.match(byRow.get(500)?.message ?? "", /^Code \d+: Cannot parse .*requests/);
    assert.equal(byRow.get(750)?.message, "toRow failed: endpoint missing");
    const got = await count(
      ch,
      sql`SELECT count() AS n, countIf(requests IN (250, 500, 750)) AS bad, sum(requests) AS s FROM ${ident("default", table)}`,
    );
    assert.equal(Number(got.n), 997);
    assert.equal(Number(got.bad), 0);
    assert.equal(Number(got.s), (999 * 1000) / 2 - 1500);
  } finally {
    await sink.close();
    await ch.command({ query: sql`DROP TABLE IF EXISTS ${ident("default", table)}` });
    await ch.close();
  }
});

test("flush rejects when ClickHouse cannot be reached and retries run out; nothing is acknowledged", async () => {
  const sink = new ClickHouseSink<Metric>({
    url: "http://127.0.0.1:1",
    database: "default",
    table: "nowhere",
    logger: quiet,
    retries: { max: 2, initialDelay: 10, maxDelay: 20 },
    toRow: metricRow,
  });
  try {
    sink.write({
      key: null,
      ts: T0,
      value: { windowStart: T0, windowMs: 1000, level: "APP", endpoint: "", requests: 1, errors: 0, sketch: "" },
    });
    await assert.rejects(sink.flush(), (e: unknown) => e instanceof ClickHouseSinkError && e.attempts === 3);
    assert.equal(sink.pending(), 1);
    assert.equal(sink.stats.retries, 2);
  } finally {
    await sink.close();
  }
});

test("migrations apply in order, are idempotent, and a changed file is refused", async () => {
  await requireStack();
  // Its own client: the broken migration below would make the shared one print the server's error.
  const ch = createClient({ url: endpoints.clickhouseUrl, log: { level: ClickHouseLogLevel.OFF } });
  const db = uniqueName("weir_migrate");
  const dir = mkdtempSync(join(tmpdir(), "weir-migrations-"));
  try {
    writeFileSync(
      join(dir, "001_base.sql"),
      `-- the first table
CREATE DATABASE IF NOT EXISTS ${db};
CREATE TABLE IF NOT EXISTS ${db}.events
(
    id String, -- unique; kept once
    ts DateTime
)
ENGINE = ReplacingMergeTree ORDER BY id;
`,
    );
    writeFileSync(
      join(dir, "002_more.sql"),
      `CREATE TABLE IF NOT EXISTS ${db}.counts (k String, n UInt64) ENGINE = SummingMergeTree ORDER BY k;
INSERT INTO ${db}.counts VALUES ('seed;', 1);
`,
    );
    const dry = await migrate({ client: ch, dir, database: db, dryRun: true });
    assert.deepEqual(
      dry.applied.map((f) => f.name),
      ["001_base.sql", "002_more.sql"],
    );
    const tablesBefore = await count(ch, sql`SELECT count() AS n FROM system.databases WHERE name = ${db}`);
    assert.equal(Number(tablesBefore.n), 0, "a dry run creates nothing");

    const first = await migrate({ client: ch, dir, database: db });
    assert.deepEqual(
      first.applied.map((f) => [f.name, f.statements.length]),
      [
        ["001_base.sql", 2],
        ["002_more.sql", 2],
      ],
    );
    const second = await migrate({ client: ch, dir, database: db });
    assert.deepEqual(second.applied, []);
    assert.deepEqual(second.unchanged, ["001_base.sql", "002_more.sql"]);
    const seeded = await count(ch, sql`SELECT sum(n) AS n FROM ${ident(db, "counts")}`);
    assert.equal(Number(seeded.n), 1, "the second run applied nothing again");
    const recorded = await count(
      ch,
      sql`SELECT count() AS n, groupArray(sha256)[1] AS sha FROM ${ident(db, "schema_migrations")} WHERE name = '001_base.sql'`,
    );
    assert.equal(Number(recorded.n), 1);
    assert.equal(recorded.sha, first.applied[0]?.sha256);

    writeFileSync(join(dir, "003_new.sql"), `ALTER TABLE ${db}.events ADD COLUMN note String;\n`);
    const third = await migrate({ client: ch, dir, database: db });
    assert.deepEqual(
      third.applied.map((f) => f.name),
      ["003_new.sql"],
    );

    writeFileSync(join(dir, "001_base.sql"), `${readFileSync(join(dir, "001_base.sql"), "utf8")}-- edited\n`);
    await assert.rejects(
      migrate({ client: ch, dir, database: db }),
      (e: unknown) =>
        e instanceof MigrationError &&
        e.file === join(dir, "001_base.sql") &&
        /001_base\.sql was applied .* but has changed since/.test(e.message),
    );
    await assert.rejects(migrate({ client: ch, dir, database: db, dryRun: true }), MigrationError);

    writeFileSync(join(dir, "004_broken.sql"), "CREATE TABLE nope (;\n");
    rmSync(join(dir, "001_base.sql"));
    const failed = await migrate({ client: ch, dir, database: db }).catch((e: unknown) => e);
    assert.ok(failed instanceof MigrationError);
    assert.match(failed.message, /004_broken\.sql, statement 1 of 1, failed: Code 62: Syntax error/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await ch.command({ query: sql`DROP DATABASE IF EXISTS ${ident(db)}` });
    await ch.close();
  }
});

test("retention drops exactly the expired partitions", async () => {
  await requireStack();
  const ch = clickhouseClient();
  const metrics = uniqueName("retention_metrics");
  const alerts = uniqueName("retention_alerts");
  try {
    await ch.command({ query: healthMetricsDdl("default", metrics) });
    await ch.command({
      query: sql`CREATE TABLE ${ident("default", alerts)} (id String, ts DateTime) ENGINE = ReplacingMergeTree PARTITION BY toYYYYMM(ts) ORDER BY id`,
    });
    const now = Date.UTC(2026, 10, 21, 12); // 2026-11-21 12:00 UTC
    const day = (y: number, m: number, d: number) => Math.floor(Date.UTC(y, m - 1, d, 6) / 1000);
    const rows = [
      [1000, day(2026, 11, 13)], // 1 s, 8 days old: expired
      [1000, day(2026, 11, 14)], // ends 2026-11-15: 6.5 days: kept
      [1000, day(2026, 11, 21)],
      [60000, day(2026, 8, 22)], // 1 min, ended 2026-08-23 + 90 d = 2026-11-21 00:00: expired
      [60000, day(2026, 8, 23)],
      [3600000, day(2025, 10, 16)], // 1 h, + 400 d: expired
      [3600000, day(2025, 10, 17)],
      [5000, day(2020, 1, 1)], // no policy for 5 s: kept
    ] as const;
    await ch.insert({
      table: `default.${metrics}`,
      format: "JSONEachRow",
      values: rows.map(([w, t], i) => ({ window_start: t, window_ms: w, level: "APP", requests: i, emitted_at: i })),
    });
    await ch.insert({
      table: `default.${alerts}`,
      format: "JSONEachRow",
      values: [
        { id: "a", ts: day(2025, 9, 30) }, // September 2025: expired after 13 months
        { id: "b", ts: day(2025, 10, 1) },
        { id: "c", ts: day(2026, 11, 20) },
      ],
    });
    const metricsRetention = new PartitionRetention({
      client: ch,
      database: "default",
      table: metrics,
      isExpired: resolutionDailyExpiry({ 1000: "7d", 60000: "90d", 3600000: "400d" }),
      logger: quiet,
    });
    const alertsRetention = new PartitionRetention({
      client: ch,
      database: "default",
      table: alerts,
      isExpired: monthlyExpiry(13),
      logger: quiet,
    });
    assert.deepEqual(
      (await metricsRetention.expired(now)).map((p) => p.partition),
      ["(1000,20261113)", "(3600000,20251016)", "(60000,20260822)"],
    );
    const scheduler = new RetentionScheduler([metricsRetention, alertsRetention], { cron: "0 3 * * *", logger: quiet });
    const runs = await scheduler.runNow(now);
    assert.deepEqual(
      runs.map((r) => [r.table, r.dropped.map((p) => p.partition), r.kept]),
      [
        [`default.${metrics}`, ["(1000,20261113)", "(3600000,20251016)", "(60000,20260822)"], 5],
        [`default.${alerts}`, ["202509"], 2],
      ],
    );
    const left = (await (
      await ch.query({
        query: sql`SELECT window_ms, toYYYYMMDD(window_start) AS day FROM ${ident("default", metrics)} ORDER BY window_ms, day`,
        format: "JSONEachRow",
      })
    ).json()) as Array<{ window_ms: number; day: number }>;
    assert.deepEqual(
      left.map((r) => [r.window_ms, r.day]),
      [
        [1000, 20261114],
        [1000, 20261121],
        [5000, 20200101],
        [60000, 20260823],
        [3600000, 20251017],
      ],
    );
    const ids = await count(
      ch,
      sql`SELECT arrayStringConcat(groupArray(id), ',') AS ids FROM ${ident("default", alerts)}`,
    );
    assert.deepEqual(ids.ids?.split(",").sort(), ["b", "c"]);
    // A second run finds nothing more to drop.
    assert.deepEqual(
      (await scheduler.runNow(now)).map((r) => r.dropped.length),
      [0, 0],
    );
  } finally {
    await ch.command({ query: sql`DROP TABLE IF EXISTS ${ident("default", metrics)}` });
    await ch.command({ query: sql`DROP TABLE IF EXISTS ${ident("default", alerts)}` });
    await ch.close();
  }
});

test("the retention scheduler runs on its cron expression", async () => {
  await requireStack();
  const ch = clickhouseClient();
  const table = uniqueName("retention_cron");
  const ran: number[] = [];
  const scheduler = new RetentionScheduler(
    [
      new PartitionRetention({
        client: ch,
        database: "default",
        table,
        isExpired: () => {
          ran.push(Date.now());
          return true;
        },
        logger: quiet,
      }),
    ],
    { cron: "* * * * * *", logger: quiet }, // every second
  );
  try {
    await ch.command({
      query: sql`CREATE TABLE ${ident("default", table)} (d Date, x UInt8) ENGINE = MergeTree PARTITION BY toYYYYMM(d) ORDER BY x`,
    });
    await ch.command({ query: sql`INSERT INTO ${ident("default", table)} VALUES ('2020-01-01', 1)` });
    assert.throws(() => new RetentionScheduler([], { cron: "every hour" }), /not a cron expression/);
    scheduler.start();
    assert.ok(scheduler.nextRun() instanceof Date);
    for (let i = 0; i < 50 && ran.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(ran.length > 0, "the scheduled run happened");
    await scheduler.stop();
    for (let i = 0; i < 30; i++) {
      const left = await count(ch, sql`SELECT count() AS n FROM ${ident("default", table)}`);
      if (Number(left.n) === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(Number((await count(ch, sql`SELECT count() AS n FROM ${ident("default", table)}`)).n), 0);
  } finally {
    await scheduler.stop();
    await ch.command({ query: sql`DROP TABLE IF EXISTS ${ident("default", table)}` });
    await ch.close();
  }
});

// --- RowBinary ------------------------------------------------------------------------------------------

/** The simulator's app and access lines (bench/logs/traffic.ts, with PII in some), as the sinks get them. */
function logLines(n: number): LogLine[] {
  const traffic = new LogTraffic({ runId: uniqueName("rb"), start: T0, seconds: 3600, rate: 500 });
  const lines: LogLine[] = [];
  for (let t = T0 + 5000; lines.length < n; t += 5000) {
    const b = traffic.until(t);
    for (const log of b.app) lines.push({ dataset: "app", log });
    for (const log of b.access) lines.push({ dataset: "access", log });
  }
  return lines.slice(0, n);
}

const RB_COLUMNS: ColumnSpec[] = [
  { name: "n", type: "UInt32" },
  { name: "s", type: "String" },
  { name: "u64", type: "UInt64" },
  { name: "i64", type: "Int64" },
  { name: "u8", type: "UInt8" },
  { name: "u16", type: "UInt16" },
  { name: "i8", type: "Int8" },
  { name: "i16", type: "Int16" },
  { name: "i32", type: "Int32" },
  { name: "f64", type: "Float64" },
  { name: "f32", type: "Float32" },
  { name: "ts", type: "DateTime" },
  { name: "level", type: "Enum8('TRACE' = 1, 'INFO' = 3, 'ERROR' = 5)" },
  { name: "e16", type: "Enum16('low' = -300, 'high' = 300)" },
  { name: "tags", type: "Array(String)" },
  { name: "grid", type: "Array(Array(UInt16))" },
  { name: "code", type: "FixedString(4)" },
  { name: "note", type: "Nullable(String)" },
];

test("RowBinary: every supported type lands as written, defaults where a key is missing", async () => {
  await requireStack();
  const ch = clickhouseClient();
  const table = uniqueName("sink_rowbinary");
  const rows: Array<Record<string, unknown>> = [
    {
      n: 1,
      s: "直播 é 😀 \n\t\0 \"'` end",
      u64: 2n ** 64n - 1n,
      i64: -(2n ** 63n),
      u8: 255,
      u16: 65535,
      i8: -128,
      i16: 32767,
      i32: -2_147_483_648,
      f64: 0.1,
      f32: 1.5,
      ts: Math.floor(T0 / 1000),
      level: "ERROR",
      e16: "low",
      tags: ["a", "", "ключ"],
      grid: [[], [1], [2, 3, 65535]],
      code: "ab",
      note: "n",
    },
    { n: 2 }, // every other column: its default
    { n: 3, s: "x".repeat(100_000), u64: Number.MAX_SAFE_INTEGER, i64: -5, tags: ["only"], note: null, e16: "high" },
  ];
  const sink = new ClickHouseSink<Record<string, unknown>>({
    url: endpoints.clickhouseUrl,
    database: "default",
    table,
    format: "RowBinary",
    columns: RB_COLUMNS,
    logger: quiet,
    toRow: (r) => r.value,
  });
  try {
    await ch.command({
      query: `CREATE TABLE ${ident("default", table)} (${RB_COLUMNS.map((c) => `${c.name} ${c.type}`).join(", ")}) ENGINE = MergeTree ORDER BY n`,
    });
    for (const value of rows) sink.write({ key: null, ts: T0, value });
    await sink.flush();
    assert.deepEqual(sink.takeRejected(), []);
    const got = (await (
      await ch.query({
        query: sql`SELECT *, toString(u64) AS u64s, toString(i64) AS i64s, toUInt32(length(s)) AS chars FROM ${ident("default", table)} ORDER BY n`,
        format: "JSONEachRow",
      })
    ).json()) as Array<Record<string, unknown>>;
    assert.equal(got.length, 3);
    const [a, b, c] = got as [Record<string, unknown>, Record<string, unknown>, Record<string, unknown>];
    assert.equal(a.s, rows[0]?.s);
    assert.equal(a.u64s, "18446744073709551615");
    assert.equal(a.i64s, "-9223372036854775808");
    assert.deepEqual(
      [a.u8, a.u16, a.i8, a.i16, a.i32, a.f64, a.f32, a.ts, a.level, a.e16, a.tags, a.grid, a.code, a.note],
      [
        255,
        65535,
        -128,
        32767,
        -2147483648,
        0.1,
        1.5,
        "2026-11-20 10:00:00",
        "ERROR",
        "low",
        ["a", "", "ключ"],
        [[], [1], [2, 3, 65535]],
        "ab\u0000\u0000",
        "n",
      ],
    );
    assert.deepEqual(
      [b.s, b.u64s, b.i64s, b.u8, b.f64, b.ts, b.level, b.e16, b.tags, b.grid, b.code, b.note],
      ["", "0", "0", 0, 0, "0000-00-00 00:00:00", "TRACE", "low", [], [], "\u0000\u0000\u0000\u0000", null],
    );
    assert.deepEqual(
      [c.chars, c.u64s, c.i64s, c.tags, c.note, c.e16],
      [100_000, "9007199254740991", "-5", ["only"], null, "high"],
    );
  } finally {
    await sink.close();
    await ch.command({ query: sql`DROP TABLE IF EXISTS ${ident("default", table)}` });
    await ch.close();
  }
});

test("RowBinary: weir.logs rows are stored exactly as the JSONEachRow path stores them; a bad row is rejected by column", async () => {
  await requireStack();
  const ch = clickhouseClient();
  const db = uniqueName("weir_logs_rb");
  const lines = logLines(3000);
  const common = { url: endpoints.clickhouseUrl, database: db, batchSize: 1000, logger: quiet };
  const json = new ClickHouseSink<LogLine>({ ...common, table: "logs_json", toRow: logRow });
  const binary = new ClickHouseSink<LogLine>({
    ...common,
    table: "logs",
    format: "RowBinary",
    columns: [...LOG_COLUMNS],
    toRow: (r) => {
      const row = denseLogRow(r);
      // Bad rows: a level outside the Enum, a negative UInt64, a string in a number column.
      if (r.value.log.id === "bad-level") row.level = "LOUD";
      if (r.value.log.id === "bad-uid") row.uid = -7;
      if (r.value.log.id === "bad-status") (row as unknown as Record<string, unknown>).status = "200";
      return row;
    },
  });
  try {
    for (const stmt of logsTableStatements(db)) await ch.command({ query: stmt });
    await ch.command({ query: sql`CREATE TABLE ${ident(db, "logs_json")} AS ${ident(db, "logs")}` });
    for (const line of lines) {
      const rec = { key: null, ts: line.log.ts, value: line };
      json.write(rec);
      binary.write(rec);
    }
    for (const id of ["bad-level", "bad-uid", "bad-status"]) {
      const base = lines.find((l) => l.dataset === "access") as LogLine & { dataset: "access" };
      binary.write({ key: null, ts: T0, value: { dataset: "access", log: { ...base.log, id, source: null } } });
    }
    await Promise.all([json.flush(), binary.flush()]);
    assert.deepEqual(json.takeRejected(), []);
    assert.deepEqual(
      binary.takeRejected().map((r) => [r.rec.value.log.id, r.message]),
      [
        ["bad-level", `column level (${LOG_COLUMNS[4]?.type}): "LOUD" is not one of the Enum's elements`],
        [
          "bad-uid",
          "column uid (UInt64): -7 is not an integer in 0..18446744073709551615 (a number up to 2^53, or a bigint)",
        ],
        ["bad-status", 'column status (UInt16): "200" is not an integer in 0..65535'],
      ],
    );
    assert.ok(binary.stats.bytesWritten < json.stats.bytesWritten * 0.7, "RowBinary bodies are smaller");
    const all = async (t: string) =>
      (await (
        await ch.query({ query: sql`SELECT * FROM ${ident(db, t)} ORDER BY id`, format: "TabSeparated" })
      ).text()) as string;
    const [fromJson, fromBinary] = await Promise.all([all("logs_json"), all("logs")]);
    assert.equal(fromJson.split("\n").length - 1, lines.length);
    assert.ok(fromBinary === fromJson, "every column of every row is the same");
  } finally {
    await json.close();
    await binary.close();
    await ch.command({ query: sql`DROP DATABASE IF EXISTS ${ident(db)}` });
    await ch.close();
  }
});

test("RowBinary: columns that differ from the real table's stop the sink before anything is inserted", async () => {
  await requireStack();
  const ch = clickhouseClient();
  const table = uniqueName("sink_rb_mismatch");
  const sink = new ClickHouseSink<{ n: number }>({
    url: endpoints.clickhouseUrl,
    database: "default",
    table,
    format: "RowBinary",
    columns: [
      { name: "n", type: "UInt64" },
      { name: "level", type: "Enum8('a' = 1, 'b' = 2)" },
    ],
    logger: quiet,
    toRow: (r) => r.value,
  });
  try {
    await ch.command({
      query: sql`CREATE TABLE ${ident("default", table)} (n UInt32, level Enum8('b' = 2, 'a' = 1, 'c' = 3)) ENGINE = MergeTree ORDER BY n`,
    });
    sink.write({ key: null, ts: T0, value: { n: 1 } });
    await assert.rejects(
      sink.flush(),
      (e: unknown) =>
        e instanceof ClickHouseSinkError &&
        e.message.includes(
          "column n is UInt32 in the table, not UInt64; column level is Enum8('a' = 1, 'b' = 2, 'c' = 3) in the table, not Enum8('a' = 1, 'b' = 2)",
        ),
    );
    const n = await count(ch, sql`SELECT count() AS n FROM ${ident("default", table)}`);
    assert.equal(Number(n.n), 0);
  } finally {
    await sink.close();
    await ch.command({ query: sql`DROP TABLE IF EXISTS ${ident("default", table)}` });
    await ch.close();
  }
});
