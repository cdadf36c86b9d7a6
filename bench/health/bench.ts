import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import kafkajs from "kafkajs";
import { ENDPOINTS, SERVICES as PLATFORM_SERVICES } from "../../infra/simulator/platform.ts";
import { clientEndpoints, PROJECT_ROOT } from "../../infra/stack/config.ts";
import { codecFor } from "../../schemas/codec.ts";
import { benchFlags } from "../support/flags.ts";
import {
  ancestors,
  CLK_TCK,
  cpuMsOf,
  freePort,
  median,
  type Proc,
  peakRssKiB,
  percentile,
  processes,
  statFields,
  tail,
} from "../support/process.ts";
import { type ProfileSummary, profileTables, type SelfTime, summarizeProfile, totalsTable } from "./profile.ts";

const { Kafka, logLevel } = kafkajs;

// ---- flags ----------------------------------------------------------------------------------------

const { argv, flag, num } = benchFlags();
const RECORDS = num("records", 2_000_000);
const RUNS = num("runs", 3);
const RATE = num("rate", 5000);
const LATENCY_SECONDS = num("latency-seconds", 60);
const LATENCY_RUNS = num("latency-runs", 3);
const TOPIC = flag("topic") ?? "bench.health.access";
const SKIP_LOAD = flag("skip-load") === "true";
const SKIP_LATENCY = flag("skip-latency") === "true";
const SKIP_PROFILE = flag("skip-profile") === "true";
const KEEP_TOPIC = flag("keep-topic") === "true";
const MAX_WAIT_MS = num("max-wait-minutes", 20) * 60_000;
const COMMAND = `node --import tsx bench/health/bench.ts ${argv.join(" ")}`.trim();
const ENDPOINTS_OF_STACK = clientEndpoints();
const BROKERS = ENDPOINTS_OF_STACK.kafkaBrokers;
const CH_URL = ENDPOINTS_OF_STACK.clickhouseUrl;
/** bench/stream/load-access.ts: backlog event time starts here and advances 1 ms per 100 records. */
const EPOCH = Date.UTC(2026, 10, 20, 12, 0, 0);
const SERVICES = [...new Set(ENDPOINTS.map((e) => e.service))];
/** The closing records' event time, after the last record: past every 1 s, 1 min and 1 h window's close. */
const CLOSING_AFTER_MS = 3_600_000 + 120_000;

