// Ingest-to-searchable latency of the logs pipeline: how long after a line is produced to Kafka a
// search finds it, in Elasticsearch and in ClickHouse, under the simulator's normal load.
//
// Per run: topics, an index prefix and a database of the run's own; `weir run logs` as a child
// process; the simulator's app and access logs (bench/logs/traffic.ts, PII in a share of them)
// produced as the wall clock reaches their time, at `--rate` records per second of every kind (the
// simulator's default peak, 2000: about 1,300 log lines a second). Among them, every `--probe-every`
// ms, a probe line (an access line and an app line in turn, of gift-svc), timed from just before
// its send. Two pollers search for the probes not found yet, every 50 ms: Elasticsearch with an
// `ids` query (a search sees only refreshed segments, unlike a GET), ClickHouse with
// `SELECT id ... WHERE id IN (...)`. A probe's latency is the time of the answer that first holds it.
// The first `--warmup` seconds of probes are left out.
//
//   node --import tsx bench/logs/freshness.ts [--runs 3] [--seconds 60] [--rate 2000] [--probe-every 100]
//
// Writes bench/results/logs-freshness.md (unless --no-write).
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { createClient } from "@clickhouse/client";
import { Client } from "@elastic/elasticsearch";
import { Kafka, logLevel } from "kafkajs";
import { clientEndpoints, PROJECT_ROOT } from "../../infra/stack/config.ts";
import { DEFAULT_LOGS_CONFIG_FILE, loadLogsConfig } from "../../pipelines/logs/config.ts";
import { codecFor } from "../../schemas/codec.ts";
import type { AccessLog, AppLog } from "../../schemas/types.generated.ts";
import { splitStatements } from "../../sinks/clickhouse/migrate.ts";
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
}

function busyCpuMs(): number {
  const f = (readFileSync("/proc/stat", "utf8").split("\n")[0] as string).trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return ((total - (f[3] as number) - (f[4] as number)) * 1000) / 100;
}

function probeLine(n: number, ts: number, runId: string): { topic: "app" | "access"; value: Buffer; storeId: string } {
  const id = `probe-${runId}-${n}`;
  if (n % 2 === 0) {
    const l: AccessLog = {
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
      host: "gift-svc-probe",
      source: null,
    };
    return { topic: "access", value: accessCodec.encode(l), storeId: `req:gift-svc:${id}` };
  }
  const l: AppLog = {
    id,
    ts,
    service: "gift-svc",
    host: "gift-svc-probe",
    level: "INFO",
    message: `probe ${n}`,
    logger: "probe",
    traceId: null,
    spanId: null,
    error: null,
    attributes: {},
    source: null,
  };
  return { topic: "app", value: appCodec.encode(l), storeId: id };
}

