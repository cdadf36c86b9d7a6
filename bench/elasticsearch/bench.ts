// Benchmark: ElasticsearchSink's indexing rate against a plain loader sending the same documents
// straight to `_bulk`, side by side in one run, interleaved, a fresh set of indices for each side
// of each run (the logs template of infra/elasticsearch, daily indices per service).
//
// The documents are the simulator's access and app log lines (seed 1) as the logs pipeline will
// hand them over: AppLog and AccessLog records with their shipping source, decoded from Avro, mapped
// by pipelines/logs/documents.ts (about 25 to 30 fields each).
//
// - sink: write() of each record, 1,000 at a time with a turn of the event loop between (about a
//   Kafka fetch), pausing while the sink holds more than its high-water mark, as the runtime does;
//   then flush(). Timed from the first write to the flush's resolution. The sink's own work
//   (toDocument, JSON.stringify, the action line, the buffer) is inside the time.
// - plain: the same NDJSON (same action lines, same _ids, same documents), cut into bodies by the
//   same flushBytes rule before the clock starts, POSTed with `fetch` (undici) by `concurrency`
//   loops; each answer is parsed and checked for errors. The most any client can get from this
//   server with these bodies.
//
//   node --import tsx bench/elasticsearch/bench.ts [--docs 100000] [--runs 3] [--flush-bytes 5242880]
//     [--concurrency 2] [--high-water N] [--only sink|plain] [--write] [--no-index-sort] [--codec default]
//   node --import tsx bench/elasticsearch/bench.ts --freshness [--rate 2000] [--seconds 20] [--flush-interval 250]
//     (write-to-searchable latency of the sink at a steady rate, instead of the comparison)
// Prints the result table; --write also writes it to bench/results/elasticsearch-sink.md (the analysis
// there is written by hand).
import { writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { Client } from "@elastic/elasticsearch";
import pino from "pino";
import type { EventWriter, RecordTypes, SimStream } from "../../infra/simulator/event-writer.ts";
import { TrafficGenerator } from "../../infra/simulator/generator.ts";
import { GroundTruth } from "../../infra/simulator/ground-truth.ts";
import { loadScenario } from "../../infra/simulator/scenario.ts";
import { DEFAULT_START, SIMULATE_DEFAULTS } from "../../infra/simulator/simulate.ts";
import { PROJECT_ROOT, resolveStackConfig, stackEndpoints } from "../../infra/stack/config.ts";
import { LocalStack } from "../../infra/stack/local-stack.ts";
import { accessLogMapping, appLogMapping } from "../../pipelines/logs/documents.ts";
import { LOGS_INDEX_PREFIX, logsTemplates } from "../../pipelines/logs/template.ts";
import { codecFor } from "../../schemas/codec.ts";
import type { AccessLog, AppLog } from "../../schemas/types.generated.ts";
import { BULK_FILTER_PATH, ElasticsearchSink } from "../../sinks/elasticsearch/sink.ts";
import { installTemplates, type TemplateSet } from "../../sinks/elasticsearch/templates.ts";
import type { Rec } from "../../stream/types.ts";
import { cpuMsOf, median } from "../support/process.ts";

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? (process.argv[i + 1] as string) : dflt;
};
const DOCS = Number(arg("docs", "100000"));
const RUNS = Number(arg("runs", "3"));
const FLUSH_BYTES = Number(arg("flush-bytes", String(5 * 1024 * 1024)));
const CONCURRENCY = Number(arg("concurrency", "2"));
/** The sink's high-water mark in documents; its default when not given. */
const HIGH_WATER = process.argv.includes("--high-water") ? Number(arg("high-water", "20000")) : undefined;
const ONLY = arg("only", "");
const NO_SORT = process.argv.includes("--no-index-sort");
const CODEC = arg("codec", "");
const FRESHNESS = process.argv.includes("--freshness");
const WRITE = process.argv.includes("--write") && !ONLY && !NO_SORT && !CODEC;
/** Records handed to the sink between two turns of the event loop: about what one Kafka fetch brings. */
const FETCH = 1000;