const LOGS = mkdtempSync(join(tmpdir(), "weir-bench-health-"));
const { start, runJson } = processes(LOGS);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const stamp = () => new Date().toISOString().slice(11, 19);
const say = (s: string) => console.log(`[${stamp()}] ${s}`);
const uid = () => `${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
const fmt = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en") : "–");
const k = (x: number) => `${(x / 1000).toFixed(0)}k`;

// ---- ClickHouse over HTTP ----------------------------------------------------------------------------

async function ch(query: string): Promise<string> {
  const res = await fetch(`${CH_URL}/`, { method: "POST", body: query, signal: AbortSignal.timeout(30_000) });
  const text = await res.text();
  if (!res.ok) throw new Error(`ClickHouse: ${text.trim()} (query: ${query.slice(0, 200)})`);
  return text;
}

/** A scratch database with the health tables (001_health.sql, `weir.` replaced). */
async function createDatabase(db: string): Promise<void> {
  const ddl = readFileSync(join(PROJECT_ROOT, "infra/clickhouse/001_health.sql"), "utf8")
    .replace(/--[^\n]*/g, "")
    .replaceAll("CREATE DATABASE IF NOT EXISTS weir", `CREATE DATABASE IF NOT EXISTS ${db}`)
    .replaceAll("weir.", `${db}.`);
  for (const stmt of ddl
    .split(";")
    .map((s) => s.trim())
    .filter(Boolean)) {
    await ch(stmt);
  }
}

const databases = new Set<string>();
async function dropDatabase(db: string): Promise<void> {
  if (db === "weir") throw new Error("refusing to drop the weir database");
  await ch(`DROP DATABASE IF EXISTS ${db}`).catch((e) => say(`cleanup of ${db}: ${e}`));
  databases.delete(db);
}

// ---- Kafka ----------------------------------------------------------------------------------------------

const kafka = new Kafka({ clientId: "weir-bench-health", brokers: BROKERS, logLevel: logLevel.NOTHING });
const admin = kafka.admin();
await admin.connect();
const toDelete = new Set<string>();
const groupsToDelete = new Set<string>();

const RETAIN_FOREVER = [{ name: "retention.ms", value: "-1" }];

async function createTopic(topic: string, partitions: number): Promise<void> {
  await admin.createTopics({
    waitForLeaders: true,
    // The loaders write fixed 2026-11 event times as the records' timestamps: without retention.ms -1 the
    // broker's retention check deletes a run's records while it reads them.
    topics: [{ topic, numPartitions: partitions, replicationFactor: 1, configEntries: RETAIN_FOREVER }],
  });
  toDelete.add(topic);
}

async function topicRecords(topic: string): Promise<number[]> {
  const offs = await admin.fetchTopicOffsets(topic);
  return offs.sort((a, b) => a.partition - b.partition).map((o) => Number(o.high) - Number(o.low));
}

/** Internal topics (named after the app ids), output topics and consumer groups of the runs so far. */
async function cleanup(): Promise<void> {
  const existing = new Set(await admin.listTopics());
  for (const t of existing) {
    for (const g of groupsToDelete) if (t.startsWith(`${g}-`) || t.startsWith(`${g}.`)) toDelete.add(t);
  }
  const topics = [...toDelete].filter((t) => existing.has(t));
  if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 60_000 }).catch((e) => say(`cleanup: ${e}`));
  const groups = new Set((await admin.listGroups()).groups.map((g) => g.groupId));
  const gone = [...groupsToDelete].filter((g) => groups.has(g));
  if (gone.length > 0) await admin.deleteGroups(gone).catch((e) => say(`cleanup of groups: ${e}`));
  toDelete.clear();
  groupsToDelete.clear();
}

/** One record per service, keyed by service, `CLOSING_AFTER_MS` after `lastTs`: every window closes. */
async function produceClosingRecords(topic: string, lastTs: number): Promise<void> {
  const codec = codecFor("AccessLog");
  const ts = lastTs + CLOSING_AFTER_MS;
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    await producer.send({
      topic,
      acks: -1,
      messages: SERVICES.map((service, i) => {
        const e = ENDPOINTS.find((x) => x.service === service);
        return {
          key: service,
          timestamp: String(ts),
          value: codec.encode({
            id: `closing-${i}`,
            ts,
            app: "live",
            system: PLATFORM_SERVICES.find((x) => x.name === service)?.system ?? "misc",
            service,
            endpoint: e?.path ?? "/",
            method: e?.method ?? "GET",
            status: 200,
            latencyUs: 1000,
            bytesIn: 0,
            bytesOut: 0,
            errorCode: null,
            traceId: "0".repeat(32),
            caller: null,
            uid: null,
            deviceId: null,
            clientIp: "10.0.0.1",
            roomId: null,
            userAgent: null,
            urlQuery: null,
            referrer: null,
            host: `${service}-closing`,
            source: null,
          }),
        };
      }),
    });
  } finally {
    await producer.disconnect();
  }
}

// ---- processes ----------------------------------------------------------------------------------------

async function load(topic: string, records: number, rate?: number): Promise<Record<string, number>> {
  const args = ["--import", "tsx", "bench/stream/load-access.ts", "--topic", topic, "--records", String(records)];
  args.push("--partitions", "6", "--keys", "64", "--key", "service");
  if (rate) args.push("--rate", String(rate), "--keep-topic");
  return runJson(`load-${topic}-${uid()}`, process.execPath, args, 1_800_000);
}

/** User + system CPU of a process and its descendants, in ms. */

/** Busy CPU time of the whole machine so far (ms, all cores). */
function machineBusyMs(): number {
  const f = (readFileSync("/proc/stat", "utf8").split("\n")[0] as string).trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return ((total - (f[3] as number) - (f[4] as number)) * 1000) / CLK_TCK;
}

/** Share of the machine's CPU time that was idle over `ms`. */
async function idleShare(ms: number): Promise<number> {
  const read = () =>
    (readFileSync("/proc/stat", "utf8").split("\n")[0] as string).trim().split(/\s+/).slice(1).map(Number);
  const a = read();
  await sleep(ms);
  const b = read();
  const d = b.map((x, i) => x - (a[i] as number));
  const total = d.slice(0, 8).reduce((x, y) => x + y, 0);
  return total > 0 ? ((d[3] as number) + (d[4] as number)) / total : Number.NaN;
}

/** This process and its ancestors (a `timeout` or a shell that started the benchmark). */
const ANCESTORS = ancestors();

/** Whether `pid` is this process, one of its ancestors or one of its descendants. */
function isMine(pid: number): boolean {
  if (ANCESTORS.has(pid)) return true;
  for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
    if (p === process.pid) return true;
    try {
      p = Number(statFields(p)[1]);
    } catch {
      return false;
    }
  }
  return false;
}

/** Other processes that compete for the 2 cores: workers, tests, the simulator (not the stack's servers). */
function heavyOthers(): string[] {
  const out: string[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d) || isMine(Number(d))) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, "utf8").replace(/\0/g, " ").trim();
      if (!/\bnode\b/.test(cmd) || !/weir\.mjs (run|simulate|ship)|--test\b|test\/run\.ts|bench\//.test(cmd)) continue;
      out.push(`${d} ${cmd.slice(0, 120)}`);
    } catch {
      // gone
    }
  }
  return out;
}

let waitedMs = 0;
const seenOthers = new Set<string>();
/** Waits (up to --max-wait-minutes in all) while another heavy node process runs. */
async function waitQuiet(what: string): Promise<void> {
  let others = heavyOthers();
  if (others.length === 0) return;
  say(`waiting before ${what}: other heavy processes:\n  ${others.join("\n  ")}`);
  const t0 = Date.now();
  while (others.length > 0 && waitedMs + (Date.now() - t0) < MAX_WAIT_MS) {
    await sleep(5000);
    others = heavyOthers();
  }
  waitedMs += Date.now() - t0;
  for (const o of others) seenOthers.add(o.replace(/^\d+ /, ""));
  if (others.length > 0) say(`still busy after waiting ${((Date.now() - t0) / 1000).toFixed(0)} s; running anyway`);
}

// ---- weir workers -------------------------------------------------------------------------------------

interface Scrape {
  /** Records of the input topic processed (tasks 0_*, the sub-topology that reads it). */
  input: number;
  recordsOut: number;
}

async function scrape(port: number, outTarget: string | null): Promise<Scrape | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2000) });
    const text = await res.text();
    const s: Scrape = { input: 0, recordsOut: 0 };
    for (const line of text.split("\n")) {
      if (line.startsWith("#") || line === "") continue;
      const m = /^(\w+)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
      if (!m) continue;
      const labels = new Map<string, string>();
      for (const l of (m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels.set(l[1] as string, l[2] as string);
      const v = Number(m[3]);
      if (m[1] === "weir_stream_records_in_total" && labels.get("task")?.startsWith("0_")) s.input += v;
      else if (m[1] === "weir_stream_records_out_total" && outTarget !== null && labels.get("target") === outTarget) {
        s.recordsOut += v;
      }
    }
    return s;
  } catch {
    return null;
  }
}

interface Worker {
  proc: Proc;
  port: number;
}

async function startHealth(app: string, input: string, db: string, cpuProfDir?: string): Promise<Worker> {
  const port = await freePort();
  const dataDir = join(LOGS, `${app}-data`);
  mkdirSync(dataDir, { recursive: true });
  const node = cpuProfDir ? ["--cpu-prof", "--cpu-prof-dir", cpuProfDir] : [];
  const proc = start(
    app,
    process.execPath,
    [
      ...node,
      "cli/weir.mjs",
      "run",
      "health",
      "--metrics-port",
      String(port),
      "--instance",
      "h1",
      "--data-dir",
      dataDir,
    ],
    { WEIR_HEALTH_APP_ID: app, WEIR_HEALTH_INPUT: input, WEIR_HEALTH_DATABASE: db },
  );
  return { proc, port };
}

async function startPlain(app: string, input: string, outTopic: string): Promise<Worker> {
  const port = await freePort();
  const proc = start(
    app,
    process.execPath,
    ["cli/weir.mjs", "run", "bench/stream/topology.ts", "--metrics-port", String(port), "--instance", "p1"],
    { WEIR_BENCH_APP: app, WEIR_BENCH_IN: input, WEIR_BENCH_OUT: outTopic, WEIR_BENCH_DLQ: `${app}.dlq` },
  );
  return { proc, port };
}

async function stopWorker(w: Worker): Promise<void> {
  if (w.proc.exitCode !== undefined) return;
  w.proc.child.kill("SIGTERM");
  const code = await Promise.race([w.proc.exited, sleep(30_000).then(() => "timeout" as const)]);
  if (code === "timeout") {
    say(`WARNING: ${w.proc.name} did not stop within 30 s of SIGTERM (killed); log ${w.proc.log}`);
    w.proc.child.kill("SIGKILL");
    await w.proc.exited;
  } else if (code !== 0) say(`WARNING: ${w.proc.name} exited with ${code} after SIGTERM; log ${w.proc.log}`);
}

interface Span {
  records: number;
  elapsedMs: number;
  recordsPerSec: number;
  cpuMs: number;
  peakRssKiB: number;
  startupMs: number;
  /** Busy CPU of the whole machine over the span, in cores (the worker, Kafka, ClickHouse, anything else). */
  machineCores: number;
  /** From the worker's spawn: when the span started and ended (ms), to cut its CPU profile. */
  fromSpawnMs: [number, number];
  recordsOut: number;
  others: string[];
}

/** Polls a worker's /metrics every 100 ms until it has read N records of the input topic. */
async function measure(w: Worker, label: string, outTarget: string | null): Promise<Span> {
  const pid = w.proc.child.pid as number;
  type Snap = { at: number; cpu: number; machine: number; s: Scrape };
  let first: Snap | null = null;
  let last: Snap | null = null;
  let lastSum = -1;
  let lastChange = performance.now();
  const others = new Set(heavyOthers());
  while (!last) {
    await sleep(100);
    if (w.proc.exitCode !== undefined) {
      throw new Error(`${label} exited (${w.proc.exitCode}) during the run; log ${w.proc.log}:\n${tail(w.proc)}`);
    }
    const s = await scrape(w.port, outTarget);
    const now = performance.now();
    if (s === null) {
      if (now - w.proc.startedAt > 120_000) throw new Error(`${label} did not serve /metrics within 120 s`);
      continue;
    }
    if (s.input !== lastSum) {
      lastSum = s.input;
      lastChange = now;
    } else if (now - lastChange > 120_000) {
      throw new Error(`${label} made no progress for 120 s at ${s.input} of ${RECORDS} records; log ${w.proc.log}`);
    }
    if (!first && s.input > 0) first = { at: now, cpu: cpuMsOf(pid), machine: machineBusyMs(), s };
    if (s.input >= RECORDS) last = { at: now, cpu: cpuMsOf(pid), machine: machineBusyMs(), s };
  }
  for (const o of heavyOthers()) others.add(o);
  const f = first as Snap;
  const elapsedMs = last.at - f.at;
  const records = last.s.input - f.s.input;
  return {
    records,
    elapsedMs,
    recordsPerSec: records / (elapsedMs / 1000),
    cpuMs: last.cpu - f.cpu,
    peakRssKiB: peakRssKiB(pid),
    startupMs: f.at - w.proc.startedAt,
    machineCores: (last.machine - f.machine) / elapsedMs,
    fromSpawnMs: [f.at - w.proc.startedAt, last.at - w.proc.startedAt],
    recordsOut: last.s.recordsOut,
    others: [...others].map((o) => o.replace(/^\d+ /, "")),
  };
}

// ---- the throughput runs ---------------------------------------------------------------------------------

interface LevelCheck {
  windowMs: number;
  level: string;
  rows: number;
  requests: number;
}

interface HealthSample extends Span {
  /** From the N-th record read to all N requests in final 1 s APP rows in ClickHouse (ms); NaN: never. */
  drainMs: number;
  appRequests: number;
  levels: LevelCheck[];
  alerts: number;
  alertsByRule: string;
  profile?: ProfileSummary;
}

async function levelCheck(db: string): Promise<LevelCheck[]> {
  const text = await ch(
    `SELECT window_ms, toString(level), count(), sum(requests) FROM ${db}.health_metrics FINAL WHERE final = 1 GROUP BY window_ms, level ORDER BY window_ms, level FORMAT TabSeparated`,
  );
  return text
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const [w, level, rows, req] = l.split("\t");
      return { windowMs: Number(w), level: level as string, rows: Number(rows), requests: Number(req) };
    });
}

async function appFinalRequests(db: string): Promise<number> {
  const t = await ch(
    `SELECT sum(requests) FROM ${db}.health_metrics FINAL WHERE window_ms = 1000 AND level = 'APP' AND final = 1 AND window_start < toDateTime(${Math.floor((EPOCH + CLOSING_AFTER_MS) / 1000)})`,
  );
  return Number(t.trim());
}

async function runHealth(label: string, cpuProfDir?: string): Promise<HealthSample> {
  const app = `bench-health-${uid()}`;
  const db = `bench_health_${uid()}`;
  groupsToDelete.add(app);
  databases.add(db);
  await createDatabase(db);
  const w = await startHealth(app, TOPIC, db, cpuProfDir);
  try {
    const span = await measure(w, label, null);
    // The work check: all N requests in final 1 s APP rows (the closing records' own windows excluded).
    const t0 = performance.now();
    let appRequests = 0;
    let drainMs = Number.NaN;
    while (performance.now() - t0 < 90_000) {
      appRequests = await appFinalRequests(db);
      if (appRequests >= RECORDS) {
        drainMs = performance.now() - t0;
        break;
      }
      if (w.proc.exitCode !== undefined) throw new Error(`${label} exited (${w.proc.exitCode}):\n${tail(w.proc)}`);
      await sleep(250);
    }
    // Give the roll-ups and the alerts' last commit a moment before counting them.
    await sleep(2000);
    const levels = await levelCheck(db);
    const alerts = Number((await ch(`SELECT count() FROM ${db}.health_alerts FINAL`)).trim());
    const alertsByRule = (
      await ch(
        `SELECT rule, toString(level), toString(state), count() FROM ${db}.health_alerts FINAL GROUP BY rule, level, state ORDER BY rule, level, state FORMAT TabSeparated`,
      )
    )
      .trim()
      .split("\n")
      .filter(Boolean)
      .map((l) => {
        const [rule, level, state, n] = l.split("\t");
        return `${rule} ${level} ${state} ${n}`;
      })
      .join(", ");
    await stopWorker(w);
    let profile: ProfileSummary | undefined;
    if (cpuProfDir) {
      // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: thread 0 is the main thread (tsx's loader hooks
      // run in a thread of their own and write a second profile).
      const file = readdirSync(cpuProfDir)
        .filter((f) => /\.\d+\.0\.\d+\.cpuprofile$/.test(f))
        .sort()
        .at(-1);
      if (file) profile = summarizeProfile(join(cpuProfDir, file), span.fromSpawnMs[0], span.fromSpawnMs[1]);
      else say(`WARNING: no .cpuprofile in ${cpuProfDir}`);
    }
    return { ...span, drainMs, appRequests, levels, alerts, alertsByRule, ...(profile ? { profile } : {}) };
  } finally {
    await stopWorker(w);
    await dropDatabase(db);
  }
}

async function runPlain(label: string): Promise<Span> {
  const app = `bench-plain-${uid()}`;
  const outTopic = `${app}.out`;
  groupsToDelete.add(app);
  await createTopic(outTopic, 6);
  await createTopic(`${app}.dlq`, 1);
  const w = await startPlain(app, TOPIC, outTopic);
  try {
    const span = await measure(w, label, outTopic);
    return span;
  } finally {
    await stopWorker(w);
  }
}

// ---- the latency run --------------------------------------------------------------------------------------

/** One service's 1 s window: when (our clock) each kind of row was first returned, and its emitted_at. */
interface SecondSeen {
  level: string;
  service: string;
  end: number;
  /** Any row, early or final: may be a partial one, emitted while the second was still running. */
  anySeen?: number;
  /** The first row (early or final) emitted at or after the window's end: the whole second so far. */
  afterEndSeen?: number;
  afterEndEmitted?: number;
  finalSeen?: number;
  finalEmitted?: number;
}

interface Latency {
  any: number[];
  first: number[];
  firstEmitted: number[];
  final: number[];
  finalEmitted: number[];
  /** Whole seconds: all services' final rows visible. */
  secondFinal: number[];
  /** The APP level: no early rows (it is computed from final service rows), so first = final. */
  appFirst: number[];
  appFinal: number[];
  appFinalEmitted: number[];
  /** APP seconds of the first 10 s, while an empty partition is not yet idle. */
  appStartup: number[];
  expectedApp: number;
  expectedFirst: number;
  expectedFinal: number;
  workerCores: number;
  machineCores: number;
  polls: number;
  pollMs: number;
  firstTs: number;
  lastTs: number;
  others: string[];
}

async function latencyRun(): Promise<Latency> {
  const app = `bench-health-live-${uid()}`;
  const db = `bench_health_live_${uid()}`;
  const input = `${app}.in`;
  groupsToDelete.add(app);
  toDelete.add(input);
  databases.add(db);
  await createDatabase(db);
  await load(input, 0);
  const w = await startHealth(app, input, db);
  const seen = new Map<string, SecondSeen>();
  let stop = false;
  let polls = 0;
  let pollTime = 0;
  const since = Math.floor(Date.now() / 1000) - 5;
  const poller = (async () => {
    while (!stop) {
      const t0 = Date.now();
      const text = await ch(
        `SELECT toUInt32(window_start) AS s, toString(level), service, final, countIf(emitted_at >= (toUInt64(s) + 1) * 1000), minIf(emitted_at, emitted_at >= (toUInt64(s) + 1) * 1000) FROM ${db}.health_metrics WHERE window_ms = 1000 AND level IN ('SERVICE', 'APP') AND window_start >= toDateTime(${since}) GROUP BY window_start, level, service, final FORMAT TabSeparated`,
      );
      const at = Date.now();
      polls++;
      pollTime += at - t0;
      for (const line of text.trim().split("\n")) {
        if (!line) continue;
        const [s, level, service, final, afterEnd, afterEndEmitted] = line.split("\t");
        const id = `${s}|${level}|${service}`;
        let x = seen.get(id);
        if (!x) {
          x = { level: level as string, service: service as string, end: (Number(s) + 1) * 1000 };
          seen.set(id, x);
        }
        x.anySeen ??= at;
        if (Number(afterEnd) > 0 && x.afterEndSeen === undefined) {
          x.afterEndSeen = at;
          x.afterEndEmitted = Number(afterEndEmitted);
        }
        if (final === "1" && x.finalSeen === undefined) {
          x.finalSeen = at;
          x.finalEmitted = Number(afterEndEmitted);
        }
      }
      await sleep(Math.max(0, 100 - (Date.now() - t0)));
    }
  })();
  try {
    for (const until = Date.now() + 120_000; ; ) {
      const h = await fetch(`http://127.0.0.1:${w.port}/health`).catch(() => null);
      if (h?.status === 200 && ((await h.json()) as { tasks: string[] }).tasks.length >= 6) break;
      if (w.proc.exitCode !== undefined || Date.now() > until) {
        throw new Error(`the health worker did not get healthy:\n${tail(w.proc)}`);
      }
      await sleep(100);
    }
    await sleep(2000);
    const others = new Set(heavyOthers());
    const pid = w.proc.child.pid as number;
    const cpu0 = cpuMsOf(pid);
    const m0 = machineBusyMs();
    const t0 = performance.now();
    const l = await load(input, RATE * LATENCY_SECONDS, RATE);
    const span = performance.now() - t0;
    const workerCores = (cpuMsOf(pid) - cpu0) / span;
    const machineCores = (machineBusyMs() - m0) / span;
    // The last closed seconds' final rows: end + outOfOrderness + grace, then a commit.
    await sleep(12_000);
    for (const o of heavyOthers()) others.add(o);
    if (w.proc.exitCode !== undefined) throw new Error(`the health worker exited:\n${tail(w.proc)}`);
    stop = true;
    await poller;
    const firstTs = l.firstTs as number;
    const lastTs = l.lastTs as number;
    const xs = [...seen.values()].filter((x) => x.level === "SERVICE");
    const apps = [...seen.values()].filter((x) => x.level === "APP");
    // A second's early row needs the next second's first record; its final row needs event time
    // (the partition's newest record) past end + 1 s + 4 s.
    const early = xs.filter((x) => x.end - 1000 >= firstTs && x.end <= lastTs - 1000);
    const closed = xs.filter((x) => x.end - 1000 >= firstTs && x.end + 5000 <= lastTs - 1000);
    // The app's seconds that event time closed, after the first 10 s: a partition that never gets a
    // service holds the system and app levels back until it counts as idle (idleTimeout).
    const appClosed = apps.filter((x) => x.end - 11_000 >= firstTs && x.end + 5000 <= lastTs - 1000);
    const appStartup = apps.filter((x) => x.end - 1000 >= firstTs && x.end - 11_000 < firstTs);
    const sorted = (a: number[]) => a.sort((p, q) => p - q);
    const delays = (ys: SecondSeen[], f: (x: SecondSeen) => number | undefined) =>
      sorted(ys.flatMap((x) => (f(x) === undefined ? [] : [(f(x) as number) - x.end])));
    const bySecond = new Map<number, number>();
    const complete = new Map<number, boolean>();
    for (const x of closed) {
      bySecond.set(x.end, Math.max(bySecond.get(x.end) ?? 0, x.finalSeen ?? Number.POSITIVE_INFINITY));
      complete.set(x.end, (complete.get(x.end) ?? true) && x.finalSeen !== undefined);
    }
    return {
      any: delays(early, (x) => x.anySeen),
      first: delays(early, (x) => x.afterEndSeen),
      firstEmitted: delays(early, (x) => x.afterEndEmitted),
      final: delays(closed, (x) => x.finalSeen),
      finalEmitted: delays(closed, (x) => x.finalEmitted),
      secondFinal: sorted([...bySecond].filter(([end]) => complete.get(end)).map(([end, at]) => at - end)),
      appFirst: delays(appClosed, (x) => x.anySeen),
      appFinal: delays(appClosed, (x) => x.finalSeen),
      appFinalEmitted: delays(appClosed, (x) => x.finalEmitted),
      appStartup: delays(appStartup, (x) => x.finalSeen),
      expectedApp: appClosed.length,
      expectedFirst: early.length,
      expectedFinal: closed.length,
      workerCores,
      machineCores,
      polls,
      pollMs: pollTime / Math.max(1, polls),
      firstTs,
      lastTs,
      others: [...others].map((o) => o.replace(/^\d+ /, "")),
    };
  } finally {
    stop = true;
    await poller.catch(() => {});
    await stopWorker(w);
    await dropDatabase(db);
  }
}