async function oneRun(run: number): Promise<RunResult> {
  const runId = `logsfresh_${Date.now().toString(36)}${run}`;
  const topics = { app: `${runId}.app`, access: `${runId}.access`, dlq: `${runId}.dlq` };
  const kafka = new Kafka({ clientId: "weir-bench-logs", brokers: stack.kafkaBrokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const es = new Client({ node: stack.elasticsearchUrl });
  const ch = createClient({ url: stack.clickhouseUrl });
  const load = kafka.producer({ idempotent: true });
  const probes = kafka.producer({ idempotent: true });
  let worker: ReturnType<typeof startProcess> | null = null;
  let watching: { disconnect(): Promise<void> } | null = null;
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        { topic: topics.app, numPartitions: 6 },
        { topic: topics.access, numPartitions: 6 },
        { topic: topics.dlq, numPartitions: 1 },
      ],
    });
    const ddl = readFileSync(join(PROJECT_ROOT, "infra/clickhouse/002_logs.sql"), "utf8")
      .replaceAll("CREATE DATABASE IF NOT EXISTS weir", `CREATE DATABASE IF NOT EXISTS ${runId}`)
      .replaceAll("weir.", `${runId}.`);
    for (const stmt of splitStatements(ddl)) await ch.command({ query: stmt });
    await load.connect();
    await probes.connect();

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
    for (let i = 0; ; i++) {
      const ok = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(1000) })
        .then((r) => r.ok)
        .catch(() => false);
      if (ok) break;
      if (worker.exitCode !== undefined || i > 600) throw new Error(`the worker did not start:\n${tail(worker)}`);
      await sleep(100);
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
    const traffic = new LogTraffic({ runId, start: began, seconds: SECONDS + 1, rate: RATE, seed: run + 1 });
    const all: Probe[] = [];
    const pendingEs = new Map<string, Probe>();
    const pendingGet = new Map<string, Probe>();
    const pendingCh = new Map<string, Probe>();
    let producing = true;
    let lines = 0;
    const cpu0 = cpuMsOf(worker.child.pid as number);
    const busy0 = busyCpuMs();

    const loadLoop = (async () => {
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
    const probeLoop = (async () => {
      for (let n = 0; producing; n++) {
        const next = began + n * PROBE_EVERY;
        if (next > Date.now()) await sleep(next - Date.now());
        const sentAt = Date.now();
        const p = probeLine(n, sentAt, runId);
        const probe: Probe = {
          id: `probe-${runId}-${n}`,
          storeId: p.storeId,
          sentAt,
          warm: sentAt - began >= WARMUP_S * 1000,
        };
        all.push(probe);
        byId.set(probe.id, probe);
        pendingEs.set(probe.storeId, probe);
        pendingGet.set(probe.storeId, probe);
        pendingCh.set(probe.storeId, probe);
        // Not awaited: a slow send must not delay the next probe's clock.
        void probes.send({
          topic: p.topic === "app" ? topics.app : topics.access,
          acks: -1,
          messages: [{ key: "gift-svc", value: p.value }],
        });
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
    await Promise.all([loadLoop, probeLoop]);
    const elapsed = (Date.now() - began) / 1000;
    const metrics = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) })
      .then((r) => r.text())
      .catch(() => "");
    const metric = (name: string) =>
      Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(metrics)?.[1] ?? Number.NaN);
    const commits = metric("weir_stream_commit_seconds_count");
    const commitSeconds = metric("weir_stream_commit_seconds_sum");
    const cpu = (cpuMsOf(worker.child.pid as number) - cpu0) / 1000 / elapsed;
    const machine = (busyCpuMs() - busy0) / 1000 / elapsed;
    const deadline = Date.now() + 30_000;
    while ((pendingEs.size > 0 || pendingCh.size > 0) && Date.now() < deadline) await sleep(200);
    polling = false;
    await Promise.all(pollers);

    // Everything produced is stored (the pipeline did its whole job, not only the probes').
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
    };
  } finally {
    if (worker && worker.exitCode === undefined) {
      worker.child.kill("SIGTERM");
      await worker.exited;
    }
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
    await admin.deleteTopics({ topics: Object.values(topics) }).catch(() => {});
    await admin.deleteGroups([runId, `${runId}-watch`]).catch(() => {});
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
  say(`run ${run}/${RUNS}: ${SECONDS} s at --rate ${RATE}, a probe every ${PROBE_EVERY} ms`);
  const r = await oneRun(run);
  for (const o of heavyOthers()) seenOthers.add(o.replace(/^\d+ /, ""));
  results.push(r);
  say(
    `run ${run}: Elasticsearch p50 ${fmt(percentile(r.es, 0.5))} p99 ${fmt(percentile(r.es, 0.99))} ms; ` +
      `ClickHouse p50 ${fmt(percentile(r.ch, 0.5))} p99 ${fmt(percentile(r.ch, 0.99))} ms; ` +
      `indexed (GET) p50 ${fmt(percentile(r.get, 0.5))} p99 ${fmt(percentile(r.get, 0.99))} ms; ` +
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
const esP99 = median(results.map((r) => percentile(r.es, 0.99)));
const chP99 = median(results.map((r) => percentile(r.ch, 0.99)));
const md = `# Logs pipeline: ingest-to-searchable latency

Command: \`${COMMAND}\`
Date: ${startedAt.toISOString().slice(0, 16).replace("T", " ")} UTC; machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM,
Node ${process.version}; Kafka, Elasticsearch 8.19 and ClickHouse 18.16 of the local stack on the same machine (the
broker, both stores, the load generator, the pollers and the worker share the cores). Load average ${load0.toFixed(2)}
before the first run, ${load1.toFixed(2)} after the last. The benchmark waited ${Math.round(waitedMs / 1000)} s for other heavy processes to end;
${seenOthers.size === 0 ? "none was seen during the runs." : `these ran during the runs anyway (the machine column shows what they took):\n${[...seenOthers].map((o) => `- \`${o}\``).join("\n")}`}

Workload per run: \`weir run logs\` (${CONFIG ? `configuration ${CONFIG}` : "default configuration"}: Elasticsearch bulk at ${fmt(cfg.elasticsearch.flushBytes / 1048576)} MiB or ${cfg.elasticsearch.flushInterval} ms, index refresh 1 s,
ClickHouse batches of ${fmt(cfg.clickhouse.batchSize)} rows or ${cfg.clickhouse.flushInterval} ms, offsets committed every ${cfg.stream.commitInterval / 1000} s) on topics of the run's own (6 partitions each); the
simulator's app and access logs at \`--rate ${RATE}\` (its default peak) produced as the wall clock reaches their time
(${fmt(median(results.map((r) => r.linesPerSecond)))} log lines/s, PII in every 10th app and 25th access line); a probe line every ${PROBE_EVERY} ms (access
and app lines of gift-svc in turn), timed from just before its send to Kafka (acks=all) until a poller's answer first holds
it: an Elasticsearch \`ids\` search (only refreshed documents) or a ClickHouse \`SELECT ... WHERE id IN\`, each polled
every ${POLL_MS} ms. ${SECONDS} s per run, the first ${WARMUP_S} s of probes left out; ${RUNS} runs.

| store | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) | p99 of all probes (ms) | p99 per run (ms) |
|---|---|---|---|---|---|---|
${row("Elasticsearch (search)", (r) => r.es)}
${row("ClickHouse (SELECT)", (r) => r.ch)}
${row("Elasticsearch, indexed (realtime GET by _id, before the refresh)", (r) => r.get)}
${row("Kafka: a plain consumer of the topics reads it", (r) => r.kafka)}

Percentiles are the median over runs of each run's nearest-rank percentile. Goal: p99 under ${GOAL_P99_MS} ms.
Elasticsearch: **${fmt(esP99)} ms, ${esP99 < GOAL_P99_MS ? "met" : "not met"}**; ClickHouse: ${fmt(chP99)} ms.

| run | probes | not found (ES / CH) | log lines/s | worker (cores) | machine (cores) | checkpoints: mean (ms), share of the run | stored in ES / CH of produced |
|---|---|---|---|---|---|---|---|
${results.map((r, i) => `| ${i + 1} | ${r.probes} | ${r.missingEs} / ${r.missingCh} | ${fmt(r.linesPerSecond)} | ${r.workerCores.toFixed(2)} | ${r.machineCores.toFixed(2)} | ${fmt(r.checkpoints.meanMs)}, ${(r.checkpoints.share * 100).toFixed(0)}% | ${fmt(r.stored.es)} / ${fmt(r.stored.ch)} of ${fmt(r.lines)} |`).join("\n")}

Where the time goes. Elasticsearch: a line waits for its bulk request (at most the 250 ms flush interval, a checkpoint's
flush sends it sooner), the request is indexed, and the document becomes searchable at its index's next refresh (every
1 s). The "indexed" row is the time until a realtime GET finds the document, before that refresh: Kafka, the worker and the
bulk request. Search minus GET, per probe, median ${fmt(median(results.flatMap((r) => r.pairs)))} ms: the refresh's share. ClickHouse: a row
waits for its batch (${cfg.clickhouse.flushInterval} ms flush interval, or a checkpoint's flush, whichever first), then the INSERT; it is visible as
soon as the INSERT returns. The worker's checkpoint (every ${cfg.stream.commitInterval / 1000} s) waits for both stores' acknowledgements before it reads on,
so a slow INSERT or bulk request delays the lines behind it too (the checkpoints column: their mean length and the share of
the run the worker spent in them).
`;
console.log(md);
if (WRITE) {
  const file = join(PROJECT_ROOT, "bench/results/logs-freshness.md");
  writeFileSync(file, md);
  say(`wrote ${file}`);
}
