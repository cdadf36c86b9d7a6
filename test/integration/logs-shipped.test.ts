// The logs pipeline end to end through the shipper, as production runs it: the simulator writes its
// services' log files (both kinds of rotation, a multi-line Java log, PII written into a share of
// the lines), `weir ship` tails them into topics of this test's own while they are written, and
// `weir run logs` stores them in Elasticsearch (an index prefix of its own) and ClickHouse (a database
// of its own). The ground truth is read back from the files the simulator wrote, never from the
// stores: every line of every file, with its file's fingerprint, offset, sequence number, time and
// trace. Then, with on-call's own commands (`weir logs trace|context --json`) and the same search code
// in bulk:
// - every shipped line is in both stores exactly once, at its (file id, offset), with its time, seq
//   and trace;
// - every trace the simulator wrote comes back complete from the trace search (every line with its
//   id across services, nothing else, in time order): all of them through LogSearch.trace, a sample
//   through `weir logs trace`;
// - `weir logs context <id> -n 5` gives exactly the 5 lines before and after in the same file, at the
//   first and last lines of files and on both sides of rotations;
// - no phone or ID number is left unmasked in either store, and each one written is there as a token.
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import type { Admin } from "kafkajs";
import type { EventWriter, RecordTypes, SimStream, StreamSummary } from "../../infra/simulator/event-writer.ts";
import { TrafficGenerator } from "../../infra/simulator/generator.ts";
import { GroundTruth } from "../../infra/simulator/ground-truth.ts";
import { LogFileWriter } from "../../infra/simulator/log-file-writer.ts";
import type { LineFormat, StreamKind } from "../../infra/simulator/platform.ts";
import { legitPhone } from "../../infra/simulator/population.ts";
import { Rng } from "../../infra/simulator/random.ts";
import { loadScenario } from "../../infra/simulator/scenario.ts";
import type { SimulatorTopics } from "../../infra/simulator/ship-config.ts";
import { PROJECT_ROOT } from "../../infra/stack/config.ts";
import { idCheckChar } from "../../pipelines/logs/pii/validators.ts";
import type { LogHit } from "../../pipelines/logs/search/hit.ts";
import { LogSearch } from "../../pipelines/logs/search/search.ts";
import { logsTableStatements } from "../../pipelines/logs/table.ts";
import type { AccessLog, AppLog } from "../../schemas/types.generated.ts";
import { allDocuments } from "../support/elasticsearch.ts";
import { piiTokens, unmaskedPii } from "../support/pii.ts";
import {
  createTopics,
  deleteTopics,
  metricSum,
  type ShipProcess,
  shipMetricsPort,
  simulatorShipConfig,
  startShip,
} from "../support/ship.ts";
import { clickhouseClient, elasticsearchClient, kafkaClient, requireStack, uniqueName } from "../support/stack.ts";

const run = uniqueName("lshipped");
const prefix = run;
const database = run;
const appId = run.replaceAll("_", "-");
const shipTopics: SimulatorTopics = {
  access: `${run}.access`,
  app: `${run}.app`,
  behavior: `${run}.behavior`,
  coin: `${run}.coin`,
  device: `${run}.device`,
  dlq: `${run}.ship-dlq`,
};
const logsDlq = `${run}.logs-dlq`;
const allTopics = [...Object.values(shipTopics), logsDlq];

// A modest run: about 10,000 log lines (of 15,000 records) over 15 s of simulated time, written at
// about 4x the wall clock; rotation at 64 KiB rotates the busy streams several times.
const SEED = 21;
const RUN_MS = 15_000;
const RATE = 600;
const ROTATE_BYTES = 64 * 1024;
/** `weir logs trace` through the CLI for this many traces (all of them go through LogSearch.trace). */
const CLI_TRACES = 30;