// ---- the run ----------------------------------------------------------------------------------------------

const began = new Date();
const machine = `${cpus().length} × ${cpus()[0]?.model.trim()}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}`;
const chVersion = (await ch("SELECT version()")).trim();
say(`logs in ${LOGS}`);
await waitQuiet("the start");
const idleAtStart = await idleShare(3000);
const loadAtStart = loadavg()[0] as number;
say(`load average ${loadAtStart.toFixed(2)}; CPU idle over 3 s: ${(idleAtStart * 100).toFixed(0)}%`);

let loaded: Record<string, number> | null = null;
if (!SKIP_LOAD) {
  say(`loading ${RECORDS.toLocaleString("en")} records into ${TOPIC}, keyed by service`);
  loaded = await load(TOPIC, RECORDS);
  await produceClosingRecords(TOPIC, loaded.lastTs as number);
  say(`loaded in ${((loaded.elapsedMs as number) / 1000).toFixed(1)} s`);
}
const perPartition = await topicRecords(TOPIC);
const inTopic = perPartition.reduce((a, b) => a + b, 0);
if (inTopic !== RECORDS + SERVICES.length) {
  throw new Error(
    `${TOPIC} holds ${inTopic} records, not ${RECORDS} + ${SERVICES.length} closing ones: drop --skip-load`,
  );
}