const cfg = resolveStackConfig();
const url = stackEndpoints(cfg).elasticsearchUrl;
const es = new Client({ node: url });
const serverPid = (await new LocalStack(cfg, () => {}).status()).find((s) => s.service === "elasticsearch")?.pid;
const version =
  Object.values(
    (
      (await es.nodes.info({ node_id: "_local", filter_path: "nodes.*.version" })) as {
        nodes: Record<string, { version: string }>;
      }
    ).nodes,
  )[0]?.version ?? "?";

// --- the documents -----------------------------------------------------------------------------------

type LogRecord = AppLog | AccessLog;
const isAccess = (v: LogRecord): v is AccessLog => "latencyUs" in v;

/** The simulator's access and app lines, each with the source the shipper would give it. */
function simulatedRecords(n: number): Array<Rec<LogRecord>> {
  const out: Array<Rec<LogRecord>> = [];
  const sources = new Map<string, { fileId: string; offset: number; seq: number }>();
  const sink: EventWriter = {
    written: 0,
    stream<K extends keyof RecordTypes>(service: string, kind: K): SimStream<RecordTypes[K]> {
      if (kind !== "app" && kind !== "access") return { write() {} };
      const file = `/var/log/${service}/${kind}.log`;
      const src = { fileId: `${service}-${kind}-9f1c2a`, offset: 0, seq: 0 };
      sources.set(file, src);
      return {
        write(record: RecordTypes[K]) {
          const value = record as LogRecord;
          value.source = { file, fileId: src.fileId, offset: src.offset, seq: src.seq++ };
          if (kind === "app") (value as AppLog).id = `${src.fileId}:${src.offset}`;
          // About the length of the line the service wrote.
          src.offset += 200 + value.id.length + ("message" in value ? value.message.length : 0);
          out.push({ key: null, ts: value.ts, value });
        },
      };
    },
    async flush() {},
    async close() {
      return [];
    },
  };
  const scenario = loadScenario(SIMULATE_DEFAULTS.scenario);
  const gen = new TrafficGenerator(
    {
      seed: 1,
      start: DEFAULT_START,
      runMs: 3_600_000,
      rate: SIMULATE_DEFAULTS.rate,
      diurnal: SIMULATE_DEFAULTS.diurnal,
      users: SIMULATE_DEFAULTS.users,
      streamers: SIMULATE_DEFAULTS.streamers,
      scenario,
      scenarioName: SIMULATE_DEFAULTS.scenario,
      fraud: SIMULATE_DEFAULTS.fraud,
    },
    sink,
    new GroundTruth(undefined),
  );
  let more = true;
  while (out.length < n && more) more = gen.runUntil(gen.now + 2000, Number.POSITIVE_INFINITY);
  gen.finish();
  // Through Avro and back, as the pipeline's records come from Kafka: the simulator's strings are
  // built by concatenation, which costs a consumer's code more than the flat strings a decoder makes.
  const app = codecFor("AppLog");
  const access = codecFor("AccessLog");
  return out.slice(0, n).map((r) => ({
    key: null,
    ts: r.ts,
    value: isAccess(r.value) ? access.decode(access.encode(r.value)) : app.decode(app.encode(r.value)),
  }));
}

/** The logs mappings of pipelines/logs/documents.ts, app or access by the record's shape. */
function mapping(prefix: string) {
  const app = appLogMapping(prefix);
  const access = accessLogMapping(prefix);
  return {
    toDocument: (r: Rec<LogRecord>) =>
      isAccess(r.value) ? access.toDocument(r as Rec<AccessLog>) : app.toDocument(r as Rec<AppLog>),
    index: (r: Rec<LogRecord>) => (isAccess(r.value) ? access.index(r as Rec<AccessLog>) : app.index(r as Rec<AppLog>)),
    id: (r: Rec<LogRecord>) => (isAccess(r.value) ? access.id(r as Rec<AccessLog>) : app.id(r as Rec<AppLog>)),
  };
}

