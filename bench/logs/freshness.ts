// Write-to-searchable latency of the logs pipeline: how long after a line is written a search finds
// it, in Elasticsearch and in ClickHouse, under the simulator's normal load. Two ways in (`--via`):
//
// - `kafka` (default): the line is produced to Kafka; the time is from its send. The simulator's app
//   and access logs (bench/logs/traffic.ts, PII in a share of them) are produced as the wall clock
//   reaches their time.
// - `ship`: the line is appended to a service's log file that a `weir ship` child process tails; the
//   time is from the write (one write(2) of the whole line, as a service's logger does). The
//   simulator (`weir simulate --realtime`: all five kinds of files, written as the wall clock reaches
//   their time) goes through the same shipper, into the run's own topics.
//
// Per run: topics, an index prefix and a database of the run's own; `weir run logs` as a child
// process; the load at `--rate` records per second of every kind (the simulator's default peak,
// 2000: about 1,300 log lines a second). Among them, every `--probe-every` ms, a probe line (an
// access line and an app line of gift-svc in turn). Pollers look for the probes not found yet, every
// 50 ms: Elasticsearch with an `ids` query (a search sees only refreshed segments) and a realtime GET
// (indexed, before the refresh), ClickHouse with `SELECT id ... WHERE id IN (...)`, and a plain
// read_committed Kafka consumer of the topics (for `ship`: the shipper's part). A probe's latency is
// the time of the answer that first holds it. The first `--warmup` seconds of probes are left out.
//
//   node --import tsx bench/logs/freshness.ts [--via kafka|ship] [--runs 3] [--seconds 60] [--rate 2000] [--probe-every 100]
//
// Writes its section of bench/results/logs-freshness.md (one per --via; unless --no-write).
import { createHash } from "node:crypto";
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { createClient } from "@clickhouse/client";
import { Client } from "@elastic/elasticsearch";
import { Kafka, logLevel } from "kafkajs";
import { stringify } from "yaml";
import { accessLine, appLine } from "../../infra/simulator/formats.ts";
import { type SimulatorTopics, simulatorShipConfig } from "../../infra/simulator/ship-config.ts";
import { SIMULATE_DEFAULTS, type SimulateResult, simulate } from "../../infra/simulator/simulate.ts";
import { clientEndpoints, PROJECT_ROOT } from "../../infra/stack/config.ts";
import { DEFAULT_LOGS_CONFIG_FILE, loadLogsConfig } from "../../pipelines/logs/config.ts";
import { logsTableStatements } from "../../pipelines/logs/table.ts";
import { codecFor } from "../../schemas/codec.ts";
import type { AccessLog, AppLog } from "../../schemas/types.generated.ts";
// The watcher reads what weir ship wrote, lz4-compressed.
import "../../kafka/codecs.ts";
import { benchFlags } from "../support/flags.ts";
import { ancestors, cpuMsOf, freePort, median, percentile, processes, statFields, tail } from "../support/process.ts";
import { LogTraffic } from "./traffic.ts";

const { argv, flag, num } = benchFlags();
const RUNS = num("runs", 3);
const SECONDS = num("seconds", 60);
const WARMUP_S = num("warmup", 10);
const RATE = num("rate", 2000);
const PROBE_EVERY = num("probe-every", 100);
const WRITE = flag("no-write") !== "true";
const VIA = flag("via") ?? "kafka";
if (VIA !== "kafka" && VIA !== "ship") throw new Error("--via must be kafka or ship");
/** Another configuration file for the worker (the default: pipelines/logs/logs.yaml). */
const CONFIG = flag("config");
const MAX_WAIT_MS = num("max-wait-minutes", 20) * 60_000;
const COMMAND = `node --import tsx bench/logs/freshness.ts ${argv.join(" ")}`.trim();
const GOAL_P99_MS = 2500;
const POLL_MS = 50;