const HEALTH = "weir run health";
const PLAIN = "weir run bench/stream/topology.ts (plain windowing)";
const healthRuns: HealthSample[] = [];
const plainRuns: Span[] = [];
const lat: Latency[] = [];
let profiled: HealthSample | null = null;

try {
  for (let run = 1; run <= RUNS; run++) {
    const order = run % 2 === 1 ? ["health", "plain"] : ["plain", "health"];
    for (const which of order) {
      await waitQuiet(`run ${run} (${which})`);
      if (which === "health") {
        const s = await runHealth(`health run ${run}`);
        healthRuns.push(s);
        say(
          `run ${run}: ${HEALTH}: ${fmt(s.recordsPerSec)} events/s, ${(s.cpuMs / s.elapsedMs).toFixed(2)} cores, ` +
            `${fmt(s.records / (s.cpuMs / 1000))} events/CPU-s, peak RSS ${fmt(s.peakRssKiB / 1024)} MiB, machine ` +
            `${s.machineCores.toFixed(2)} cores; APP final requests ${fmt(s.appRequests)} of ${fmt(RECORDS)} ` +
            `${fmt(s.drainMs)} ms after the N-th record; ${s.alerts} alert rows`,
        );
      } else {
        const s = await runPlain(`plain run ${run}`);
        plainRuns.push(s);
        say(
          `run ${run}: ${PLAIN}: ${fmt(s.recordsPerSec)} events/s, ${(s.cpuMs / s.elapsedMs).toFixed(2)} cores, ` +
            `${fmt(s.records / (s.cpuMs / 1000))} events/CPU-s, peak RSS ${fmt(s.peakRssKiB / 1024)} MiB, machine ` +
            `${s.machineCores.toFixed(2)} cores`,
        );
      }
      await cleanup();
    }
  }
  if (!SKIP_PROFILE) {
    await waitQuiet("the profiled run");
    const dir = join(LOGS, "prof");
    mkdirSync(dir, { recursive: true });
    profiled = await runHealth("profiled health run", dir);
    say(
      `profiled run: ${fmt(profiled.recordsPerSec)} events/s, ${(profiled.cpuMs / profiled.elapsedMs).toFixed(2)} cores (profile in ${dir})`,
    );
    await cleanup();
  }
  if (!SKIP_LATENCY) {
    for (let run = 1; run <= LATENCY_RUNS; run++) {
      await waitQuiet(`latency run ${run}`);
      const r = await latencyRun();
      lat.push(r);
      say(
        `latency run ${run}: first visible p50 ${fmt(percentile(r.first, 0.5))} p99 ${fmt(percentile(r.first, 0.99))} ms ` +
          `(${r.first.length}/${r.expectedFirst}); final p50 ${fmt(percentile(r.final, 0.5))} p99 ` +
          `${fmt(percentile(r.final, 0.99))} ms (${r.final.length}/${r.expectedFinal}); worker ${r.workerCores.toFixed(2)} cores`,
      );
      await cleanup();
    }
  }
} finally {
  await cleanup();
  if (!KEEP_TOPIC && !SKIP_LOAD) await admin.deleteTopics({ topics: [TOPIC], timeout: 60_000 }).catch(() => {});
  for (const db of [...databases]) await dropDatabase(db);
  await admin.disconnect();
}
const idleAtEnd = await idleShare(3000);