const root = mkdtempSync(join(tmpdir(), "weir-logs-shipped-"));
const simDir = join(root, "sim");
const es = elasticsearchClient();
const ch = clickhouseClient();
const children: ChildProcess[] = [];
let admin: Admin;
let ship: ShipProcess | undefined;
let workerLog = "";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const execFileP = promisify(execFile);

before(async () => {
  await requireStack();
  admin = kafkaClient("weir-logs-shipped").admin();
  await admin.connect();
  await createTopics(Object.values(shipTopics), 3);
  await createTopics([logsDlq], 1);
  for (const stmt of logsTableStatements(database)) await ch.command({ query: stmt });
});

/** SIGTERM, and SIGKILL if it has not exited within `ms`: a worker that leaves its group lets the group be deleted. */
async function stop(child: ChildProcess, ms: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), ms);
  await exited;
  clearTimeout(timer);
}

after(async () => {
  if (ship) await stop(ship.child, 15_000);
  for (const c of children) await stop(c, 20_000);
  await ch.command({ query: `DROP DATABASE IF EXISTS ${database}` }).catch(() => {});
  await ch.close();
  const rows = (await es.cat
    .indices({ index: `${prefix}-*`, format: "json", h: "index" }, { ignore: [404] })
    .catch(() => [])) as unknown;
  for (const r of Array.isArray(rows) ? (rows as Array<{ index: string }>) : [])
    await es.indices.delete({ index: r.index, ignore_unavailable: true }).catch(() => {});
  await es.indices.deleteIndexTemplate({ name: `weir-${prefix}` }, { ignore: [404] }).catch(() => {});
  for (const part of ["settings", "mappings"])
    await es.cluster.deleteComponentTemplate({ name: `weir-${prefix}-${part}` }, { ignore: [404] }).catch(() => {});
  await es.close();
  // Before the topics: an admin client that knew a deleted topic fails every later request. A group is
  // deleted only once empty: a killed worker's member stays until its session times out.
  for (let i = 0; admin && i < 20; i++) {
    if (
      await admin.deleteGroups([appId]).then(
        () => true,
        (e: { groups?: Array<{ errorCode: number }> }) => e.groups?.[0]?.errorCode === 69, // GROUP_ID_NOT_FOUND
      )
    )
      break;
    await sleep(1000);
  }
  await deleteTopics(allTopics);
  await admin?.disconnect();
  rmSync(root, { recursive: true, force: true });
});