/** The plain loader's bodies: the same NDJSON the sink writes, cut where the sink cuts (a body ends once it holds flushBytes). */
function bodiesFor(records: Array<Rec<LogRecord>>, prefix: string): Buffer[] {
  const m = mapping(prefix);
  const bodies: Buffer[] = [];
  let parts: string[] = [];
  let size = 0;
  for (const r of records) {
    const doc = m.toDocument(r);
    const line = `{"create":{"_index":${JSON.stringify(m.index(r))},"_id":${JSON.stringify(m.id(r))}}}\n${typeof doc === "string" ? doc : JSON.stringify(doc)}\n`;
    parts.push(line);
    size += Buffer.byteLength(line);
    if (size >= FLUSH_BYTES) {
      bodies.push(Buffer.from(parts.join("")));
      parts = [];
      size = 0;
    }
  }
  if (parts.length > 0) bodies.push(Buffer.from(parts.join("")));
  return bodies;
}

// --- measurement ---------------------------------------------------------------------------------------

interface Sample {
  docs: number;
  bytes: number;
  requests: number;
  wallMs: number;
  /** CPU seconds of this node process during the run. */
  clientCpu: number;
  /** CPU seconds of the Elasticsearch server during the run. */
  serverCpu: number;
  /** Seconds spent inside bulk requests, summed over requests. */
  insideBulk: number;
}

const serverCpuSeconds = () => (serverPid ? cpuMsOf(serverPid) / 1000 : Number.NaN);

function templatesFor(prefix: string): TemplateSet {
  const set = logsTemplates({ prefix, name: prefix });
  const settings = set.components.find((c) => c.name.endsWith("-settings"))?.body.template.settings;
  const index = (settings as { index: Record<string, unknown> }).index;
  if (NO_SORT) delete index.sort;
  if (CODEC) index.codec = CODEC;
  return set;
}