// ---- the report ---------------------------------------------------------------------------------------------

type S = Span;
const rate = (s: S) => s.recordsPerSec;
const perCore = (s: S) => s.records / (s.cpuMs / 1000);
const cores = (s: S) => s.cpuMs / s.elapsedMs;
const M = (xs: S[], f: (s: S) => number) => median(xs.map(f));
const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
const met = (ok: boolean) => (ok ? "met" : "**not met**");
function row(name: string, xs: S[], extra: string): string {
  if (xs.length === 0) return "";
  const rates = xs.map(rate);
  return `| ${name} | **${fmt(M(xs, rate))}** (${k(Math.min(...rates))}–${k(Math.max(...rates))}) | ${M(xs, cores).toFixed(2)} | **${fmt(M(xs, perCore))}** | ${fmt(M(xs, (s) => s.peakRssKiB) / 1024)} | ${fmt(M(xs, (s) => s.startupMs))} | ${M(xs, (s) => s.machineCores).toFixed(2)} | ${extra} |`;
}
const healthPerCore = M(healthRuns, perCore);
const plainPerCore = M(plainRuns, perCore);
const runsOf = (xs: S[]) =>
  xs
    .map(
      (s) =>
        `${k(s.recordsPerSec)}/${cores(s).toFixed(2)}c/${k(perCore(s))} per CPU-s (machine ${s.machineCores.toFixed(2)}c` +
        `${s.others.length > 0 ? `; shared with ${s.others.length} other node processes` : ""})`,
    )
    .join(", ");
const skew = perPartition.map((n, p) => `p${p} ${pct(n / inTopic)}`).join(", ");
const checkRun = healthRuns[0];
const levelTable = checkRun
  ? [
      "| window | level | final rows | sum(requests) |",
      "|---|---|---|---|",
      ...checkRun.levels.map(
        (l) =>
          `| ${l.windowMs === 1000 ? "1 s" : l.windowMs === 60_000 ? "1 min" : l.windowMs === 3_600_000 ? "1 h" : `${l.windowMs} ms`} | ${l.level} | ${fmt(l.rows)} | ${fmt(l.requests)} |`,
      ),
    ].join("\n")
  : "(no health run)";
const latAll = (f: (l: Latency) => number[]) => median(lat.map((l) => percentile(f(l), 0.5)));
const latP99 = (f: (l: Latency) => number[]) => median(lat.map((l) => percentile(f(l), 0.99)));
const latMax = (f: (l: Latency) => number[]) => median(lat.map((l) => f(l).at(-1) ?? Number.NaN));
const latRow = (name: string, f: (l: Latency) => number[], n: (l: Latency) => string) =>
  `| ${name} | **${fmt(latAll(f))}** | **${fmt(latP99(f))}** | ${fmt(latMax(f))} | ${lat.map(n).join(", ")} |`;