function startWorker(): ChildProcess {
  const child = spawn(process.execPath, ["cli/weir.mjs", "run", "logs", "--instance", "shipped-1"], {
    cwd: PROJECT_ROOT,
    env: {
      ...process.env,
      WEIR_ENV: "development",
      WEIR_PII_KEY: "",
      WEIR_PII_KEY_FILE: "",
      WEIR_LOGS_APP_ID: appId,
      WEIR_LOGS_APP_TOPIC: shipTopics.app,
      WEIR_LOGS_ACCESS_TOPIC: shipTopics.access,
      WEIR_LOGS_DLQ_TOPIC: logsDlq,
      WEIR_LOGS_INDEX_PREFIX: prefix,
      WEIR_LOGS_DATABASE: database,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const keep = (d: Buffer) => {
    workerLog = (workerLog + d).slice(-20_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  children.push(child);
  return child;
}

// ---- the simulator's files, with PII in a share of the lines -------------------------------------

/** PII written into the lines, as people type it; each value is one token in each store once masked. */
class PiiInjectingWriter implements EventWriter {
  readonly pii = { phones: 0, idCards: 0 };
  /** How each stream rotates: LogFileWriter's "mixed" alternates rename and copytruncate in the order streams are opened. */
  readonly rotation = new Map<string, "rename" | "copytruncate">();
  private appLines = 0;
  private accessLines = 0;

  constructor(
    private readonly files: LogFileWriter,
    private readonly rng: Rng,
  ) {}

  get written(): number {
    return this.files.written;
  }

  stream<K extends StreamKind>(service: string, kind: K, format: LineFormat): SimStream<RecordTypes[K]> {
    this.rotation.set(`${service}/${kind}`, this.rotation.size % 2 === 0 ? "rename" : "copytruncate");
    const inner = this.files.stream(service, kind, format);
    if (kind === "app")
      return {
        write: (r) => {
          if (this.appLines++ % 10 === 0) this.appPii(r as AppLog, format);
          inner.write(r);
        },
      };
    if (kind === "access")
      return {
        write: (r) => {
          if (this.accessLines++ % 25 === 0) {
            const l = r as AccessLog;
            l.userAgent = `${l.userAgent ?? "live-h5"} (tel ${this.phone()})`;
          }
          inner.write(r);
        },
      };
    return inner;
  }

  /**
   * Into the message, an attribute or the error. Not into a log4j line's attributes (its `k=v` words
   * cannot hold a value with spaces) nor into a Java error (its message is also the stack's first line).
   */
  private appPii(l: AppLog, format: LineFormat): void {
    const n = this.appLines;
    const text = format === "text";
    if (n % 4 === 0) l.message = `${l.message} (contact ${this.phone()})`;
    else if (n % 4 === 1 && !text) l.attributes = { ...l.attributes, phone: this.phone() };
    else if (n % 4 === 2) l.message = `kyc check for idCard ${this.idCard()} (${l.message})`;
    else if (l.error !== null && (format === "json" || format === "pino"))
      l.error = { ...l.error, message: `${l.error.message} (user ${this.phone()})` };
    else if (!text) l.attributes = { ...l.attributes, note: `callback ${this.phone()} then ${this.idCard()}` };
    else l.message = `${l.message} (callback ${this.phone()} then ${this.idCard()})`;
  }

  private phone(): string {
    this.pii.phones++;
    return legitPhone(this.rng);
  }

  /** A resident ID number that passes every check the detector makes. */
  private idCard(): string {
    this.pii.idCards++;
    const region = ["110105", "310104", "440305", "510107"][this.rng.int(4)] as string;
    const birth = new Date(Date.UTC(1960, 0, 1) + this.rng.int(40 * 365) * 86_400_000);
    const body = `${region}${birth.toISOString().slice(0, 10).replaceAll("-", "")}${String(this.rng.int(1000)).padStart(3, "0")}`;
    return body + idCheckChar(body, 0);
  }

  flush(): Promise<void> {
    return this.files.flush();
  }

  close(): Promise<StreamSummary[]> {
    return this.files.close();
  }
}

/** The simulator's run, written about 5x faster than the wall clock in quarter-second steps, so that the shipper tails growing files. */
async function writeServiceLogs(start: number): Promise<{
  records: number;
  pii: { phones: number; idCards: number };
  rotation: Map<string, "rename" | "copytruncate">;
}> {
  const truth = new GroundTruth(join(simDir, "ground-truth.jsonl"));
  const files = new LogFileWriter({
    dir: simDir,
    rotateBytes: ROTATE_BYTES,
    rotation: "mixed",
    keep: 0,
    dirtyRate: 0,
    oversizeBytes: 1 << 20,
    rng: new Rng(SEED ^ 0x5eed_d1e7),
    truth,
  });
  const writer = new PiiInjectingWriter(files, new Rng(SEED ^ 0x9111));
  const gen = new TrafficGenerator(
    {
      seed: SEED,
      start,
      runMs: RUN_MS,
      rate: RATE,
      diurnal: false,
      users: 20_000,
      streamers: 300,
      scenario: loadScenario("default"),
      scenarioName: "default",
      fraud: 1,
    },
    writer,
    truth,
  );
  for (let t = start + 250; ; t += 250) {
    const more = gen.runUntil(t, Number.POSITIVE_INFINITY);
    await writer.flush();
    if (!more) break;
    await sleep(50);
  }
  gen.finish();
  await writer.close();
  truth.close();
  return { records: writer.written, pii: writer.pii, rotation: writer.rotation };
}

// ---- the ground truth, from the files ------------------------------------------------------------

/** One line (one event: a Java stack trace belongs to the line before it) of a file the simulator wrote. */
interface FileLine {
  file: string;
  service: string;
  dataset: "app" | "access";
  offset: number;
  /** Its number among the file's events from 0: the shipper's seq. */
  seq: number;
  ts: number;
  traceId: string | null;
  /** Access lines: the query string and referrer as written (the simulator writes no PII there). */
  urlQuery: string | null;
  referrer: string | null;
  /** `<fileId>:<offset>`, once the file's id is known. */
  id: string;
}

interface SimFile {
  path: string;
  service: string;
  dataset: "app" | "access";
  /** Rotated files are numbered .1 (newest) up; the live file is 0. */
  generation: number;
  head: Buffer;
  lines: FileLine[];
  fileId?: string;
}

const TEXT_START = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}/;
const TEXT_LINE = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}\.\d{3}) .*?(?:\[traceId=(\S+) spanId=\S+\]|\[\]) - /;

function readSimFiles(): SimFile[] {
  const out: SimFile[] = [];
  for (const service of readdirSync(simDir, { withFileTypes: true })) {
    if (!service.isDirectory()) continue;
    for (const name of readdirSync(join(simDir, service.name))) {
      const m = /^(app|access)\.log(?:\.(\d+))?$/.exec(name);
      if (!m) continue;
      const path = join(simDir, service.name, name);
      const buf = readFileSync(path);
      const dataset = m[1] as "app" | "access";
      const file: SimFile = {
        path,
        service: service.name,
        dataset,
        generation: Number(m[2] ?? 0),
        head: buf.subarray(0, 256),
        lines: [],
      };
      let start = 0;
      for (let nl = buf.indexOf(10); nl !== -1; nl = buf.indexOf(10, start)) {
        const text = buf.toString("utf8", start, nl);
        const offset = start;
        start = nl + 1;
        let ts: number;
        let traceId: string | null;
        let urlQuery: string | null = null;
        let referrer: string | null = null;
        if (text.startsWith("{")) {
          const o = JSON.parse(text) as Record<string, unknown>;
          const t = o.ts ?? o.time ?? o["@timestamp"];
          ts = typeof t === "number" ? t : Date.parse(String(t));
          traceId = typeof o.traceId === "string" ? o.traceId : null;
          if (typeof o.urlQuery === "string") urlQuery = o.urlQuery;
          if (typeof o.referrer === "string") referrer = o.referrer;
        } else if (TEXT_START.test(text)) {
          const p = TEXT_LINE.exec(text);
          assert.ok(p, `${path}@${offset}: a log4j line the test cannot read: ${text.slice(0, 120)}`);
          ts = Date.parse(`${p[1]}T${p[2]}+08:00`); // pay-svc writes Beijing time
          traceId = p[3] ?? null;
        } else continue; // a stack trace's line: part of the event before it
        file.lines.push({
          file: path,
          service: service.name,
          dataset,
          offset,
          seq: file.lines.length,
          ts,
          traceId,
          urlQuery,
          referrer,
          id: "",
        });
      }
      assert.equal(start, buf.length, `${path} ends with a newline`);
      out.push(file);
    }
  }
  return out;
}

/**
 * Names each file by the fileId the stores hold for it: `<sha256 of its first N bytes>-<N>`
 * (shipper/sources/README.md, "File identity"; N is 256, or less for a file first seen shorter), so
 * a line's expected id is `<fileId>:<offset>`. A file no stored id fingerprints keeps no id: its
 * lines are then missing, and the comparison says so.
 */
function identify(files: SimFile[], storedFileIds: Iterable<string>): void {
  for (const fileId of storedFileIds) {
    const m = /^([0-9a-f]{32})-(\d+)(?:-[0-9.]+)?$/.exec(fileId);
    assert.ok(m, `a stored file id of an unknown shape: ${fileId}`);
    const length = Number(m[2]);
    const matches = files.filter(
      (f) =>
        f.head.length >= length &&
        createHash("sha256").update(f.head.subarray(0, length)).digest("hex").slice(0, 32) === m[1],
    );
    assert.equal(matches.length, 1, `file id ${fileId} fingerprints ${matches.length} of the simulator's files`);
    const f = matches[0] as SimFile;
    assert.equal(f.fileId, undefined, `${f.path} has two file ids: ${f.fileId} and ${fileId}`);
    f.fileId = fileId;
    for (const l of f.lines) l.id = `${fileId}:${l.offset}`;
  }
}

// ---- the stores --------------------------------------------------------------------------------------

async function chRows<T>(query: string): Promise<T[]> {
  return (await ch.query({ query, format: "JSONEachRow" })).json<T>();
}

async function storedCounts(): Promise<{ es: number; ch: number }> {
  await es.indices.refresh({ index: `${prefix}-*`, ignore_unavailable: true, allow_no_indices: true });
  const inEs = (await es.count({ index: `${prefix}-*`, ignore_unavailable: true, allow_no_indices: true })).count;
  const [row] = await chRows<{ n: string }>(`SELECT count() AS n FROM ${database}.logs FINAL`);
  return { es: inEs, ch: Number(row?.n ?? 0) };
}

/** `weir logs <args> --json` as on-call runs it, against this test's indices: the lines it prints. */
async function weirLogs(args: string[]): Promise<LogHit[]> {
  const { stdout } = await execFileP(
    process.execPath,
    ["cli/weir.mjs", "logs", ...args, "--json", "--prefix", prefix],
    { cwd: PROJECT_ROOT, env: { ...process.env, WEIR_ENV: "development" }, maxBuffer: 64 << 20 },
  );
  return stdout
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as LogHit);
}

/** Runs `tasks` with at most `limit` at a time. */
async function inParallel<T>(limit: number, tasks: Array<() => Promise<T>>): Promise<T[]> {
  const out: T[] = new Array(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, tasks.length) }, async () => {
      while (next < tasks.length) {
        const i = next++;
        out[i] = await (tasks[i] as () => Promise<T>)();
      }
    }),
  );
  return out;
}