/** Runs `fn` against fresh indices of a prefix of its own, checks that every document is there, then deletes them. */
async function withIndices(side: string, fn: (prefix: string) => Promise<Omit<Sample, "docs">>): Promise<Sample> {
  const prefix = `bench_es_${side}_${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const set = templatesFor(prefix);
  await installTemplates(es, set, { logger: pino({ level: "warn" }) });
  try {
    const s = await fn(prefix);
    await es.indices.refresh({ index: `${prefix}-*` });
    const { count } = await es.count({ index: `${prefix}-*` });
    if (count !== DOCS) throw new Error(`${side}: ${count} documents indexed, expected ${DOCS}`);
    return { docs: DOCS, ...s };
  } finally {
    // Deleted before the other side runs, so its merges do not run during the other's measurement.
    const rows = (await es.cat.indices({ index: `${prefix}-*`, format: "json", h: "index" })) as Array<{
      index: string;
    }>;
    for (const r of rows) await es.indices.delete({ index: r.index });
    await es.indices.deleteIndexTemplate({ name: prefix });
    for (const c of set.components) await es.cluster.deleteComponentTemplate({ name: c.name });
  }
}

async function runSink(records: Array<Rec<LogRecord>>): Promise<Sample> {
  return withIndices("sink", async (prefix) => {
    const sink = new ElasticsearchSink<LogRecord>({
      node: url,
      flushBytes: FLUSH_BYTES,
      concurrency: CONCURRENCY,
      ...(HIGH_WATER ? { highWater: HIGH_WATER } : {}),
      logger: pino({ level: "warn" }),
      ...mapping(prefix),
    });
    const cpu0 = process.cpuUsage();
    const s0 = serverCpuSeconds();
    const t0 = performance.now();
    for (let i = 0; i < records.length; i += FETCH) {
      const end = Math.min(records.length, i + FETCH);
      for (let j = i; j < end; j++) sink.write(records[j] as Rec<LogRecord>);
      // The runtime's back-pressure (worker.ts, relieve()).
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
    const { docsIndexed, rejected, duplicates, bytesSent, requests, bulkSeconds } = sink.stats;
    await sink.close();
    if (docsIndexed !== DOCS || rejected || duplicates) {
      throw new Error(`sink: ${docsIndexed} indexed, ${rejected} rejected, ${duplicates} duplicates`);
    }
    return {
      bytes: bytesSent,
      requests,
      wallMs,
      clientCpu: (cpu.user + cpu.system) / 1e6,
      serverCpu,
      insideBulk: bulkSeconds,
    };
  });
}

async function runPlain(records: Array<Rec<LogRecord>>): Promise<Sample> {
  return withIndices("plain", async (prefix) => {
    const bodies = bodiesFor(records, prefix);
    const target = `${url}/_bulk?filter_path=${BULK_FILTER_PATH.join(",")}`;
    let next = 0;
    let insideBulk = 0;
    const post = async () => {
      while (next < bodies.length) {
        const body = bodies[next++] as Buffer;
        const started = performance.now();
        const res = await fetch(target, { method: "POST", headers: { "content-type": "application/x-ndjson" }, body });
        const answer = (await res.json()) as { errors?: boolean };
        insideBulk += (performance.now() - started) / 1000;
        if (res.status !== 200 || answer.errors !== false) {
          throw new Error(`plain loader: HTTP ${res.status}, ${JSON.stringify(answer).slice(0, 500)}`);
        }
      }
    };
    const cpu0 = process.cpuUsage();
    const s0 = serverCpuSeconds();
    const t0 = performance.now();
    await Promise.all(Array.from({ length: CONCURRENCY }, post));
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const serverCpu = serverCpuSeconds() - s0;
    const bytes = bodies.reduce((n, b) => n + b.length, 0);
    return { bytes, requests: bodies.length, wallMs, clientCpu: (cpu.user + cpu.system) / 1e6, serverCpu, insideBulk };
  });
}

// --- freshness ---------------------------------------------------------------------------------------------

/**
 * Write-to-searchable latency at a steady rate: records stamped with the wall clock as they are
 * written (so each lands in today's index of its service), and a poller asking every POLL_MS for each
 * index's newest searchable @timestamp. A document counts as searchable at the first poll whose
 * newest time in its index is at or past its own (documents of one index are written in time order),
 * so the figures are high by up to POLL_MS plus the poll's own round trip.
 */
async function freshness(records: Array<Rec<LogRecord>>, perSecond: number, seconds: number) {
  const POLL_MS = 50;
  const TICK_MS = 20;
  const total = Math.min(records.length, perSecond * seconds);
  const prefix = `bench_es_fresh_${Date.now().toString(36)}`;
  const set = templatesFor(prefix);
  await installTemplates(es, set, { logger: pino({ level: "warn" }) });
  const m = mapping(prefix);
  const sink = new ElasticsearchSink<LogRecord>({
    node: url,
    logger: pino({ level: "warn" }),
    ...(process.argv.includes("--flush-interval") ? { flushInterval: Number(arg("flush-interval", "250")) } : {}),
    ...m,
  });
  const written = new Map<string, number[]>();
  const seenUpTo = new Map<string, number>();
  const latencies: number[] = [];
  let bulk = { requests: 0, meanMs: 0 };
  let done = false;
  const t0 = Date.now();
  const poller = (async () => {
    while (!done || latencies.length < total) {
      const t = Date.now();
      // A daily index whose shard is still starting fails the search: the next poll asks again.
      const r = (await es
        .search({
          index: `${prefix}-*`,
          size: 0,
          ignore_unavailable: true,
          allow_no_indices: true,
          aggs: { by: { terms: { field: "_index", size: 1000 }, aggs: { newest: { max: { field: "@timestamp" } } } } },
        })
        .catch(() => ({}))) as {
        aggregations?: { by: { buckets: Array<{ key: string; newest: { value: number | null } }> } };
      };
      for (const b of r.aggregations?.by.buckets ?? []) {
        const times = written.get(b.key) ?? [];
        let k = seenUpTo.get(b.key) ?? 0;
        while (k < times.length && (times[k] as number) <= (b.newest.value ?? -1))
          latencies.push(t - (times[k++] as number));
        seenUpTo.set(b.key, k);
      }
      if (done && Date.now() - t0 > (seconds + 30) * 1000)
        throw new Error("documents not searchable 30 s after the last write");
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  })();
  try {
    for (let i = 0; i < total; ) {
      const due = Math.min(total, Math.floor(((Date.now() - t0) / 1000) * perSecond));
      for (; i < due; i++) {
        const r = records[i] as Rec<LogRecord>;
        const now = Date.now();
        r.value.ts = now;
        r.ts = now;
        const index = m.index(r);
        let times = written.get(index);
        if (!times) {
          times = [];
          written.set(index, times);
        }
        times.push(now);
        sink.write(r);
      }
      await new Promise((r) => setTimeout(r, TICK_MS));
    }
    await sink.flush();
    done = true;
    await poller;
    bulk = { requests: sink.stats.requests, meanMs: (sink.stats.bulkSeconds / sink.stats.requests) * 1000 };
  } finally {
    done = true;
    await sink.close();
    const rows = (await es.cat.indices({ index: `${prefix}-*`, format: "json", h: "index" })) as Array<{
      index: string;
    }>;
    for (const r of rows) await es.indices.delete({ index: r.index });
    await es.indices.deleteIndexTemplate({ name: prefix });
    for (const c of set.components) await es.cluster.deleteComponentTemplate({ name: c.name });
  }
  const sorted = latencies.sort((a, b) => a - b);
  const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] as number;
  return { docs: sorted.length, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: sorted.at(-1) as number, bulk };
}

// --- main -------------------------------------------------------------------------------------------------

const records = simulatedRecords(DOCS);
if (records.length < DOCS) throw new Error(`the simulator made ${records.length} records, fewer than ${DOCS}`);
const accessShare = records.filter((r) => isAccess(r.value)).length / DOCS;
const sampleBodies = bodiesFor(records, LOGS_INDEX_PREFIX);
const ndjsonBytes = sampleBodies.reduce((n, b) => n + b.length, 0);
const services = new Set(records.map((r) => r.value.service)).size;
sampleBodies.length = 0;
console.log(
  `${DOCS.toLocaleString("en")} documents (${Math.round(accessShare * 100)}% access, ${Math.round((1 - accessShare) * 100)}% app; ${services} services), ${(ndjsonBytes / 1048576).toFixed(1)} MiB of NDJSON (${Math.round(ndjsonBytes / DOCS)} bytes a document with its action line); Elasticsearch ${version}`,
);

if (FRESHNESS) {
  const perSecond = Number(arg("rate", "2000"));
  const seconds = Number(arg("seconds", "20"));
  const f = await freshness(records, perSecond, seconds);
  await es.close();
  console.log(
    `freshness at ${perSecond.toLocaleString("en")} docs/s for ${seconds} s (${f.docs.toLocaleString("en")} documents): write to searchable p50 ${f.p50} ms, p90 ${f.p90} ms, p99 ${f.p99} ms, max ${f.max} ms; ${f.bulk.requests} bulk requests of ${Math.round(f.bulk.meanMs)} ms on average`,
  );
  process.exit(0);
}

const loadBefore = loadavg()[0] as number;
type Side = "sink" | "plain";
const SIDES: Side[] = ONLY ? [ONLY as Side] : ["sink", "plain"];
const runs: Record<Side, Sample[]> = { sink: [], plain: [] };
const run = (side: Side) => (side === "sink" ? runSink(records) : runPlain(records));
const rate = (s: Sample) => s.docs / (s.wallMs / 1000);
const fmt = (n: number) => Math.round(n).toLocaleString("en");
try {
  // A warm-up of each, not counted: connections, the server's caches and JIT, V8's.
  for (const side of SIDES) await run(side);
  for (let i = 0; i < RUNS; i++) {
    // Each run starts with the other side, so each goes first as often.
    const order = i % 2 === 0 ? SIDES : [...SIDES].reverse();
    for (const side of order) runs[side].push(await run(side));
    console.log(
      `run ${i + 1}: ${order.map((side) => `${side} ${fmt(rate(runs[side].at(-1) as Sample))} docs/s`).join(", ")}`,
    );
  }
} finally {
  await es.close();
}
if (!ONLY) {
  const ratios = runs.sink.map((s, i) => rate(s) / rate(runs.plain[i] as Sample));
  const us = (xs: Sample[], f: (x: Sample) => number) => median(xs.map((x) => (f(x) / x.docs) * 1e6)).toFixed(1);
  const row = (name: string, xs: Sample[]) =>
    `| ${name} | ${fmt(median(xs.map(rate)))} | ${median(xs.map((x) => x.bytes / 1048576 / (x.wallMs / 1000))).toFixed(1)} | ${fmt(median(xs.map((x) => x.requests)))} | ${Math.round(median(xs.map((x) => (100 * x.insideBulk) / ((x.wallMs / 1000) * CONCURRENCY))))}% | ${us(xs, (x) => x.clientCpu)} | ${us(xs, (x) => x.serverCpu)} |`;
  const cmd = `node --import tsx bench/elasticsearch/bench.ts --docs ${DOCS} --runs ${RUNS}${FLUSH_BYTES !== 5 * 1024 * 1024 ? ` --flush-bytes ${FLUSH_BYTES}` : ""}${CONCURRENCY !== 2 ? ` --concurrency ${CONCURRENCY}` : ""}`;
  const table = `| writer | docs/s | MiB/s | requests | request slots busy | client CPU µs/doc | server CPU µs/doc |
|---|---|---|---|---|---|---|
${row("ElasticsearchSink (client.bulk)", runs.sink)}
${row("plain loader (fetch, bodies prepared)", runs.plain)}

Sink / plain loader, docs/s: median **${median(ratios).toFixed(2)}x** (per run: ${ratios.map((r) => r.toFixed(2)).join(", ")}).`;
  console.log(`\n${table}`);
  if (WRITE) {
    const md = `# Elasticsearch sink: indexing against a plain \`_bulk\` loader

Command: \`${cmd}\`
Date: ${new Date().toISOString().slice(0, 10)}; machine: ${cpus().length} × ${cpus()[0]?.model.trim()}, Node ${process.version}, Elasticsearch ${version} (the local stack, one node, heap ${cfg.elasticsearch.heapMax}).
Load average (1 min) ${loadBefore.toFixed(1)} when the runs began, ${(loadavg()[0] as number).toFixed(1)} when they ended: other work shared the machine.

${DOCS.toLocaleString("en")} documents from the simulator (seed 1): ${Math.round(accessShare * 100)}% access lines, ${Math.round((1 - accessShare) * 100)}% app lines of ${services}
services, each with its shipping source, mapped by \`pipelines/logs/documents.ts\`; ${Math.round(ndjsonBytes / DOCS)} bytes of NDJSON a
document with its action line (\`create\`, \`_id\` from the record). Each side of each run writes into fresh
daily indices (one per service) under the logs template (\`infra/elasticsearch/\`: 1 shard, 0 replicas,
refresh 1 s), deleted before the other side runs. Both send
bodies of ${(FLUSH_BYTES / 1048576).toFixed(0)} MiB (a body ends once it holds that much), ${CONCURRENCY} requests in flight, with the same \`filter_path\`.

- **ElasticsearchSink**: \`write()\` of each record, ${FETCH.toLocaleString("en")} at a time with a turn of the event loop
  between (about a Kafka fetch), pausing while the sink holds more than its high-water mark (${(HIGH_WATER ?? 50_000).toLocaleString("en")}
  documents) as the runtime does, then \`flush()\`; timed from the first write to the flush's resolution.
  The sink's own work (\`toDocument\` making the JSON text, action lines, the copy into its buffer) is inside the time.
- **plain loader**: the same action and document lines, cut into the same bodies before the clock
  starts, POSTed with \`fetch\` (undici) by ${CONCURRENCY} loops, each answer parsed and checked. The most a client gets
  from this server with these bodies.

Medians of ${RUNS} runs after one warm-up of each, the order alternating. "Request slots busy" is the
time spent inside bulk requests over wall time × ${CONCURRENCY}. CPU columns are CPU time per document: this
node process, and the Elasticsearch server.

${table}

Goal: at least 0.9x. Result: **${median(ratios) >= 0.9 ? "met" : "not met"}**.
`;
    writeFileSync(join(PROJECT_ROOT, "bench/results/elasticsearch-sink.md"), md);
    console.log("\nwritten to bench/results/elasticsearch-sink.md");
  }
}