const others = new Set<string>(seenOthers);
for (const s of [...healthRuns, ...plainRuns, ...lat]) for (const o of s.others) others.add(o);
const firstP99 = latP99((l) => l.first);
const finalP99 = latP99((l) => l.final);
const prof = profiled?.profile;
const fnIs = (name: string, where: string) => (x: SelfTime) => x.name === name && x.where.startsWith(where);
const fileIs = (where: string) => (x: SelfTime) => x.name === where && x.where === where;
const profileNote = prof
  ? `Profiled run (\`node --cpu-prof\`, not in the table above): ${fmt((profiled as HealthSample).recordsPerSec)} events/s,
${cores(profiled as HealthSample).toFixed(2)} cores. Over its measured span (first to N-th record) the main thread was busy
${fmt(prof.busyMs)} ms and idle ${fmt(prof.idleMs)} ms. Self time, as shares of the busy time (tsx does not keep the
TypeScript's line numbers, so project functions are named by file only):

${profileTables(prof, 10)}

Total time (the part and everything it calls; each sample counted once per part):

${totalsTable(prof, [
  { label: "Avro decode of the values (`schemas/codec.ts` decode, avsc)", match: fnIs("decode", "schemas/codec.ts") },
  { label: "&nbsp;&nbsp;of which string fields (avsc `StringType._read`)", match: fnIs("StringType._read", "avsc/") },
  {
    label: "kafkajs: decoding fetch responses (`decodeMessages`)",
    match: fnIs("decodeMessages", "kafkajs/src/protocol/requests/fetch/v4"),
  },
  {
    label: "kafkajs: offsets as Long from strings (`Long.fromValue`)",
    match: fnIs("fromValue", "kafkajs/src/utils/long.js"),
  },
  {
    label: "the worker calling kafkajs `resolveOffset` per message",
    match: fnIs("resolveOffset", "kafkajs/src/consumer/runner.js"),
  },
  {
    label: "the worker calling kafkajs `isStale` per message",
    match: fnIs("isStale", "kafkajs/src/consumer/runner.js"),
  },
  {
    label: "window aggregation (`stream/windows/window-aggregate.ts`)",
    match: fileIs("stream/windows/window-aggregate.ts"),
  },
  { label: "the health aggregators (`pipelines/health/rows.ts`)", match: fileIs("pipelines/health/rows.ts") },
  {
    label: "&nbsp;&nbsp;of which the aggregators' `add` (events into endpoints, rows into roll-ups)",
    match: fnIs("add", "pipelines/health/rows.ts"),
  },
  { label: "DDSketch (`@datadog/sketches-js`)", match: fileIs("@datadog/sketches-js (package)") },
  { label: "alerts (`pipelines/health/alerts.ts`)", match: fileIs("pipelines/health/alerts.ts") },
  { label: "the ClickHouse sink (`sinks/clickhouse/sink.ts`)", match: fileIs("sinks/clickhouse/sink.ts") },
  { label: "the ClickHouse client (`@clickhouse/client`)", match: fileIs("@clickhouse/client (package)") },
  { label: "state store (`stream/state/store.ts`)", match: fileIs("stream/state/store.ts") },
  { label: "watermarks (`stream/time/watermark.ts`)", match: fileIs("stream/time/watermark.ts") },
  { label: "garbage collector", match: fnIs("(garbage collector)", "(V8") },
])}`
  : "(not profiled: --skip-profile)";
const share = (match: (x: SelfTime) => boolean) => {
  const hit = prof ? [...prof.functionsTotal, ...prof.modulesTotal].find(match) : undefined;
  return hit ? `${(hit.share * 100).toFixed(hit.share < 0.1 ? 1 : 0)}%` : "–";
};
const lastLat = lat.at(-1);
const appP99 = latP99((l) => l.appFinal);
const rowsPerEventSecond = checkRun
  ? checkRun.levels.filter((l) => l.windowMs === 1000).reduce((a, l) => a + l.rows, 0) / (RECORDS / 100_000)
  : Number.NaN;
const liveUsPerEvent = median(lat.map((l) => (l.workerCores * 1e6) / RATE));
const backlogUsPerEvent = 1e6 / healthPerCore;
const everyLatency = lat
  .map(
    (l, i) =>
      `run ${i + 1}: ${fmt(percentile(l.first, 0.5))} / ${fmt(percentile(l.first, 0.99))} first visible, ` +
      `${fmt(percentile(l.final, 0.5))} / ${fmt(percentile(l.final, 0.99))} final, ` +
      `${fmt(percentile(l.appFinal, 0.5))} / ${fmt(percentile(l.appFinal, 0.99))} APP`,
  )
  .join("; ");

const md = `# Health pipeline: throughput and ingest-to-queryable latency

Command: \`${COMMAND}\`
Date: ${began.toISOString().slice(0, 16).replace("T", " ")} UTC; machine: ${machine}; Kafka broker and ClickHouse
${chVersion} on the same machine (the broker, ClickHouse, the loader, the poller and the worker share the cores).
Total time ${((Date.now() - began.getTime()) / 60000).toFixed(1)} min. The machine was ${pct(idleAtStart)} idle in the 3 s before the
first run (load average ${loadAtStart.toFixed(2)}), ${pct(idleAtEnd)} in the 3 s after the last. The benchmark waited
${(waitedMs / 1000).toFixed(0)} s in all for other heavy node processes to end before its runs. ${
  others.size > 0
    ? `Seen during the runs (besides the stack's servers): ${[...others].map((o) => `\`${o.replace(/`/g, "")}\``).join(", ")}.`
    : "No other heavy node process (worker, test, simulator) was seen during the runs."
} The "machine" column is the whole machine's busy CPU over each span (worker + broker + ClickHouse +
anything else), so a value well above the worker's own CPU plus ~0.3 (broker and ClickHouse serving it)
means the run shared the cores.

Workload: ${fmt(RECORDS)} AccessLog records (Avro single-object encoding) in \`${TOPIC}\`, 6 partitions, keyed by
\`service\` (${SERVICES.length} services, 64 endpoints, Zipf 0.8 over endpoints; murmur2 puts them as ${skew}), ${
  loaded
    ? `loaded by \`bench/stream/load-access.ts --key service\` in ${((loaded.elapsedMs as number) / 1000).toFixed(0)} s`
    : "loaded earlier (--skip-load)"
}; event time advances 1 ms per 100 records (${(RECORDS / 100_000).toFixed(0)} s of event time, ~100,000 events per second
of event time). After them, one closing record per service ${CLOSING_AFTER_MS / 60_000} min of event time later, so that
every 1 s window of the N records (and its 1 min and 1 h roll-ups) closes and is written final.

## Throughput on a backlog

