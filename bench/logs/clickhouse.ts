// The logs pipeline's ClickHouse writes against clickhouse-client: ClickHouseSink with the pipeline's
// `logRow` and batch size, and clickhouse-client inserting the same rows from a file, side by side,
// into scratch copies of weir.logs (infra/clickhouse/002_logs.sql). Also bare HTTP POSTs of the same
// bodies: the most any HTTP JSONEachRow writer gets from this server.
//
//   node --import tsx bench/logs/clickhouse.ts [--rows 300000] [--runs 5] [--no-write]
//
// The rows are the simulator's app and access lines (bench/logs/traffic.ts), PII masked as the
// pipeline masks them. 20,000 distinct lines are made once; the sink's side copies one per record it
// writes (with its own id and time), about what decoding a Kafka message allocates.
// Writes bench/results/logs-clickhouse.md unless --no-write.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@clickhouse/client";
import pino from "pino";
import { PROJECT_ROOT, resolveStackConfig, stackEndpoints } from "../../infra/stack/config.ts";
import { LocalStack } from "../../infra/stack/local-stack.ts";
import type { LogLine } from "../../pipelines/logs/lines.ts";
import { PiiKey } from "../../pipelines/logs/pii/key.ts";
import { compileMasker, PiiMasker, type RecordSchema } from "../../pipelines/logs/pii/masker.ts";
import { logRow } from "../../pipelines/logs/rows.ts";
import { schemaRegistry } from "../../schemas/registry.ts";
import type { AccessLog, AppLog } from "../../schemas/types.generated.ts";
import { splitStatements } from "../../sinks/clickhouse/migrate.ts";
import { ClickHouseSink } from "../../sinks/clickhouse/sink.ts";
import type { Rec } from "../../stream/types.ts";
import { clickhousePoster } from "../support/clickhouse-http.ts";
import { median } from "../support/process.ts";
import { LogTraffic } from "./traffic.ts";

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? (process.argv[i + 1] as string) : dflt;
};
const ROWS = Number(arg("rows", "300000"));
const RUNS = Number(arg("runs", "5"));
const WRITE = !process.argv.includes("--no-write");
/** The pipeline's clickhouse.batchSize (logs.yaml). */
const BATCH = 20_000;
/** Records handed to the sink between two turns of the event loop: about a Kafka fetch. */
const FETCH = 1000;
const DISTINCT = 20_000;
const COMMAND = `node --import tsx bench/logs/clickhouse.ts ${process.argv.slice(2).join(" ")}`.trim();

const cfg = resolveStackConfig();
const url = stackEndpoints(cfg).clickhouseUrl;
const nativePort = cfg.clickhouse.tcpPort;
const ch = createClient({ url });
const serverPid = (await new LocalStack(cfg, () => {}).status()).find((s) => s.service === "clickhouse")?.pid ?? null;
const fmt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString("en") : "–");

// --- the lines ----------------------------------------------------------------------------------------

const masker = new PiiMasker({}, new PiiKey("bench-logs-clickhouse-key-0123456789abcdef", "given"));
const registry = schemaRegistry();
const maskApp = compileMasker<AppLog>(registry.current("AppLog").schema as unknown as RecordSchema, masker);
const maskAccess = compileMasker<AccessLog>(registry.current("AccessLog").schema as unknown as RecordSchema, masker);
const T0 = Date.UTC(2026, 10, 20, 12, 0);
const distinct: LogLine[] = [];
{
  const traffic = new LogTraffic({ runId: "bench", start: T0, seconds: 600, rate: 2000 });
  for (let t = T0 + 5000; distinct.length < DISTINCT; t += 5000) {
    const b = traffic.until(t);
    for (const l of b.app) distinct.push({ dataset: "app", log: maskApp(l) });
    for (const l of b.access) distinct.push({ dataset: "access", log: maskAccess(l) });
  }
  distinct.length = DISTINCT;
}
const appShare = distinct.filter((l) => l.dataset === "app").length / DISTINCT;

/** Record i: a copy of a distinct line with an id and time of its own (one day, in order). */
function recordAt(i: number): Rec<LogLine> {
  const base = distinct[i % DISTINCT] as LogLine;
  const ts = T0 + Math.floor(i / 10);
  const line: LogLine =
    base.dataset === "app"
      ? { dataset: "app", log: { ...base.log, id: `bench:${i}`, ts } }
      : { dataset: "access", log: { ...base.log, id: `q-${i}`, ts } };
  return { key: base.log.service, ts, value: line };
}

// --- measurement --------------------------------------------------------------------------------------

interface Sample {
  wallMs: number;
  clientCpu: number;
  serverCpu: number;
}