/**
 * Each phone or ID number the detector finds in any string of `v` (tokens are not found: the detector
 * skips them). Not its other kinds: a span id of 16 decimal digits can pass for a bank card, and span
 * ids are not masked.
 */

test("simulator files -> weir ship -> Kafka -> weir run logs -> both stores: every line once, every trace complete, context exact, no PII", async () => {
  const began = Date.now();
  const phase = (what: string) => console.log(`# ${((Date.now() - began) / 1000).toFixed(0)} s: ${what}`);
  // Event time ends about now, so every line is in the past when the searches run.
  const start = Date.now() - RUN_MS;
  startWorker();
  const configFile = join(root, "ship.yaml");
  writeFileSync(configFile, simulatorShipConfig(simDir, join(root, "ship-data"), shipTopics));
  mkdirSync(simDir);
  ship = startShip(["--config", configFile]);
  const shipPort = await shipMetricsPort(ship);
  phase("worker and shipper started");

  const written = await writeServiceLogs(start);
  phase(`simulator wrote ${written.records} records`);
  const files = readSimFiles();
  const lines = files.flatMap((f) => f.lines);
  const rotated = files.filter((f) => f.generation > 0);
  assert.ok(lines.length > 5000, `${lines.length} app and access lines`);
  assert.ok(rotated.length >= 6, `${rotated.length} rotated files`);

  // Everything the simulator wrote is acknowledged by Kafka, and every app and access line is in both
  // stores. A wait that times out says so and goes on: the comparisons below name what is missing.
  const waitFor = async (what: string, ok: () => Promise<boolean>, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await ok().catch(() => false))) {
      if (Date.now() > deadline) {
        console.log(
          `# timed out waiting for ${what}\n--- weir ship:\n${ship?.output().slice(-3000)}\n--- weir run logs:\n${workerLog.slice(-3000)}`,
        );
        return;
      }
      await sleep(1000);
    }
  };
  let sent = 0;
  await waitFor(
    `weir ship to send all ${written.records} records`,
    async () => {
      sent = await metricSum(shipPort, "weir_ship_events_sent_total");
      return sent >= written.records;
    },
    120_000,
  );
  phase(`${sent} records shipped`);
  let counts = { es: 0, ch: 0 };
  await waitFor(
    `all ${lines.length} lines in both stores`,
    async () => {
      counts = await storedCounts();
      return counts.es >= lines.length && counts.ch >= lines.length;
    },
    180_000,
  );
  await sleep(3000); // and no more arrive
  counts = await storedCounts();
  phase(`stored: Elasticsearch ${counts.es}, ClickHouse ${counts.ch} of ${lines.length} lines`);

  // ---- every shipped line once in both stores, where the files say ----
  const docs = await allDocuments(es, `${prefix}-*`);
  const fileIds = new Set<string>();
  for (const d of docs) {
    const fileId = (d.source.weir as { source?: { file_id: string } } | undefined)?.source?.file_id;
    if (fileId !== undefined) fileIds.add(fileId);
  }
  identify(files, fileIds);
  const unnamed = files.filter((f) => f.fileId === undefined && f.lines.length > 0);
  assert.deepEqual(
    unnamed.map((f) => `${f.path} (${f.lines.length} lines)`),
    [],
    "files with no line in Elasticsearch",
  );
  const expected = new Map(lines.map((l) => [l.id, l]));
  assert.equal(expected.size, lines.length, "the files' lines have distinct ids");

  type Doc = {
    "@timestamp": number;
    service: { name: string };
    event: { dataset: string };
    trace?: { id: string };
    url?: { query?: string };
    http?: { request: { referrer?: string } };
    log: { offset: number };
    weir: { source: { file_id: string; seq: number } };
  };
  const seenEs = new Set<string>();
  const docAt = new Set<string>();
  for (const d of docs) {
    const l = expected.get(d.id);
    assert.ok(l, `a document no file holds: ${d.id}`);
    assert.ok(!seenEs.has(d.id), `document ${d.id} twice`);
    seenEs.add(d.id);
    const s = d.source as unknown as Doc;
    const at = `${s.weir.source.file_id}@${s.log.offset}`;
    assert.ok(!docAt.has(at), `(file id, offset) ${at} twice in Elasticsearch`);
    docAt.add(at);
    assert.deepEqual(
      {
        fileId: s.weir.source.file_id,
        offset: s.log.offset,
        seq: s.weir.source.seq,
        ts: s["@timestamp"],
        service: s.service.name,
        dataset: s.event.dataset,
        traceId: s.trace?.id ?? null,
        urlQuery: s.url?.query ?? null,
        referrer: s.http?.request.referrer ?? null,
      },
      {
        fileId: l.id.slice(0, l.id.lastIndexOf(":")),
        offset: l.offset,
        seq: l.seq,
        ts: l.ts,
        service: l.service,
        dataset: l.dataset,
        traceId: l.traceId,
        urlQuery: l.urlQuery,
        referrer: l.referrer,
      },
      `${l.file}@${l.offset}`,
    );
  }
  assert.equal(docs.length, lines.length, "every line in Elasticsearch");
  assert.ok(
    lines.some((l) => l.urlQuery !== null) && lines.some((l) => l.referrer !== null),
    "the simulator's access lines carry query strings and referrers, kept in both stores",
  );

  const rows = await chRows<{
    id: string;
    source_file_id: string;
    source_offset: string;
    source_seq: string;
    ts_ms: string;
    service: string;
    dataset: string;
    trace_id: string;
    url_query: string;
    referrer: string;
  }>(
    `SELECT id, source_file_id, source_offset, source_seq, ts_ms, service, dataset, trace_id, url_query, referrer FROM ${database}.logs FINAL`,
  );
  const seenCh = new Set<string>();
  for (const r of rows) {
    const l = expected.get(r.id);
    assert.ok(l, `a ClickHouse row no file holds: ${r.id}`);
    const at = `${r.source_file_id}:${r.source_offset}`;
    assert.equal(at, r.id, "a shipped row's id is its (file id, offset)");
    assert.ok(!seenCh.has(at), `(file id, offset) ${at} twice in ClickHouse`);
    seenCh.add(at);
    assert.deepEqual(
      [Number(r.source_seq), Number(r.ts_ms), r.service, r.dataset, r.trace_id, r.url_query, r.referrer],
      [l.seq, l.ts, l.service, l.dataset, l.traceId ?? "", l.urlQuery ?? "", l.referrer ?? ""],
      `${l.file}@${l.offset} in ClickHouse`,
    );
  }
  assert.equal(rows.length, lines.length, "every line in ClickHouse");
  const [raw] = await chRows<{ n: string }>(`SELECT count() AS n FROM ${database}.logs`);
  phase(
    `each line once in both stores (ClickHouse held ${raw?.n} rows before FINAL); ${files.length} files, ${rotated.length} of them rotated`,
  );

  // ---- every trace complete: all through the search code, a sample through the CLI ----
  const traces = new Map<string, FileLine[]>();
  for (const l of lines) {
    if (l.traceId === null) continue;
    const t = traces.get(l.traceId);
    if (t) t.push(l);
    else traces.set(l.traceId, [l]);
  }
  for (const t of traces.values()) t.sort((a, b) => a.ts - b.ts);
  assert.ok(traces.size > 1500, `${traces.size} traces`);
  const from = start - 60_000;
  const to = Date.now() + 60_000;
  const checkTrace = (traceId: string, got: readonly LogHit[], how: string) => {
    const want = traces.get(traceId) as FileLine[];
    assert.deepEqual(got.map((h) => h.id).sort(), want.map((l) => l.id).sort(), `${how} ${traceId}: exactly its lines`);
    assert.deepEqual(
      got.map((h) => h.ts),
      want.map((l) => l.ts),
      `${how} ${traceId}: in time order`,
    );
    for (const h of got) assert.equal(h.ts, expected.get(h.id)?.ts, `${how} ${traceId}: ${h.id}'s time`);
  };
  const search = new LogSearch({ client: es, prefix });
  await inParallel(
    4,
    [...traces.keys()].map((traceId) => async () => {
      const r = await search.trace({ traceId, from, to });
      assert.equal(r.truncated, false);
      checkTrace(traceId, r.lines, "LogSearch.trace");
    }),
  );
  phase(`${traces.size} traces complete through LogSearch.trace`);

  // The CLI on a sample: the traces through most services, ones with a Java stack trace, and others at random.
  const pick = new Rng(SEED);
  const byServices = [...traces].sort(
    (a, b) => new Set(b[1].map((l) => l.service)).size - new Set(a[1].map((l) => l.service)).size,
  );
  const withPay = [...traces].filter(([, ls]) => ls.some((l) => l.service === "pay-svc" && l.dataset === "app"));
  const sample = new Set<string>(byServices.slice(0, 10).map(([id]) => id));
  for (let i = 0; i < 5 && withPay.length > 0; i++) sample.add(withPay[pick.int(withPay.length)]?.[0] as string);
  const all = [...traces.keys()];
  while (sample.size < CLI_TRACES) sample.add(all[pick.int(all.length)] as string);
  await inParallel(
    2,
    [...sample].map((traceId) => async () => {
      checkTrace(
        traceId,
        await weirLogs(["trace", traceId, "--from", String(from), "--to", String(to)]),
        "weir logs trace",
      );
    }),
  );
  phase(`${sample.size} traces complete through weir logs trace`);

  // ---- context: exactly the 5 lines before and after, in the same file ----
  const byGeneration = (service: string, dataset: string) =>
    files.filter((f) => f.service === service && f.dataset === dataset).sort((a, b) => b.generation - a.generation); // oldest (.N) first, the live file last
  const hits: Array<{ file: SimFile; index: number; why: string }> = [];
  const rotatedStreams = [...new Set(rotated.map((f) => `${f.service}/${f.dataset}`))].sort();
  for (const mode of ["rename", "copytruncate"]) {
    const streams = rotatedStreams.filter((name) => written.rotation.get(name) === mode);
    assert.ok(streams.length >= 2, `${streams.length} streams rotated by ${mode}`);
    for (const name of streams.slice(0, 2)) {
      const [service, dataset] = name.split("/") as [string, string];
      const gens = byGeneration(service, dataset);
      const [older, newer] = [gens[0] as SimFile, gens[1] as SimFile];
      hits.push({ file: older, index: 0, why: "a file's first line" });
      hits.push({ file: older, index: older.lines.length - 1, why: `the last line before a rotation (${mode})` });
      hits.push({ file: older, index: older.lines.length - 3, why: `near the end of a rotated file (${mode})` });
      hits.push({ file: newer, index: 0, why: `the first line after a rotation (${mode})` });
      hits.push({ file: newer, index: 2, why: "near the start of a file" });
    }
  }
  const live = files.filter((f) => f.generation === 0 && f.lines.length > 20);
  for (const f of live.slice(0, 2)) hits.push({ file: f, index: f.lines.length - 1, why: "the last line written" });
  const pay = files.find((f) => f.service === "pay-svc" && f.dataset === "app" && f.lines.length > 20);
  if (pay) hits.push({ file: pay, index: Math.floor(pay.lines.length / 2), why: "a log4j file's middle" });
  await inParallel(
    2,
    hits.map(({ file, index, why }) => async () => {
      const hit = file.lines[index] as FileLine;
      const got = await weirLogs(["context", hit.id, "-n", "5"]);
      const want = file.lines.slice(Math.max(0, index - 5), index + 6);
      assert.deepEqual(
        got.map((h) => h.id),
        want.map((l) => l.id),
        `weir logs context ${hit.id} (${why}, ${file.path} line ${index})`,
      );
      assert.deepEqual(
        got.map((h) => h.source?.seq),
        want.map((l) => l.seq),
      );
    }),
  );
  phase(`${hits.length} contexts exact through weir logs context`);

  // ---- no phone or ID number unmasked in either store; each one written is there as a token ----
  const found: string[] = [];
  for (const d of docs) unmaskedPii(d.source, found);
  const rowsAll = await chRows<Record<string, unknown>>(`SELECT * FROM ${database}.logs FINAL`);
  for (const r of rowsAll) unmaskedPii(r, found);
  assert.deepEqual(found.slice(0, 10), [], `${found.length} unmasked values`);
  const piiWritten = written.pii.phones + written.pii.idCards;
  assert.ok(piiWritten > 500, `${piiWritten} PII values written`);
  assert.equal(
    docs.reduce((n, d) => n + piiTokens(JSON.stringify(d.source)), 0),
    piiWritten,
    "one token in Elasticsearch per value written",
  );
  assert.equal(
    rowsAll.reduce((n, r) => n + piiTokens(JSON.stringify(r)), 0),
    piiWritten,
    "one token in ClickHouse per value written",
  );

  // Nothing was dead-lettered, by the shipper or by the worker.
  for (const topic of [shipTopics.dlq, logsDlq]) {
    const high = (await admin.fetchTopicOffsets(topic)).reduce((n, p) => n + Number(p.high), 0);
    assert.equal(high, 0, `${topic} is empty`);
  }
  phase(`no PII unmasked; ${written.pii.phones} phones and ${written.pii.idCards} ID numbers there as tokens`);
  assert.equal(sent, written.records, "weir ship sent each record the simulator wrote, once");
  ship.child.kill("SIGTERM");
  assert.equal((await ship.exited).code, 0, ship.output().slice(-2000));
});