const stack = clientEndpoints();
const LOGS = mkdtempSync(join(tmpdir(), "weir-bench-logs-"));
const { start: startProcess } = processes(LOGS);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (s: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`);
const fmt = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en") : "–");
const appCodec = codecFor("AppLog");
const accessCodec = codecFor("AccessLog");

// ---- a quiet machine ------------------------------------------------------------------------------------

const ANCESTORS = ancestors();

function isMine(pid: number): boolean {
  for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
    if (p === process.pid || ANCESTORS.has(p)) return true;
    try {
      p = Number(statFields(p)[1]);
    } catch {
      return false;
    }
  }
  return false;
}

/** Other processes that load the machine: node workers, tests, benchmarks, busy loops. */
function heavyOthers(): string[] {
  const out: string[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d) || isMine(Number(d))) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, "utf8").replace(/\0/g, " ").trim();
      if (!/\bnode\b/.test(cmd) || !/weir\.mjs (run|simulate|ship|logs)|--test\b|test\/run\.ts|bench\/| -e /.test(cmd))
        continue;
      out.push(`${d} ${cmd.slice(0, 120)}`);
    } catch {
      // gone
    }
  }
  return out;
}

let waitedMs = 0;
const seenOthers = new Set<string>();
/** Waits (up to --max-wait-minutes in all) while another heavy process runs; notes the ones that did not end. */
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

interface Probe {
  id: string;
  /** The document's _id and the row's id. */
  storeId: string;
  sentAt: number;
  warm: boolean;
  es?: number;
  /** Indexed (a realtime GET finds it), before the refresh that makes it searchable. */
  get?: number;
  /** Read by a plain Kafka consumer of the topics: the broker's part. */
  kafka?: number;
  ch?: number;
}

interface RunResult {
  /** The worker's checkpoints (flush both stores, commit): how many, their mean, and the share of the run they took. */
  checkpoints: { count: number; meanMs: number; share: number };
  /** Per probe found by both: search time minus GET time (the refresh's share). */
  pairs: number[];
  /** Per probe: search time minus the time a plain consumer read it (the worker's and Elasticsearch's share). */
  afterKafka: number[];
  /** Per probe: GET time minus the time a plain consumer read it (the worker's read, its bulk request, the indexing). */
  toIndexed: number[];
  kafka: number[];
  es: number[];
  get: number[];
  ch: number[];
  probes: number;
  missingEs: number;
  missingCh: number;
  lines: number;
  linesPerSecond: number;
  workerCores: number;
  machineCores: number;
  stored: { es: number; ch: number };
  /** --via ship: the shipper's batches (sends to Kafka, one transaction each), their mean send-to-commit time, its CPU. */
  ship?: { batches: number; sendMeanMs: number; cores: number };
}

function busyCpuMs(): number {
  const f = (readFileSync("/proc/stat", "utf8").split("\n")[0] as string).trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return ((total - (f[3] as number) - (f[4] as number)) * 1000) / 100;
}

/** A probe: an access line (even n) or an app line (odd n) of gift-svc, its `id` or message naming it. */
function probeRecord(
  n: number,
  ts: number,
  runId: string,
): { kind: "access"; line: AccessLog } | { kind: "app"; line: AppLog } {
  const id = `probe-${runId}-${n}`;
  if (n % 2 === 0)
    return {
      kind: "access",
      line: {
        id,
        ts,
        app: "live",
        system: "gifting",
        service: "gift-svc",
        endpoint: "/gift/send",
        method: "POST",
        status: 200,
        latencyUs: 12_000,
        bytesIn: 100,
        bytesOut: 100,
        errorCode: null,
        traceId: null,
        caller: null,
        uid: 100_000_001,
        deviceId: null,
        clientIp: "10.0.0.1",
        roomId: null,
        userAgent: "live-android/8.4.1",
        urlQuery: null,
        referrer: null,
        host: "gift-svc-probe",
        source: null,
      },
    };
  return {
    kind: "app",
    line: {
      id,
      ts,
      service: "gift-svc",
      host: "gift-svc-probe",
      level: "INFO",
      message: id,
      logger: "probe",
      traceId: null,
      spanId: null,
      error: null,
      attributes: {},
      source: null,
    },
  };
}

/** A probe as produced to Kafka: Avro, and the id the stores keep it under. */
function probeMessage(
  n: number,
  ts: number,
  runId: string,
): { topic: "app" | "access"; value: Buffer; storeId: string } {
  const p = probeRecord(n, ts, runId);
  if (p.kind === "access")
    return { topic: "access", value: accessCodec.encode(p.line), storeId: `req:gift-svc:${p.line.id}` };
  return { topic: "app", value: appCodec.encode(p.line), storeId: p.line.id };
}

/**
 * A service's log file the probes are appended to, one write(2) per line, as a logger writes. It
 * starts with lines enough for a whole fingerprint (shipper/sources/README.md, "File identity"), so its
 * fileId is known before the shipper sees it, and so each probe's id in the stores: `<fileId>:<offset>`.
 */
class ProbeFile {
  readonly fileId: string;
  private readonly fd: number;
  private offset = 0;
  /** Lines written before the probes (stored too). */
  readonly preamble: number;

  constructor(
    readonly path: string,
    private readonly kind: "access" | "app",
    runId: string,
  ) {
    this.fd = openSync(path, "a");
    let head = "";
    let n = 0;
    for (; Buffer.byteLength(head) < 256; n++) {
      const p = probeRecord(kind === "access" ? 0 : 1, Date.now(), runId);
      p.line.id = `preamble-${runId}-${n}`;
      if (p.kind === "app") p.line.message = p.line.id;
      head += this.format(p);
    }
    this.preamble = n;
    this.write(head);
    this.fileId = `${createHash("sha256").update(Buffer.from(head).subarray(0, 256)).digest("hex").slice(0, 32)}-256`;
  }

  private format(p: ReturnType<typeof probeRecord>): string {
    return p.kind === "access" ? accessLine(p.line) : appLine("json", p.line, { pid: 1 });
  }

  /** Appends the line; returns its id in the stores. */
  append(p: ReturnType<typeof probeRecord>): string {
    if (p.kind !== this.kind) throw new Error(`a ${p.kind} probe in the ${this.kind} file`);
    const at = this.offset;
    this.write(this.format(p));
    return `${this.fileId}:${at}`;
  }

  private write(text: string): void {
    const buf = Buffer.from(text);
    let done = 0;
    while (done < buf.length) done += writeSync(this.fd, buf, done);
    this.offset += buf.length;
  }

  close(): void {
    closeSync(this.fd);
  }
}

async function waitHealthy(port: number, proc: ReturnType<typeof startProcess>, what: string): Promise<void> {
  for (let i = 0; ; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(1000) })
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return;
    if (proc.exitCode !== undefined || i > 600) throw new Error(`${what} did not start:\n${tail(proc)}`);
    await sleep(100);
  }
}

async function scrape(port: number): Promise<(name: string) => number> {
  const text = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) })
    .then((r) => r.text())
    .catch(() => "");
  return (name: string) => {
    let sum = Number.NaN;
    for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "gm")))
      sum = (Number.isNaN(sum) ? 0 : sum) + Number(m[1]);
    return sum;
  };
}

async function oneRun(run: number): Promise<RunResult> {
  const runId = `logsfresh_${Date.now().toString(36)}${run}`;
  const topics = { app: `${runId}.app`, access: `${runId}.access`, dlq: `${runId}.dlq` };
  // --via ship: the shipper's other topics (the simulator writes all five kinds) and its dead letters.
  const shipTopics: SimulatorTopics = {
    app: topics.app,
    access: topics.access,
    behavior: `${runId}.behavior`,
    coin: `${runId}.coin`,
    device: `${runId}.device`,
    dlq: `${runId}.ship-dlq`,
  };
  const allTopics =
    VIA === "ship" ? [...new Set([...Object.values(topics), ...Object.values(shipTopics)])] : Object.values(topics);
  const kafka = new Kafka({ clientId: "weir-bench-logs", brokers: stack.kafkaBrokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const es = new Client({ node: stack.elasticsearchUrl });
  const ch = createClient({ url: stack.clickhouseUrl });
  const load = kafka.producer({ idempotent: true });
  const probes = kafka.producer({ idempotent: true });
  let worker: ReturnType<typeof startProcess> | null = null;
  let shipper: ReturnType<typeof startProcess> | null = null;
  let watching: { disconnect(): Promise<void> } | null = null;
  const probeFiles: ProbeFile[] = [];
  const stopSimulator = new AbortController();
  let simulation: Promise<SimulateResult> | null = null;
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: allTopics.map((topic) => ({
        topic,
        numPartitions: topic === topics.app || topic === topics.access ? 6 : topic.endsWith("dlq") ? 1 : 3,
      })),
    });
    for (const stmt of logsTableStatements(runId)) await ch.command({ query: stmt });
    if (VIA === "kafka") {
      await load.connect();
      await probes.connect();
    }

    const port = await freePort();
    worker = startProcess(
      `worker-${run}`,
      process.execPath,
      ["cli/weir.mjs", "run", "logs", "--metrics-port", String(port), ...(CONFIG ? ["--config", CONFIG] : [])],
      {
        WEIR_ENV: "development",
        WEIR_LOGS_APP_ID: runId,
        WEIR_LOGS_APP_TOPIC: topics.app,
        WEIR_LOGS_ACCESS_TOPIC: topics.access,
        WEIR_LOGS_DLQ_TOPIC: topics.dlq,
        WEIR_LOGS_INDEX_PREFIX: runId,
        WEIR_LOGS_DATABASE: runId,
      },
    );
    await waitHealthy(port, worker, "the worker");

    // --via ship: the simulator's folder and the probes' files, tailed by one `weir ship`.
    const runDir = join(LOGS, `run-${run}`);
    const simDir = join(runDir, "sim");
    let shipPort = 0;
    if (VIA === "ship") {
      mkdirSync(join(runDir, "probe"), { recursive: true });
      mkdirSync(simDir, { recursive: true });
      probeFiles.push(new ProbeFile(join(runDir, "probe", "access.log"), "access", runId));
      probeFiles.push(new ProbeFile(join(runDir, "probe", "app.log"), "app", runId));
      shipPort = await freePort();
      const config = simulatorShipConfig(simDir, join(runDir, "ship-data"), shipTopics, {
        declareTopics: true,
        metricsPort: shipPort,
      });
      (config.sources as unknown[]).push(
        { name: "probe-access", paths: [probeFiles[0]?.path], format: "json", topic: topics.access },
        { name: "probe-app", paths: [probeFiles[1]?.path], format: "json", topic: topics.app },
      );
      const configFile = join(runDir, "ship.yaml");
      writeFileSync(configFile, stringify(config));
      shipper = startProcess(`ship-${run}`, process.execPath, ["cli/weir.mjs", "ship", "--config", configFile], {
        WEIR_KAFKA_BROKERS: stack.kafkaBrokers.join(","),
      });
      await waitHealthy(shipPort, shipper, "weir ship");
    }

    // A plain consumer of both topics: when the broker hands a probe out (the pipeline cannot be faster).
    const byId = new Map<string, Probe>();
    const watcher = kafka.consumer({ groupId: `${runId}-watch`, maxWaitTimeInMs: 100 });
    await watcher.connect();
    await watcher.subscribe({ topics: [topics.app, topics.access], fromBeginning: true });
    await watcher.run({
      eachMessage: async ({ message }) => {
        const v = message.value;
        if (!v || v.indexOf("probe-") < 0) return;
        const at = Date.now();
        const id = /probe-[a-z0-9_]+-\d+/.exec(v.toString("latin1"))?.[0];
        const p = id ? byId.get(id) : undefined;
        if (p && p.kafka === undefined) p.kafka = at - p.sentAt;
      },
    });
    watching = watcher;
    const began = Date.now();
    const all: Probe[] = [];
    const pendingEs = new Map<string, Probe>();
    const pendingGet = new Map<string, Probe>();
    const pendingCh = new Map<string, Probe>();
    let producing = true;
    let lines = 0;
    const cpu0 = cpuMsOf(worker.child.pid as number);
    const shipCpu0 = shipper ? cpuMsOf(shipper.child.pid as number) : 0;
    const busy0 = busyCpuMs();

    let loadLoop: Promise<void>;
    if (VIA === "kafka") {
      const traffic = new LogTraffic({ runId, start: began, seconds: SECONDS + 1, rate: RATE, seed: run + 1 });
      loadLoop = (async () => {
        while (producing) {
          const batch = traffic.until(Date.now());
          const send = async (topic: string, messages: Array<{ key: string; value: Buffer }>) => {
            if (messages.length > 0) await load.send({ topic, acks: -1, messages });
          };
          await Promise.all([
            send(
              topics.app,
              batch.app.map((l) => ({ key: l.service, value: appCodec.encode(l) })),
            ),
            send(
              topics.access,
              batch.access.map((l) => ({ key: l.service, value: accessCodec.encode(l) })),
            ),
          ]);
          lines += batch.app.length + batch.access.length;
          await sleep(50);
        }
      })();
    } else {
      // The simulator as `weir simulate --realtime` runs it, with the load of bench/logs/traffic.ts.
      const sim = simulate({
        ...SIMULATE_DEFAULTS,
        seed: run + 1,
        start: began,
        durationMs: (SECONDS + 1) * 1000,
        rate: RATE,
        diurnal: false,
        users: 20_000,
        streamers: 300,
        scenario: "calm",
        fraud: 0,
        to: "files",
        out: simDir,
        realtime: true,
        signal: stopSimulator.signal,
      });
      simulation = sim;
      loadLoop = sim.then((r) => {
        for (const st of r.streams) if (st.kind === "app" || st.kind === "access") lines += st.events;
        for (const f of probeFiles) lines += f.preamble;
      });
    }
    const probeLoop = (async () => {
      for (let n = 0; producing; n++) {
        const next = began + n * PROBE_EVERY;
        if (next > Date.now()) await sleep(next - Date.now());
        const sentAt = Date.now();
        const warm = sentAt - began >= WARMUP_S * 1000;
        const id = `probe-${runId}-${n}`;
        let storeId: string;
        if (VIA === "ship") {
          const p = probeRecord(n, sentAt, runId);
          storeId = (probeFiles[p.kind === "access" ? 0 : 1] as ProbeFile).append(p);
        } else {
          const p = probeMessage(n, sentAt, runId);
          storeId = p.storeId;
          // Not awaited: a slow send must not delay the next probe's clock.
          void probes.send({
            topic: p.topic === "app" ? topics.app : topics.access,
            acks: -1,
            messages: [{ key: "gift-svc", value: p.value }],
          });
        }
        const probe: Probe = { id, storeId, sentAt, warm };
        all.push(probe);
        byId.set(probe.id, probe);
        pendingEs.set(probe.storeId, probe);
        pendingGet.set(probe.storeId, probe);
        pendingCh.set(probe.storeId, probe);
      }
    })();
    const esPoll = async () => {
      const ids = [...pendingEs.keys()];
      if (ids.length === 0) return;
      const r = await es.search(
        { index: `${runId}-*`, query: { ids: { values: ids } }, size: ids.length, _source: false },
        { ignore: [404] },
      );
      const at = Date.now();
      for (const h of r.hits?.hits ?? []) {
        const p = pendingEs.get(h._id as string);
        if (p) {
          p.es = at - p.sentAt;
          pendingEs.delete(p.storeId);
        }
      }
    };
    const probeIndex = (ts: number) =>
      `${runId}-gift-svc-${new Date(ts).toISOString().slice(0, 10).replaceAll("-", ".")}`;
    const getPoll = async () => {
      const pending = [...pendingGet.values()];
      if (pending.length === 0) return;
      const r = await es.mget({
        docs: pending.map((p) => ({ _index: probeIndex(p.sentAt), _id: p.storeId })),
        _source: false,
      });
      const at = Date.now();
      for (const d of r.docs) {
        const p = "found" in d && d.found ? pendingGet.get(d._id) : undefined;
        if (p) {
          p.get = at - p.sentAt;
          pendingGet.delete(p.storeId);
        }
      }
    };
    const chPoll = async () => {
      const ids = [...pendingCh.keys()];
      if (ids.length === 0) return;
      const list = ids.map((i) => `'${i}'`).join(",");
      const rs = await ch.query({
        query: `SELECT id FROM ${runId}.logs WHERE service = 'gift-svc' AND ts >= ${Math.floor(began / 1000) - 5} AND id IN (${list})`,
        format: "JSONEachRow",
      });
      const rows = await rs.json<{ id: string }>();
      const at = Date.now();
      for (const row of rows) {
        const p = pendingCh.get(row.id);
        if (p) {
          p.ch = at - p.sentAt;
          pendingCh.delete(p.storeId);
        }
      }
    };
    let polling = true;
    const poller = (fn: () => Promise<void>) =>
      (async () => {
        while (polling) {
          const t = Date.now();
          await fn().catch((e) => {
            // A daily index just created has no shard to search for a moment: not found yet.
            if (!/no_shard_available|index_not_found/.test(String((e as Error).message)))
              say(`poll failed: ${(e as Error).message}`);
          });
          await sleep(Math.max(0, POLL_MS - (Date.now() - t)));
        }
      })();
    const pollers = [poller(esPoll), poller(getPoll), poller(chPoll)];

    await sleep(SECONDS * 1000);
    producing = false;
    stopSimulator.abort();
    await Promise.all([loadLoop, probeLoop]);
    const elapsed = (Date.now() - began) / 1000;
    const metric = await scrape(port);
    const commits = metric("weir_stream_commit_seconds_count");
    const commitSeconds = metric("weir_stream_commit_seconds_sum");
    const cpu = (cpuMsOf(worker.child.pid as number) - cpu0) / 1000 / elapsed;
    const shipCores = shipper ? (cpuMsOf(shipper.child.pid as number) - shipCpu0) / 1000 / elapsed : Number.NaN;
    const machine = (busyCpuMs() - busy0) / 1000 / elapsed;
    const shipMetric = shipper ? await scrape(shipPort) : undefined;
    const deadline = Date.now() + 30_000;
    while ((pendingEs.size > 0 || pendingCh.size > 0) && Date.now() < deadline) await sleep(200);
    polling = false;
    await Promise.all(pollers);

    // Everything written is stored (the pipeline did its whole job, not only the probes').
    let stored = { es: 0, ch: 0 };
    const want = lines + all.length;
    for (let i = 0; i < 60; i++) {
      await es.indices.refresh({ index: `${runId}-*` });
      const esCount = (await es.count({ index: `${runId}-*` })).count;
      const rs = await ch.query({ query: `SELECT count() AS n FROM ${runId}.logs FINAL`, format: "JSONEachRow" });
      stored = { es: esCount, ch: Number((await rs.json<{ n: string }>())[0]?.n) };
      if (stored.es >= want && stored.ch >= want) break;
      await sleep(1000);
    }
    const warm = all.filter((p) => p.warm);
    return {
      checkpoints: { count: commits, meanMs: (commitSeconds / commits) * 1000, share: commitSeconds / elapsed },
      pairs: warm.flatMap((p) => (p.es === undefined || p.get === undefined ? [] : [p.es - p.get])),
      afterKafka: warm.flatMap((p) => (p.es === undefined || p.kafka === undefined ? [] : [p.es - p.kafka])),
      toIndexed: warm.flatMap((p) => (p.get === undefined || p.kafka === undefined ? [] : [p.get - p.kafka])),
      es: warm.flatMap((p) => (p.es === undefined ? [] : [p.es])).sort((a, b) => a - b),
      get: warm.flatMap((p) => (p.get === undefined ? [] : [p.get])).sort((a, b) => a - b),
      kafka: warm.flatMap((p) => (p.kafka === undefined ? [] : [p.kafka])).sort((a, b) => a - b),
      ch: warm.flatMap((p) => (p.ch === undefined ? [] : [p.ch])).sort((a, b) => a - b),
      probes: warm.length,
      missingEs: warm.filter((p) => p.es === undefined).length,
      missingCh: warm.filter((p) => p.ch === undefined).length,
      lines: want,
      linesPerSecond: lines / elapsed,
      workerCores: cpu,
      machineCores: machine,
      stored,
      ...(shipMetric
        ? {
            ship: {
              batches: shipMetric("weir_ship_kafka_send_seconds_count"),
              sendMeanMs:
                (shipMetric("weir_ship_kafka_send_seconds_sum") / shipMetric("weir_ship_kafka_send_seconds_count")) *
                1000,
              cores: shipCores,
            },
          }
        : {}),
    };
  } finally {
    stopSimulator.abort();
    await simulation?.catch(() => {});
    for (const p of [shipper, worker]) {
      if (p && p.exitCode === undefined) {
        p.child.kill("SIGTERM");
        await p.exited;
      }
    }
    for (const f of probeFiles) f.close();
    await watching?.disconnect().catch(() => {});
    await load.disconnect().catch(() => {});
    await probes.disconnect().catch(() => {});
    const rows = (await es.cat
      .indices({ index: `${runId}-*`, format: "json", h: "index" }, { ignore: [404] })
      .catch(() => [])) as unknown;
    for (const r of Array.isArray(rows) ? (rows as Array<{ index: string }>) : [])
      await es.indices.delete({ index: r.index, ignore_unavailable: true }).catch(() => {});
    await es.indices.deleteIndexTemplate({ name: `weir-${runId}` }, { ignore: [404] }).catch(() => {});
    for (const part of ["settings", "mappings"])
      await es.cluster.deleteComponentTemplate({ name: `weir-${runId}-${part}` }, { ignore: [404] }).catch(() => {});
    await ch.command({ query: `DROP DATABASE IF EXISTS ${runId}` }).catch(() => {});
    // Groups before topics: an admin client fails its requests once a topic it knew is gone.
    await admin.deleteGroups([runId, `${runId}-watch`]).catch(() => {});
    await admin.deleteTopics({ topics: allTopics }).catch(() => {});
    await admin.disconnect();
    await es.close();
    await ch.close();
  }
}

const cfg = loadLogsConfig(CONFIG ?? DEFAULT_LOGS_CONFIG_FILE);
const startedAt = new Date();
const load0 = loadavg()[0] as number;
const results: RunResult[] = [];
for (let run = 1; run <= RUNS; run++) {
  await waitQuiet(`run ${run}`);
  say(`run ${run}/${RUNS} (--via ${VIA}): ${SECONDS} s at --rate ${RATE}, a probe every ${PROBE_EVERY} ms`);
  const r = await oneRun(run);
  for (const o of heavyOthers()) seenOthers.add(o.replace(/^\d+ /, ""));
  results.push(r);
  say(
    `run ${run}: Elasticsearch p50 ${fmt(percentile(r.es, 0.5))} p99 ${fmt(percentile(r.es, 0.99))} ms; ` +
      `ClickHouse p50 ${fmt(percentile(r.ch, 0.5))} p99 ${fmt(percentile(r.ch, 0.99))} ms; ` +
      `indexed (GET) p50 ${fmt(percentile(r.get, 0.5))} p99 ${fmt(percentile(r.get, 0.99))} ms; ` +
      `Kafka p50 ${fmt(percentile(r.kafka, 0.5))} p99 ${fmt(percentile(r.kafka, 0.99))} ms; ` +
      (r.ship
        ? `shipper ${r.ship.cores.toFixed(2)} cores, ${fmt(r.ship.batches)} batches of mean ${fmt(r.ship.sendMeanMs)} ms; `
        : "") +
      `${r.probes} probes (missing ${r.missingEs} / ${r.missingCh}); ${fmt(r.linesPerSecond)} lines/s; ` +
      `worker ${r.workerCores.toFixed(2)} cores, machine ${r.machineCores.toFixed(2)}; ` +
      `checkpoints ${r.checkpoints.count} of ${fmt(r.checkpoints.meanMs)} ms (${(r.checkpoints.share * 100).toFixed(0)}% of the run); stored ${r.stored.es} / ${r.stored.ch} of ${r.lines}`,
  );
}
const load1 = loadavg()[0] as number;

const row = (name: string, pick: (r: RunResult) => number[]) => {
  const per = results.map(pick);
  const all = per.flat().sort((a, b) => a - b);
  const p = (q: number) => median(per.map((xs) => percentile(xs, q)));
  return `| ${name} | ${fmt(p(0.5))} | ${fmt(p(0.9))} | ${fmt(p(0.99))} | ${fmt(median(per.map((xs) => xs.at(-1) ?? Number.NaN)))} | ${fmt(percentile(all, 0.99))} | ${per.map((xs) => fmt(percentile(xs, 0.99))).join(", ")} |`;
};
const parts = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return `${fmt(percentile(sorted, 0.5))} / ${fmt(percentile(sorted, 0.99))}`;
};
const esP99 = median(results.map((r) => percentile(r.es, 0.99)));
const chP99 = median(results.map((r) => percentile(r.ch, 0.99)));
const ship = VIA === "ship";
const workerConfig = `\`weir run logs\` (${CONFIG ? `configuration ${CONFIG}` : "default configuration"}: Elasticsearch bulk at ${fmt(cfg.elasticsearch.flushBytes / 1048576)} MiB or ${cfg.elasticsearch.flushInterval} ms, index refresh 1 s,
ClickHouse batches of ${fmt(cfg.clickhouse.batchSize)} rows or ${cfg.clickhouse.flushInterval} ms, offsets committed every ${cfg.stream.commitInterval / 1000} s) on topics of the run's own (6 partitions each)`;
const workload = ship
  ? `Workload per run: ${workerConfig}; one \`weir ship\` (the simulator's ship config, infra/simulator/ship-config.ts, with
its defaults: disk channel fsynced every second, one Kafka transaction per batch, lz4) tailing the simulator's files and the
probes' two files; the simulator as \`weir simulate --realtime --scenario calm --rate ${RATE}\` writes its five kinds of files as the
wall clock reaches their time (${fmt(median(results.map((r) => r.linesPerSecond)))} app and access lines/s, no PII); a probe line every ${PROBE_EVERY} ms (access and app
lines of gift-svc in turn, JSON, each appended with one write(2) to its own file), timed from just before that write until a
poller's answer first holds it: an Elasticsearch \`ids\` search (only refreshed documents) or a ClickHouse \`SELECT ... WHERE
id IN\`, each polled every ${POLL_MS} ms. ${SECONDS} s per run, the first ${WARMUP_S} s of probes left out; ${RUNS} runs.`
  : `Workload per run: ${workerConfig}; the
simulator's app and access logs at \`--rate ${RATE}\` (its default peak) produced as the wall clock reaches their time
(${fmt(median(results.map((r) => r.linesPerSecond)))} log lines/s, PII in every 10th app and 25th access line); a probe line every ${PROBE_EVERY} ms (access
and app lines of gift-svc in turn), timed from just before its send to Kafka (acks=all) until a poller's answer first holds
it: an Elasticsearch \`ids\` search (only refreshed documents) or a ClickHouse \`SELECT ... WHERE id IN\`, each polled
every ${POLL_MS} ms. ${SECONDS} s per run, the first ${WARMUP_S} s of probes left out; ${RUNS} runs.`;
const runRows = results
  .map(
    (r, i) =>
      `| ${i + 1} | ${r.probes} | ${r.missingEs} / ${r.missingCh} | ${fmt(r.linesPerSecond)} | ${r.workerCores.toFixed(2)} | ${ship ? `${(r.ship?.cores ?? Number.NaN).toFixed(2)} | ${fmt(r.ship?.batches ?? Number.NaN)}, ${fmt(r.ship?.sendMeanMs ?? Number.NaN)} ms | ` : ""}${r.machineCores.toFixed(2)} | ${fmt(r.checkpoints.meanMs)}, ${(r.checkpoints.share * 100).toFixed(0)}% | ${fmt(r.stored.es)} / ${fmt(r.stored.ch)} of ${fmt(r.lines)} |`,
  )
  .join("\n");
const timeGoes = `Elasticsearch: a line waits for its bulk request (at most the 250 ms flush interval, a checkpoint's
flush sends it sooner), the request is indexed, and the document becomes searchable at its index's next refresh (every
1 s). The "indexed" row is the time until a realtime GET finds the document, before that refresh: Kafka, the worker and the
bulk request. Search minus GET, per probe, median ${fmt(median(results.flatMap((r) => r.pairs)))} ms: the refresh's share. ClickHouse: a row
waits for its batch (${cfg.clickhouse.flushInterval} ms flush interval, or a checkpoint's flush, whichever first), then the INSERT; it is visible as
soon as the INSERT returns. The worker's checkpoint (every ${cfg.stream.commitInterval / 1000} s) waits for both stores' acknowledgements before it reads on,
so a slow INSERT or bulk request delays the lines behind it too (the checkpoints column: their mean length and the share of
the run the worker spent in them).`;
const section = `## ${ship ? "Timed from the write to the service's log file, through `weir ship` (`--via ship`)" : "Timed from the produce to Kafka (`--via kafka`)"}

Command: \`${COMMAND}\`
Date: ${startedAt.toISOString().slice(0, 16).replace("T", " ")} UTC; machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM,
Node ${process.version}; Kafka, Elasticsearch 8.19 and ClickHouse 18.16 of the local stack on the same machine (the
broker, both stores, the load generator, the pollers${ship ? ", the shipper" : ""} and the worker share the cores). Load average ${load0.toFixed(2)}
before the first run, ${load1.toFixed(2)} after the last. The benchmark waited ${Math.round(waitedMs / 1000)} s for other heavy processes to end;
${seenOthers.size === 0 ? "none was seen during the runs." : `these ran during the runs anyway (the machine column shows what they took):\n${[...seenOthers].map((o) => `- \`${o}\``).join("\n")}`}

${workload}

| store | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) | p99 of all probes (ms) | p99 per run (ms) |
|---|---|---|---|---|---|---|
${row("Elasticsearch (search)", (r) => r.es)}
${row("ClickHouse (SELECT)", (r) => r.ch)}
${row("Elasticsearch, indexed (realtime GET by _id, before the refresh)", (r) => r.get)}
${row(ship ? "Kafka: a read_committed consumer of the topics reads it (the shipper's part)" : "Kafka: a plain consumer of the topics reads it", (r) => r.kafka)}

Percentiles are the median over runs of each run's nearest-rank percentile. Goal: p99 under ${GOAL_P99_MS} ms.
Elasticsearch: **${fmt(esP99)} ms, ${esP99 < GOAL_P99_MS ? "met" : "not met"}**; ClickHouse: ${fmt(chP99)} ms.

| run | probes | not found (ES / CH) | log lines/s | worker (cores) | ${ship ? "shipper (cores) | shipper batches, mean send-to-commit | " : ""}machine (cores) | checkpoints: mean (ms), share of the run | stored in ES / CH of ${ship ? "written" : "produced"} |
|---|---|---|---|---|---|---|---|${ship ? "---|---|" : ""}
${runRows}

The parts of each probe's time, per run: p50 / p99 (ms) of each part alone (so they do not add up).

| run | ${ship ? "write" : "send"} -> read from Kafka | Kafka -> indexed (GET) | indexed -> searchable (the refresh) | ${ship ? "write" : "send"} -> searchable |
|---|---|---|---|---|
${results.map((r, i) => `| ${i + 1} | ${parts(r.kafka)} | ${parts(r.toIndexed)} | ${parts(r.pairs)} | ${parts(r.es)} |`).join("\n")}

Where the time goes. ${
  ship
    ? `From the write to a consumer reading it from Kafka is the shipper's part (the tail noticing the write, the
decoder, the disk channel, the batch's Kafka transaction): median ${fmt(median(results.map((r) => percentile(r.kafka, 0.5))))} ms, p99 ${fmt(median(results.map((r) => percentile(r.kafka, 0.99))))} ms. From there to the search finding
it, per probe, median ${fmt(median(results.flatMap((r) => r.afterKafka)))} ms: the worker's and Elasticsearch's part, as with \`--via kafka\`. `
    : ""
}${timeGoes}
`;
console.log(section);
if (WRITE) {
  const file = join(PROJECT_ROOT, "bench/results/logs-freshness.md");
  writeFileSync(file, withSection(existsSync(file) ? readFileSync(file, "utf8") : "", VIA, section));
  say(`wrote ${file}`);
}

/**
 * The results file with this mode's section replaced (or added), the other mode's kept. Each section
 * sits between markers; a file from before there were two modes is the `kafka` section.
 */
function withSection(text: string, mode: string, section: string): string {
  const begin = (m: string) => `<!-- section ${m}: written by bench/logs/freshness.ts --via ${m} -->`;
  const end = (m: string) => `<!-- end of section ${m} -->`;
  const title =
    "# Logs pipeline: write-to-searchable latency\n\nTwo ways in: lines produced to Kafka, and lines written to a service's log file that `weir ship` tails.\n";
  let body = text;
  if (body.trim() !== "" && !body.includes(begin("kafka")) && !body.includes(begin("ship")))
    body = `${title}\n${begin("kafka")}\n${body.replace(/^# Logs pipeline: ingest-to-searchable latency\n/, "## Timed from the produce to Kafka (`--via kafka`)\n").trim()}\n${end("kafka")}\n`;
  if (body.trim() === "") body = `${title}\n`;
  const block = `${begin(mode)}\n${section.trim()}\n${end(mode)}`;
  const from = body.indexOf(begin(mode));
  if (from >= 0) {
    const to = body.indexOf(end(mode), from) + end(mode).length;
    return `${body.slice(0, from)}${block}${body.slice(to)}`;
  }
  return `${body.trimEnd()}\n\n${block}\n`;
}