function serverCpuSeconds(): number {
  if (!serverPid) return Number.NaN;
  const f = readFileSync(`/proc/${serverPid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return (Number(f[11]) + Number(f[12])) / 100;
}

async function withTable<T>(fn: (db: string) => Promise<T>): Promise<T> {
  const db = `bench_logs_${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const ddl = readFileSync(join(PROJECT_ROOT, "infra/clickhouse/002_logs.sql"), "utf8")
    .replaceAll("CREATE DATABASE IF NOT EXISTS weir", `CREATE DATABASE IF NOT EXISTS ${db}`)
    .replaceAll("weir.", `${db}.`);
  for (const stmt of splitStatements(ddl)) await ch.command({ query: stmt });
  try {
    const result = await fn(db);
    const rs = await ch.query({ query: `SELECT count() AS n FROM ${db}.logs`, format: "JSONEachRow" });
    const n = Number(((await rs.json()) as [{ n: string }])[0].n);
    if (n !== ROWS) throw new Error(`${db}.logs: ${n} rows, expected ${ROWS}`);
    return result;
  } finally {
    // Dropped before the other side runs, so its merges do not run during the other's measurement.
    await ch.command({ query: `DROP DATABASE IF EXISTS ${db}` });
  }
}

async function runSink(): Promise<Sample> {
  return withTable(async (db) => {
    const sink = new ClickHouseSink<LogLine>({
      url,
      database: db,
      table: "logs",
      batchSize: BATCH,
      logger: pino({ level: "warn" }),
      toRow: logRow,
    });
    const cpu0 = process.cpuUsage();
    const s0 = serverCpuSeconds();
    const t0 = performance.now();
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
    await sink.flush();
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const serverCpu = serverCpuSeconds() - s0;
    if (sink.stats.rowsWritten !== ROWS) throw new Error(`the sink wrote ${sink.stats.rowsWritten}`);
    await sink.close();
    return { wallMs, clientCpu: (cpu.user + cpu.system) / 1e6, serverCpu };
  });
}

function runClient(file: string): Promise<Sample> {
  return withTable(async (db) => {
    const s0 = serverCpuSeconds();
    const t0 = performance.now();
    const r = spawnSync(
      "/usr/bin/time",
      [
        "-f",
        "TIME %U %S",
        "sh",
        "-c",
        `exec clickhouse-client --port ${nativePort} --max_insert_block_size ${BATCH} --min_insert_block_size_rows ${BATCH} --query "INSERT INTO ${db}.logs FORMAT JSONEachRow" < ${file}`,
      ],
      { encoding: "utf8" },
    );
    const wallMs = performance.now() - t0;
    const serverCpu = serverCpuSeconds() - s0;
    if (r.status !== 0) throw new Error(`clickhouse-client failed: ${r.stderr}`);
    const [user, sys] = (/TIME (\S+) (\S+)/.exec(r.stderr) ?? []).slice(1).map(Number) as [number, number];
    return { wallMs, clientCpu: user + sys, serverCpu };
  });
}

function runHttp(bodies: Buffer[]): Promise<Sample> {
  const { post, close } = clickhousePoster(url);
  return withTable(async (db) => {
    const cpu0 = process.cpuUsage();
    const s0 = serverCpuSeconds();
    const t0 = performance.now();
    for (const body of bodies) await post(`INSERT INTO ${db}.logs FORMAT JSONEachRow`, body);
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    close();
    return { wallMs, clientCpu: (cpu.user + cpu.system) / 1e6, serverCpu: serverCpuSeconds() - s0 };
  });
}

/** clickhouse-client's start and a round trip: in its wall time, not in the sink's. */
function clientStartMs(): number {
  const t0 = performance.now();
  const r = spawnSync("clickhouse-client", ["--port", String(nativePort), "--query", "SELECT 1"], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`clickhouse-client failed: ${r.stderr}`);
  return performance.now() - t0;
}

// --- main -----------------------------------------------------------------------------------------------

const dir = mkdtempSync(join(tmpdir(), "weir-bench-logs-ch-"));
const file = join(dir, "rows.json");
const bodies: Buffer[] = [];
for (let i = 0; i < ROWS; i += BATCH) {
  const lines: string[] = [];
  for (let j = i; j < Math.min(ROWS, i + BATCH); j++) lines.push(JSON.stringify(logRow(recordAt(j))));
  bodies.push(Buffer.from(`${lines.join("\n")}\n`));
}
writeFileSync(file, Buffer.concat(bodies));
const bytes = bodies.reduce((n, b) => n + b.length, 0);
const load0 = loadavg()[0] as number;
console.log(
  `${ROWS.toLocaleString("en")} rows (${Math.round(appShare * 100)}% app lines), ${(bytes / 1048576).toFixed(1)} MiB of JSON lines (${Math.round(bytes / ROWS)} bytes a row)`,
);

type Side = "sink" | "client" | "http";
const SIDES: Side[] = ["sink", "client", "http"];
const runs: Record<Side, Sample[]> = { sink: [], client: [], http: [] };
const starts: number[] = [];
const run = (side: Side): Promise<Sample> => {
  if (side === "client") {
    starts.push(clientStartMs());
    return runClient(file);
  }
  return side === "http" ? runHttp(bodies) : runSink();
};
const rate = (s: Sample, startMs = 0) => ROWS / ((s.wallMs - startMs) / 1000);
try {
  for (const side of SIDES) await run(side); // warm-up
  for (let i = 0; i < RUNS; i++) {
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
const load1 = loadavg()[0] as number;

const startMs = median(starts);
const ratios = (side: Side) => runs[side].map((s, i) => rate(s) / rate(runs.client[i] as Sample, startMs));
const row = (name: string, xs: Sample[]) =>
  `| ${name} | ${fmt(median(xs.map((x) => rate(x))))} | ${median(xs.map((x) => bytes / 1048576 / (x.wallMs / 1000))).toFixed(1)} | ${median(xs.map((x) => x.clientCpu)).toFixed(2)} | ${median(xs.map((x) => x.serverCpu)).toFixed(2)} |`;
const sinkRatio = median(ratios("sink"));
const md = `# Logs pipeline: ClickHouse writes against clickhouse-client

Command: \`${COMMAND}\`
Date: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC; machine: ${cpus().length} × ${cpus()[0]?.model.trim()}, Node ${process.version}, ClickHouse 18.16 (the local stack).
Load average ${load0.toFixed(2)} before, ${load1.toFixed(2)} after (other engineers' tests and benchmarks share the machine:
ratios within a run mean more than the absolute rates).

${ROWS.toLocaleString("en")} rows of \`weir.logs\` (the simulator's app and access lines, ${Math.round(appShare * 100)}% app lines, PII masked; ${Math.round(bytes / ROWS)} bytes of JSON a row), into a fresh scratch copy of
the table (\`infra/clickhouse/002_logs.sql\`) per run, dropped before the next. ${BATCH.toLocaleString("en")} rows per INSERT, as JSONEachRow:

- **ClickHouseSink** with the pipeline's \`logRow\`: \`write()\` of each record (${FETCH.toLocaleString("en")} at a time, a turn of the event loop
  between, waiting while the sink is over its high-water mark, as the runtime does) then \`flush()\`; one HTTP request
  per batch, one at a time.
- **clickhouse-client** \`--max_insert_block_size ${BATCH} --min_insert_block_size_rows ${BATCH}\` from a file of the same rows;
  its start (median ${fmt(startMs)} ms for \`SELECT 1\`) is taken out of its time.
- **bare HTTP**: the same bodies, ready in memory, POSTed one after the other by \`node:http\`.

Medians of ${RUNS} runs after a warm-up of each, the order rotating. CPU: seconds per run of the writer and of clickhouse-server.

| writer | rows/s | MiB/s | writer CPU s | server CPU s |
|---|---|---|---|---|
${row("ClickHouseSink + logRow (HTTP)", runs.sink)}
${row("clickhouse-client (native protocol)", runs.client)}
${row("bare HTTP POSTs of the same bodies", runs.http)}

Sink / clickhouse-client: median **${sinkRatio.toFixed(2)}x** (per run: ${ratios("sink")
  .map((r) => r.toFixed(2))
  .join(", ")}). Bare HTTP / clickhouse-client: median ${median(ratios("http")).toFixed(2)}x (per run: ${ratios("http")
  .map((r) => r.toFixed(2))
  .join(", ")}).
Goal 0.9x: ${sinkRatio >= 0.9 ? "met" : "**not met**"}.

Why, in short (bench/results/clickhouse-sink.md measures the same for health rows): over HTTP the server's INSERT
thread parses the JSON, where clickhouse-client parses it in its own process and sends native blocks, so bare HTTP
is the ceiling of any JSONEachRow writer; the sink's own CPU (\`logRow\`, \`JSON.stringify\`, the copy into the batch)
competes with the server for the 2 cores.
`;
console.log(md);
if (WRITE) {
  writeFileSync(join(PROJECT_ROOT, "bench/results/logs-clickhouse.md"), md);
  console.log("wrote bench/results/logs-clickhouse.md");
}