Median of ${RUNS} runs of each, alternating which goes first. Elapsed time is from the first record of the input
topic processed to the ${fmt(RECORDS)}-th (\`weir_stream_records_in_total\` of tasks \`0_*\`, polled every 100 ms; the
health pipeline's repartition tasks \`1_*\` read its service rows, not events, and are not counted), CPU is the
worker process over that span, events per CPU-second = events / CPU time. Neither includes start-up (last but
two column) nor the health pipeline's writes still in flight at the N-th record (last column).

| configuration | events/s (min–max) | CPU (cores) | events per CPU-second | peak RSS (MiB) | startup (ms) | machine (cores) | also |
|---|---|---|---|---|---|---|---|
${row(HEALTH, healthRuns, `all N requests in ClickHouse (final 1 s APP rows) ${fmt(median(healthRuns.map((s) => s.drainMs)))} ms after the N-th record`)}
${row(PLAIN, plainRuns, `${fmt(M(plainRuns, (s) => s.recordsOut))} windows emitted by the N-th record`)}

The health pipeline costs **${(plainPerCore / healthPerCore).toFixed(2)}x** the CPU per event of plain windowing
(${fmt(healthPerCore)} vs ${fmt(plainPerCore)} events per CPU-second; wall clock ${(M(healthRuns, rate) / M(plainRuns, rate)).toFixed(2)}x).

Every run (events/s / worker cores / events per CPU-s): ${HEALTH}: ${runsOf(healthRuns)}; ${PLAIN}: ${runsOf(plainRuns)}.

The work was real. Health run 1, \`SELECT window_ms, level, count(), sum(requests) FROM <db>.health_metrics FINAL
WHERE final = 1 GROUP BY window_ms, level\` (the closing records' own windows are still open, so not final: every
level's 1 s sum should be N exactly, and so should the 1 min and 1 h ones):

${levelTable}

Final 1 s APP requests per health run (windows before the closing records): ${healthRuns.map((s) => `${fmt(s.appRequests)}`).join(", ")} of ${fmt(RECORDS)};
alert rows per run: ${healthRuns.map((s) => s.alerts).join(", ")}.

## Ingest-to-queryable latency of a 1 s window

${
  lat.length === 0 || !lastLat
    ? "(skipped: --skip-latency)"
    : `A health worker, started and idle on a fresh topic (6 partitions, keyed by service) with a scratch database;
then the loader's live mode: ${fmt(RATE)} records/s for ${LATENCY_SECONDS} s, \`ts\` = the wall clock when the record is
made. ClickHouse is polled every 100 ms (a query took ${lastLat.pollMs.toFixed(0)} ms on average, ${fmt(lastLat.polls)} polls in the last run):
\`SELECT window_start AS s, level, service, final, countIf(emitted_at >= (s + 1) * 1000), minIf(emitted_at, emitted_at >= (s + 1) *
1000) FROM <db>.health_metrics WHERE window_ms = 1000 AND level IN ('SERVICE', 'APP') ... GROUP BY window_start, level, service, final\`.
For each service-second, minus the window's end: **first visible** = when a poll first returned a row of it emitted at or
after its end (an early row, final = 0, with the whole second as far as the worker has read it; or the final row);
**any row** = when a poll first returned any row of it, including the partial early rows emitted *during* the second
(the worker emits the windows that changed whenever stream time crosses a second, so a second's first row usually
holds only its first record); **final** = when a poll first returned its final row. The "emitted_at" lines are the rows'
own \`emitted_at\` (the worker's clock, same machine) minus the end: the rest is the wait for the sink's next insert
(at the task's commit, every 1 s) and the insert itself. Counted: first visible for seconds whose next second had
records (end <= the last record's ts - 1 s); final for seconds that event time closed (end + 1 s + 4 s <= the last
record's ts - 1 s). ${LATENCY_RUNS > 1 ? `Medians over ${LATENCY_RUNS} runs of each run's percentiles.` : "One run."} In ms.

| what | p50 | p99 | max | seen / expected |
|---|---|---|---|---|
${latRow(
  "SERVICE: first visible (first row emitted after the end)",
  (l) => l.first,
  (l) => `${l.first.length} / ${l.expectedFirst}`,
)}
${latRow(
  "&nbsp;&nbsp;its emitted_at - end",
  (l) => l.firstEmitted,
  (l) => `${l.firstEmitted.length}`,
)}
${latRow(
  "SERVICE: any row (partial rows included)",
  (l) => l.any,
  (l) => `${l.any.length} / ${l.expectedFirst}`,
)}
${latRow(
  "SERVICE: final row visible",
  (l) => l.final,
  (l) => `${l.final.length} / ${l.expectedFinal}`,
)}
${latRow(
  "&nbsp;&nbsp;its emitted_at - end",
  (l) => l.finalEmitted,
  (l) => `${l.finalEmitted.length}`,
)}
${latRow(
  "SERVICE: whole second final (all its services)",
  (l) => l.secondFinal,
  (l) => `${l.secondFinal.length} seconds`,
)}
${latRow(
  "APP: first visible (= final: no early rows), after the first 10 s",
  (l) => l.appFinal,
  (l) => `${l.appFinal.length} / ${l.expectedApp}`,
)}
${latRow(
  "&nbsp;&nbsp;its emitted_at - end",
  (l) => l.appFinalEmitted,
  (l) => `${l.appFinalEmitted.length}`,
)}
${latRow(
  "APP: the first 10 s of the run",
  (l) => l.appStartup,
  (l) => `${l.appStartup.length}`,
)}

Every run (p50 / p99, ms): ${everyLatency}. The worker used ${median(lat.map((l) => l.workerCores)).toFixed(2)} cores during
the load (the machine ${median(lat.map((l) => l.machineCores)).toFixed(2)}).`
}

## Goals

| goal | target | measured | |
|---|---|---|---|
| health pipeline throughput per core | >= 100,000 events per CPU-second | ${fmt(healthPerCore)} | ${met(healthPerCore >= 100_000)} |
| health vs plain windowing, CPU per event | (for reference) | ${(plainPerCore / healthPerCore).toFixed(2)}x | |
| a 1 s window queryable: SERVICE (and ENDPOINT) early rows | p99 < 3 s after its end | ${lat.length ? `${fmt(firstP99)} ms` : "–"} | ${lat.length ? met(firstP99 < 3000) : ""} |
| the same for APP (and SYSTEM) rows, final only | p99 < 3 s after its end | ${lat.length ? `${fmt(appP99)} ms` : "–"} | ${lat.length ? met(appP99 < 3000) : ""} |
| a 1 s window final in ClickHouse | (for reference: cannot be before end + 1 s + 4 s) | ${lat.length ? `p99 ${fmt(finalP99)} ms` : "–"} | |

## Profile of the health worker

${profileNote}

## Notes

- **Why the health pipeline costs so little more than plain windowing.** Per event both do the same kind of work:
  decode the Avro value, find the key's open window, update an accumulator and a DDSketch. Everything that makes it
  the health pipeline (service rows, the repartition to system and app, the 1 min and 1 h roll-ups with sketch
  merges, the alert rules, the ClickHouse inserts) runs per *row*, and there are ~${fmt(rowsPerEventSecond)} final 1 s rows
  (plus as many early ones) per second of event time against ~100,000 events. In the profile the health code itself,
  \`pipelines/health/rows.ts\` with what it calls, is ${share(fileIs("pipelines/health/rows.ts"))} of the busy time, the alerts ${share(fileIs("pipelines/health/alerts.ts"))},
  the ClickHouse sink ${share(fileIs("sinks/clickhouse/sink.ts"))} and its client ${share(fileIs("@clickhouse/client (package)"))}. The same fixed per-second costs weigh much more at a low
  rate: at ${fmt(RATE)} events/s live the worker spent ${lat.length ? `${fmt(liveUsPerEvent)} µs` : "–"} of CPU per event, against
  ${fmt(backlogUsPerEvent)} µs on the backlog (1 s commits with Kafka transactions, ClickHouse inserts, timers, /metrics).
- **Where the time goes** (profile): decoding. The Avro decode of the values is ${share(fnIs("decode", "schemas/codec.ts"))} of the busy time, most of it
  in string fields (${share(fnIs("StringType._read", "avsc/"))}); the health pipeline reads 8 of AccessLog's 21 fields (ts, app, system, service,
  endpoint, status, errorCode, latencyUs) and pays for \`id\`, \`traceId\`, \`clientIp\`, \`userAgent\`, \`host\` ... as
  well: a reader schema with only those fields (avsc's resolver skips the others without building strings) is the
  biggest lever, and it belongs to \`stream/\` or \`schemas/\` (the source's decoder), not to the pipeline. kafkajs
  decoding fetch responses is ${share(fnIs("decodeMessages", "kafkajs/src/protocol/requests/fetch/v4"))}, and two per-message calls of the runtime into kafkajs cost
  ${share(fnIs("resolveOffset", "kafkajs/src/consumer/runner.js"))} (\`resolveOffset\`, which parses offsets into Longs) and ${share(fnIs("isStale", "kafkajs/src/consumer/runner.js"))} (\`isStale\`, a map lookup of pending seeks):
  \`stream/runtime/worker.ts\` \`onBatch\` calls both for every message, where once per batch (or per chunk) would
  do. Garbage collection is ${share(fnIs("(garbage collector)", "(V8"))}. For the pipeline author: the pipeline's own code is not where the time goes.
- **The work check.** Every level's final 1 s rows sum to exactly N in every run, and so do the 1 min and 1 h
  roll-ups (sketches merged, counts summed), so the roll-ups and the repartition lose and double nothing. All N
  requests were in final APP rows ~${fmt(median(healthRuns.map((s) => s.drainMs)))} ms after the N-th record was read (the last windows close
  when the closing records arrive, then the repartition's transaction and the upper stage's sink each wait for a
  commit). The synthetic load trips alert rules (its error rates are 1% and more against budgets of 0.1%–1%):
  ${checkRun?.alertsByRule || "none"} in run 1${
    healthRuns.every((r) => r.alertsByRule === checkRun?.alertsByRule)
      ? ", the same in every run"
      : `; the other runs: ${healthRuns
          .slice(1)
          .map((r) => r.alertsByRule || "none")
          .join("; ")}`
  } (the RESOLVED ones come from the closing records' jump in event time).
- **Latency: the early row is the queryable one.** A second's early row is emitted within tens of ms of its end
  (the emitted_at line), then waits for the task's next commit: under exactly-once the ClickHouse sink inserts at the
  commit, every \`commitInterval\` = 1 s, so the delay is the phase of the commit timer against the second boundary,
  nearly the same for every second of a run and different from run to run (every run above), bounded by ~1 s plus
  the insert. Its final row cannot come before end + outOfOrderness (1 s) + grace (4 s) = end + 5 s (the emitted_at
  line shows exactly that), plus the same commit wait: the 3 s goal is met by the early rows, by design, and the final
  rows follow ~5–6 s after the end. Lower \`grace\` in \`slo.yaml\` brings final rows forward at the cost of dropping
  later stragglers (late events are counted, not added).
- **SYSTEM and APP rows have no early version.** The upper stage takes final SERVICE rows through the repartition,
  so a second's APP row appears only after the SERVICE row is final (end + 5 s), the repartition's transaction
  commits and the upper stage's sink commits: ${lat.length ? `p50 ${fmt(latAll((l) => l.appFinal))} ms, p99 ${fmt(appP99)} ms` : "–"} after the end. If the console's
  app and system views should be live within 3 s too, the upper stage needs early rows of its own (from early
  service rows, replaced by final ones as the lower levels' are) — a question for the pipeline author.
- **An empty partition holds SYSTEM and APP back at start-up.** ${SERVICES.length} services keyed by name over 6 partitions leave
  ${
    perPartition.filter((n) => n === 0).length === 0
      ? "no partition empty here"
      : `${perPartition.flatMap((n, p) => (n === 0 ? [`p${p}`] : [])).join(", ")} empty (murmur2), as logs.access would with the same services`
  }. That partition's task has no watermark until it has been silent for \`idleTimeout\` (10 s, counted from the
  task's start), and the upper stage's watermark is the minimum over all upstream tasks, so for the first ~10 s
  after a worker starts (or takes over the partition) no SYSTEM or APP second closes. In the latency runs the
  worker had already been up a few seconds before the first record, so only the first seconds were held (the
  "first 10 s" row: p99 ${lat.length ? fmt(latP99((l) => l.appStartup)) : "–"} ms against ${lat.length ? fmt(appP99) : "–"} ms afterwards); with
  \`--records 300000\` (3 s of processing, all within those 10 s) all N requests reached final APP rows ~8.6 s after the
  N-th record in a trial run, against ~1–2 s with 2,000,000 records. With more partitions than services this is
  the normal case, not an accident of this benchmark.
- **Side effect on the shared stack.** \`weir run health\` also writes every row and alert to the Kafka topics
  \`metrics.health\` and \`alerts.health\` (\`HEALTH_DEFAULTS\` in \`pipelines/health/topology.ts\`); \`pipelines/health/pipeline.ts\` has no
  setting to rename or turn them off, so each benchmark run appended its rows (event times of 2026-11-20 12:00 UTC
  for the backlog) to the stack's topics. Those writes are part of the measured work. A \`WEIR_HEALTH_METRICS_TOPIC\`
  / \`WEIR_HEALTH_ALERTS_TOPIC\` (like \`WEIR_HEALTH_INPUT\`) would let a benchmark or a test keep to its own topics.
- **The plain reference** is \`bench/stream/topology.ts\` unchanged, on the same topic: it windows per Kafka key,
  which is the service here (the stream benchmark's topic is keyed \`service|endpoint\`), so it keeps ${SERVICES.length} windows per
  second and one sketch per service where the health pipeline keeps 64 endpoint accumulators; that is part of the
  difference, and why its figures are higher than in [stream.md](stream.md).

The ClickHouse sink on its own (its insert rate against \`clickhouse-client\` on the same rows) has its own
benchmark: [clickhouse-sink.md](clickhouse-sink.md) (\`bench/clickhouse/bench.ts\`); it is not redone here.
`;

writeFileSync(join(PROJECT_ROOT, "bench/results/health.md"), md);
console.log(md);
