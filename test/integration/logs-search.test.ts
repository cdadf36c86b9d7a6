// weir logs search | trace | context | histogram | tail and the HTTP API, against the local stack's
// real Elasticsearch. The lines are the simulator's (several services, traces that cross them), given
// the file positions a shipper would (fileId, offset, seq), masked like the pipeline masks them, and
// indexed with the real document mapper into indices under a prefix of this run's own; every command
// runs as a child process (`node cli/weir.mjs logs ...`), the way on-call runs it.
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { ClickHouseClient } from "@clickhouse/client";
import type { Client } from "@elastic/elasticsearch";
import pino from "pino";
import type { EventWriter, RecordTypes, SimStream, StreamSummary } from "../../infra/simulator/event-writer.ts";
import { TrafficGenerator } from "../../infra/simulator/generator.ts";
import { GroundTruth } from "../../infra/simulator/ground-truth.ts";
import { loadScenario } from "../../infra/simulator/scenario.ts";
import { PROJECT_ROOT } from "../../infra/stack/config.ts";
import { OPENAPI } from "../../pipelines/logs/api/openapi.ts";
import { hashToken } from "../../pipelines/logs/api/tokens.ts";
import { accessLogDocument, appLogDocument } from "../../pipelines/logs/documents.ts";
import { loadPiiKey } from "../../pipelines/logs/pii/key.ts";
import { PiiMasker } from "../../pipelines/logs/pii/masker.ts";
import { accessLogRow, appLogRow } from "../../pipelines/logs/rows.ts";
import type { LogHit } from "../../pipelines/logs/search/hit.ts";
import { logsTableStatements } from "../../pipelines/logs/table.ts";
import { logsTemplates } from "../../pipelines/logs/template.ts";
import type { AccessLog, AppLog } from "../../schemas/types.generated.ts";
import { DailyIndexNamer } from "../../sinks/elasticsearch/index-name.ts";
import { installTemplates } from "../../sinks/elasticsearch/templates.ts";
import { clickhouseClient, elasticsearchClient, endpoints, requireStack, uniqueName } from "../support/stack.ts";

const quiet = pino({ level: "silent" });
const PHONE = "13800138000";
const WEIR = join(PROJECT_ROOT, "cli", "weir.mjs");

/** A line as the test knows it: its record, where it was "read", its _id. */
interface Line {
  id: string;
  dataset: "app" | "access";
  service: string;
  ts: number;
  level: string;
  traceId: string | null;
  fileId: string;
  seq: number;
  message: string;
  record: AppLog | AccessLog;
}

const prefix = uniqueName("t_logs");
const namer = new DailyIndexNamer(prefix);
const templates = logsTemplates({ prefix, name: prefix });
const masker = new PiiMasker({}, loadPiiKey({ WEIR_ENV: "development" }));
const database = uniqueName("t_logs_search");
let es: Client;
let ch: ClickHouseClient;
let lines: Line[] = [];
let tmp: string;
const TOKENS = { all: "wlt_test-all-services", gift: "wlt_test-gift-only" };
let tokensFile: string;

/** Keeps the simulator's app and access records per stream; drops the business events. */
class MemorySink implements EventWriter {
  readonly streams = new Map<string, Array<AppLog | AccessLog>>();
  written = 0;
  stream<K extends keyof RecordTypes>(service: string, kind: K): SimStream<RecordTypes[K]> {
    if (kind !== "app" && kind !== "access") return { write: () => {} };
    const key = `${service}/${kind}`;
    const list = this.streams.get(key) ?? [];
    this.streams.set(key, list);
    return {
      write: (r: RecordTypes[K]) => {
        list.push(r as AppLog | AccessLog);
        this.written++;
      },
    };
  }
  async flush(): Promise<void> {}
  async close(): Promise<StreamSummary[]> {
    return [];
  }
}

/** The simulator's lines over `runMs` from `start`, with shipper positions, masked, and a few lines holding a phone number. */
function simulate(start: number, runMs: number, seed: number, withPhones = false): Line[] {
  const sink = new MemorySink();
  const gen = new TrafficGenerator(
    {
      seed,
      start,
      runMs,
      rate: 150,
      diurnal: false,
      users: 2000,
      streamers: 40,
      scenario: loadScenario("incidents"),
      scenarioName: "incidents",
      fraud: 0,
    },
    sink,
    new GroundTruth(undefined),
  );
  gen.runUntil(start + runMs, Number.POSITIVE_INFINITY);
  gen.finish();
  const gift = sink.streams.get("gift-svc/app") ?? [];
  for (let i = 0; withPhones && i < 3; i++) {
    const ts = start + 5_000 + i * 1_000;
    gift.push({
      ...(gift[0] as AppLog),
      ts,
      level: "WARN",
      message: `recharge refused for +86 138 0013 8000 (attempt ${i + 1})`,
      traceId: null,
      spanId: null,
      error: null,
      attributes: {},
    });
  }
  const out: Line[] = [];
  for (const [key, records] of sink.streams) {
    records.sort((a, b) => a.ts - b.ts);
    const fileId = `${createHash("sha256").update(`${seed}/${key}`).digest("hex").slice(0, 32)}-4096`;
    let offset = 0;
    records.forEach((r, seq) => {
      const source = { file: `/var/log/${key}.log`, fileId, offset, seq };
      offset += 200 + (seq % 50);
      if ("level" in r) {
        const app: AppLog = { ...r, id: `${fileId}:${source.offset}`, message: masker.maskText(r.message), source };
        out.push(line(app, "app", app.id, app.level, app.message));
      } else {
        const access: AccessLog = { ...r, source };
        const doc = accessLogDocument(access);
        out.push(line(access, "access", `${fileId}:${source.offset}`, doc.log.level, doc.message));
      }
    });
  }
  return out;
}

function line(record: AppLog | AccessLog, dataset: "app" | "access", id: string, level: string, message: string): Line {
  const s = record.source as NonNullable<AppLog["source"]>;
  return {
    id,
    dataset,
    service: record.service,
    ts: record.ts,
    level,
    traceId: record.traceId,
    fileId: s.fileId,
    seq: s.seq,
    message,
    record,
  };
}

async function index(batch: readonly Line[]): Promise<void> {
  for (let i = 0; i < batch.length; i += 2000) {
    const operations = batch
      .slice(i, i + 2000)
      .flatMap((l) => [
        { create: { _index: namer.name(l.service, l.ts), _id: l.id } },
        l.dataset === "app" ? appLogDocument(l.record as AppLog) : accessLogDocument(l.record as AccessLog),
      ]);
    const res = await es.bulk({ operations });
    assert.equal(res.errors, false, JSON.stringify(res.items.find((it) => it.create?.error)));
  }
  await es.indices.refresh({ index: `${prefix}-*` });
  // The pipeline writes every line to ClickHouse too: the rows it would write.
  await ch.insert({
    table: `${database}.logs`,
    values: batch.map((l) =>
      l.dataset === "app" ? appLogRow(l.record as AppLog, l.id) : accessLogRow(l.record as AccessLog, l.id),
    ),
    format: "JSONEachRow",
  });
  // What every later expectation counts from.
  if (batch !== lines) lines.push(...batch);
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    WEIR_LOGS_INDEX_PREFIX: prefix,
    WEIR_LOGS_DATABASE: database,
    WEIR_ES_URL: endpoints.elasticsearchUrl,
    WEIR_CLICKHOUSE_URL: endpoints.clickhouseUrl,
    WEIR_ENV: "development",
    NO_COLOR: "1",
  };
  delete env.WEIR_PII_KEY;
  delete env.WEIR_PII_KEY_FILE;
  delete env.WEIR_LOGS_TOKENS;
  return env;
}

/** `weir logs <args>` as a child process. */
function weir(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [WEIR, "logs", ...args],
      { env: childEnv(), maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: number }).code ?? 1) : 0;
        resolve({ code: typeof code === "number" ? code : 1, stdout, stderr });
      },
    );
  });
}

function ndjson(text: string): LogHit[] {
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as LogHit);
}

/** Reads a child's stream until `done(text so far)` holds; fails (not hangs) if the child ends first. */
function readUntil(child: ChildProcess, stream: "stdout" | "stderr", done: (text: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const s = child[stream];
    if (!s) return reject(new Error(`no ${stream}`));
    const onData = (chunk: Buffer) => {
      text += chunk.toString("utf8");
      if (done(text)) {
        s.off("data", onData);
        child.off("exit", onExit);
        resolve(text);
      }
    };
    const onExit = (code: number | null) =>
      reject(new Error(`the child exited (${code}) before it printed what was awaited; it printed:\n${text}`));
    s.on("data", onData);
    child.once("exit", onExit);
  });
}

const isError = (l: Line) => l.level === "ERROR";
const byTimeThenSeq = (a: Line, b: Line) => a.ts - b.ts || a.seq - b.seq;

before(async () => {
  await requireStack();
  es = elasticsearchClient();
  ch = clickhouseClient();
  for (const stmt of logsTableStatements(database)) await ch.command({ query: stmt });
  tmp = mkdtempSync(join(tmpdir(), "weir-logs-search-"));
  tokensFile = join(tmp, "tokens.yaml");
  writeFileSync(
    tokensFile,
    `tokens:\n  - name: sre\n    sha256: ${hashToken(TOKENS.all)}\n    services: "*"\n  - name: gift-oncall\n    sha256: ${hashToken(TOKENS.gift)}\n    services: [gift-svc]\n`,
  );
  await installTemplates(es, templates, { logger: quiet });
  lines = simulate(Date.now() - 20 * 60_000, 20_000, 7, true);
  await index(lines);
});

after(async () => {
  if (ch) {
    await ch.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    await ch.close();
  }
  if (!es) return;
  const rows = (await es.cat.indices(
    { index: `${prefix}-*`, format: "json", h: "index" },
    { ignore: [404] },
  )) as unknown;
  for (const r of Array.isArray(rows) ? (rows as Array<{ index: string }>) : []) {
    await es.indices.delete({ index: r.index, ignore_unavailable: true });
  }
  for (const t of templates.indexTemplates) await es.indices.deleteIndexTemplate({ name: t.name }, { ignore: [404] });
  for (const c of templates.components) await es.cluster.deleteComponentTemplate({ name: c.name }, { ignore: [404] });
  await es.close();
  rmSync(tmp, { recursive: true, force: true });
});

test("the simulated lines: several services, a few thousand lines, traces across services", () => {
  const services = new Set(lines.map((l) => l.service));
  assert.ok(services.size >= 5, `${services.size} services`);
  assert.ok(lines.length >= 2000, `${lines.length} lines`);
  assert.ok(lines.filter(isError).length > 0);
});

test("search: a service's errors, newest first, exactly the lines that match; hit ids for context", async () => {
  const from = Date.now() - 60 * 60_000;
  const r = await weir([
    "search",
    "--since",
    "1h",
    "--service",
    "gift-svc",
    "--level",
    "error",
    "--limit",
    "10000",
    "--json",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const hits = ndjson(r.stdout);
  const expected = lines.filter((l) => l.service === "gift-svc" && isError(l) && l.ts >= from);
  assert.ok(expected.length > 0);
  assert.deepEqual(hits.map((h) => h.id).sort(), expected.map((l) => l.id).sort());
  for (let i = 1; i < hits.length; i++) assert.ok((hits[i - 1] as LogHit).ts >= (hits[i] as LogHit).ts, "newest first");
  // The same with the query language, and an access line's fields come back named for people.
  const q = await weir(["search", "service:gift-svc AND level:error", "--since", "1h", "--limit", "10000", "--json"]);
  assert.deepEqual(
    ndjson(q.stdout).map((h) => h.id),
    hits.map((h) => h.id),
  );
  const access = hits.find((h) => h.dataset === "access");
  if (access) assert.ok((access.status ?? 0) >= 500 && access.endpoint?.startsWith("/gift/"));

  // For people: aligned columns, the id last, a footer with the count.
  const human = await weir([
    "search",
    "--since",
    "1h",
    "--service",
    "gift-svc",
    "--level",
    "error",
    "--limit",
    "5",
    "--utc",
  ]);
  assert.equal(human.code, 0, human.stderr);
  const printed = human.stdout.trimEnd().split("\n");
  assert.equal(printed.length, Math.min(5, expected.length));
  printed.forEach((p, i) => {
    const h = hits[i] as LogHit;
    assert.match(p, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} {2}ERROR {2}gift-svc {2}/);
    assert.ok(p.endsWith(`  ${h.id}`), p);
  });
  assert.match(
    human.stderr,
    new RegExp(`${Math.min(5, expected.length)} of ${expected.length} lines between .* UTC, newest first`),
  );
});

test("search by a phone number: found by its token, never shown or sent raw", async () => {
  for (const typed of [PHONE, '"+86 138-0013-8000"', `phone:${PHONE}`]) {
    const r = await weir(["search", typed, "--since", "1h", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const hits = ndjson(r.stdout);
    assert.equal(hits.length, 3, typed);
    for (const h of hits) {
      assert.match(h.message, /^recharge refused for 138\*\*\*\*8000\[pii:ph_[0-9a-f]{16}\] \(attempt \d\)$/);
      assert.ok(!r.stdout.includes(PHONE));
    }
  }
});

test("a bare word finds the logger and attributes too: a Java class's lines by its whole or simple name, in both stores", async () => {
  const java = lines.filter((l) => l.dataset === "app" && ((l.record as AppLog).logger ?? "").startsWith("com.live."));
  assert.ok(java.length > 0, "the simulator's Java services log with their class names");
  const logger = ((java[0] as Line).record as AppLog).logger as string;
  const expected = lines.filter((l) => l.dataset === "app" && (l.record as AppLog).logger === logger);
  const simple = logger.slice(logger.lastIndexOf(".") + 1);
  const bySimple = lines.filter(
    (l) =>
      l.dataset === "app" && ((l.record as AppLog).logger ?? "").toLowerCase().endsWith(`.${simple.toLowerCase()}`),
  );
  for (const [typed, want] of [
    [logger, expected],
    [simple, bySimple],
  ] as const) {
    const r = await weir(["search", typed, "--since", "1h", "-n", "10000", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      ndjson(r.stdout)
        .map((h) => h.id)
        .sort(),
      want.map((l) => l.id).sort(),
      `${typed}: the lines its class logged`,
    );
  }
  // ClickHouse counts the same lines (the logger as a substring, in any case: the whole name is exact).
  const h = await weir(["histogram", logger, "--since", "1h", "--store", "clickhouse", "--json"]);
  assert.equal(h.code, 0, h.stderr);
  assert.equal((JSON.parse(h.stdout) as { total: number }).total, expected.length);
  // An attribute's whole value: a request id the app line carries as reqId.
  const withReq = lines.find((l) => l.dataset === "app" && (l.record as AppLog).attributes.reqId !== undefined);
  assert.ok(withReq, "app lines carry their request's id as reqId");
  const reqId = (withReq.record as AppLog).attributes.reqId as string;
  const r = await weir(["search", reqId, "--since", "1h", "-n", "10000", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(
    ndjson(r.stdout).some((x) => x.id === withReq.id),
    `${reqId} finds the line whose reqId it is`,
  );
});

test("search --json prints the whole stored line: an access line's user agent, bytes, query string, referrer, room", async () => {
  const all = await weir(["search", "status:*", "--since", "1h", "-n", "10000", "--json"]);
  assert.equal(all.code, 0, all.stderr);
  const hits = new Map(ndjson(all.stdout).map((x) => [x.id, x]));
  const web = lines.find((l) => l.dataset === "access" && (l.record as AccessLog).referrer !== null);
  assert.ok(web, "the simulator's browser clients send a referrer");
  const rec = web.record as AccessLog;
  const hit = hits.get(web.id);
  assert.ok(hit, "the access line is found");
  assert.deepEqual(
    [hit.userAgent, hit.bytesIn, hit.bytesOut, hit.urlQuery, hit.referrer, hit.app, hit.system, hit.requestId],
    [rec.userAgent, rec.bytesIn, rec.bytesOut, rec.urlQuery, rec.referrer, rec.app, rec.system, rec.id],
  );
  if (rec.roomId !== null) assert.equal(hit.roomId, rec.roomId);
  const q = await weir(["search", `query:"${rec.urlQuery}"`, "--since", "1h", "-n", "10000", "--json"]);
  assert.equal(q.code, 0, q.stderr);
  assert.ok(
    ndjson(q.stdout).some((x) => x.id === web.id),
    "query: searches the query string",
  );
});

test("a bad query: exit 2, the mistake with a caret under it and what to do", async () => {
  const r = await weir(["search", "sevice:gift-svc level:error", "--since", "1h"]);
  assert.equal(r.code, 2);
  assert.match(
    r.stderr,
    /unknown field "sevice": did you mean service\? \(column 1\)\n {2}sevice:gift-svc level:error\n {2}\^{6}\n {2}what to do: fields:/,
  );
  const bad = await weir(["search", "--since", "15 minutes"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /since "15 minutes" is not a period\n {2}what to do: a number and a unit/);
});

/** The trace with the most services among the lines. */
function richestTrace(): { traceId: string; lines: Line[] } {
  const traces = new Map<string, Line[]>();
  for (const l of lines) if (l.traceId) traces.set(l.traceId, [...(traces.get(l.traceId) ?? []), l]);
  let best: { traceId: string; lines: Line[] } | undefined;
  for (const [traceId, ls] of traces) {
    const score = new Set(ls.map((l) => l.service)).size * 1000 + ls.length;
    const bestScore = best ? new Set(best.lines.map((l) => l.service)).size * 1000 + best.lines.length : -1;
    if (score > bestScore) best = { traceId, lines: ls };
  }
  assert.ok(best);
  return best;
}

test("trace: every line of the trace across services and indices, in time order", async () => {
  const { traceId, lines: expected } = richestTrace();
  const services = new Set(expected.map((l) => l.service));
  assert.ok(
    services.size >= 2 && expected.length >= 3,
    `the richest trace: ${services.size} services, ${expected.length} lines`,
  );
  const r = await weir(["trace", traceId, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const hits = ndjson(r.stdout);
  assert.deepEqual(hits.map((h) => h.id).sort(), expected.map((l) => l.id).sort(), "complete");
  const sorted = [...expected].sort(byTimeThenSeq);
  assert.deepEqual(
    hits.map((h) => [h.ts, h.source?.seq]),
    sorted.map((l) => [l.ts, l.seq]),
    "ordered by time, then seq",
  );
  const human = await weir(["trace", traceId, "--utc"]);
  assert.equal(human.code, 0, human.stderr);
  const out = human.stdout.trimEnd().split("\n");
  assert.match(out[0] ?? "", new RegExp(`^trace ${traceId} {2}${expected.length} lines, ${services.size} services, `));
  assert.equal(out.length, expected.length + 1);
  // An access line shows its request and status; a called service is indented under its caller.
  const calledAccess = hits.find((h) => h.dataset === "access" && h.caller !== undefined);
  if (calledAccess) {
    const printed = out.find((o) => o.endsWith(calledAccess.id)) ?? "";
    assert.match(
      printed,
      new RegExp(
        ` {4,}${calledAccess.service} +\\w+ +${calledAccess.method} ${calledAccess.endpoint?.replace(/[{}]/g, "\\$&")} ${calledAccess.status}`,
      ),
    );
  }
  const none = await weir(["trace", "0000000000000000ffffffffffffffff"]);
  assert.equal(none.code, 0);
  assert.match(none.stderr, /no lines of trace 0000000000000000ffffffffffffffff between/);
});

test("context: exactly the neighbouring lines of the hit's file, by seq, the hit marked", async () => {
  const byFile = new Map<string, Line[]>();
  for (const l of lines) byFile.set(l.fileId, [...(byFile.get(l.fileId) ?? []), l]);
  const file = [...byFile.values()].sort((a, b) => b.length - a.length)[0] as Line[];
  file.sort((a, b) => a.seq - b.seq);
  const at = Math.floor(file.length / 2);
  const hit = file[at] as Line;
  const r = await weir(["context", hit.id, "-n", "5", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(
    ndjson(r.stdout).map((h) => h.id),
    file.slice(at - 5, at + 6).map((l) => l.id),
  );
  const edge = await weir(["context", (file[1] as Line).id, "-B", "3", "-A", "2", "--json"]);
  assert.deepEqual(
    ndjson(edge.stdout).map((h) => h.source?.seq),
    [0, 1, 2, 3],
  );
  const human = await weir(["context", hit.id, "-n", "2"]);
  const printed = human.stdout.trimEnd().split("\n");
  assert.equal(printed.length, 1 + 5);
  assert.match(printed[3] ?? "", new RegExp(`^> +${hit.seq}  `));
  assert.match(printed[2] ?? "", new RegExp(`^ {2,}${hit.seq - 1}  `));
  const missing = await weir(["context", "no-such-line:0"]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no line with id no-such-line:0/);
});

test("histogram: the buckets count exactly the matching lines per interval, and sum to the query's count", async () => {
  const to = Date.now();
  const from = to - 60 * 60_000;
  const window = ["--from", String(from), "--to", String(to)];
  const r = await weir(["histogram", "level:error", ...window, "--interval", "1m", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const h = JSON.parse(r.stdout) as {
    total: number;
    intervalMs: number;
    buckets: Array<{ start: number; count: number }>;
  };
  const expected = lines.filter((l) => isError(l) && l.ts >= from && l.ts <= to);
  assert.equal(h.intervalMs, 60_000);
  assert.equal(h.total, expected.length);
  assert.equal(
    h.buckets.reduce((n, b) => n + b.count, 0),
    h.total,
  );
  const perMinute = new Map<number, number>();
  for (const l of expected)
    perMinute.set(Math.floor(l.ts / 60_000) * 60_000, (perMinute.get(Math.floor(l.ts / 60_000) * 60_000) ?? 0) + 1);
  for (const b of h.buckets) assert.equal(b.count, perMinute.get(b.start) ?? 0, new Date(b.start).toISOString());
  assert.equal(h.buckets.length, 61, "every minute of the window, empty ones too");
  // The same count as the search of the same query.
  const s = await weir(["search", "level:error", ...window, "--limit", "10000", "--json"]);
  assert.equal(ndjson(s.stdout).length, h.total);
  // For people: a header and one bar per bucket; the busiest bucket has the longest bar.
  const human = await weir(["histogram", "level:error", ...window, "--utc"]);
  assert.equal(human.code, 0, human.stderr);
  const out = human.stdout.trimEnd().split("\n");
  assert.match(out[0] ?? "", new RegExp(`^${expected.length} lines between .* UTC, per 1m$`));
  assert.equal(out.length, 1 + 61);
});

test("histogram from ClickHouse: the same buckets as Elasticsearch's; chosen for windows older than Elasticsearch keeps", async () => {
  const to = Date.now();
  const from = to - 60 * 60_000;
  const args = ["histogram", "level:error OR status:4xx", "--service", "gift-svc", "--service", "room-svc"];
  const window = ["--from", String(from), "--to", String(to), "--interval", "1m", "--json"];
  const fromEs = await weir([...args, ...window, "--store", "elasticsearch"]);
  const fromCh = await weir([...args, ...window, "--store", "clickhouse"]);
  assert.equal(fromCh.code, 0, fromCh.stderr);
  const e = JSON.parse(fromEs.stdout) as { store: string; total: number; buckets: unknown[] };
  const c = JSON.parse(fromCh.stdout) as { store: string; total: number; buckets: unknown[] };
  assert.deepEqual([e.store, c.store], ["elasticsearch", "clickhouse"]);
  assert.ok(e.total > 0);
  assert.deepEqual(c.buckets, e.buckets);
  // Ten days back is beyond Elasticsearch's seven (pipelines/logs/logs.yaml): ClickHouse answers.
  const long = await weir(["histogram", "--since", "10d", "--json"]);
  const h = JSON.parse(long.stdout) as { store: string; total: number; intervalMs: number };
  assert.equal(h.store, "clickhouse");
  assert.equal(h.intervalMs, 6 * 3_600_000);
  assert.equal(h.total, lines.length);
  const human = await weir(["histogram", "--since", "10d", "--utc"]);
  assert.match(human.stdout, /^[\d,]+ lines between .* UTC, per 6h \(ClickHouse\)\n/);
});

test("tail: prints the lines indexed after it started, of its service only, whatever their timestamps", async () => {
  const child = spawn(process.execPath, [WEIR, "logs", "tail", "--service", "gift-svc", "--lines", "0", "--json"], {
    env: childEnv(),
    stdio: ["ignore", "pipe", "pipe"],
  });
  try {
    await readUntil(child, "stderr", (t) => t.includes("following new lines"));
    // Event times 40 minutes back, older than lines already indexed: a time cursor would miss them.
    const late = simulate(Date.now() - 40 * 60_000, 4_000, 99);
    const gift = late.filter((l) => l.service === "gift-svc");
    assert.ok(gift.length > 0 && late.length > gift.length);
    const printed = readUntil(child, "stdout", (t) => ndjson(t).length >= gift.length);
    await index(late);
    const hits = ndjson(await printed);
    assert.deepEqual(hits.map((h) => h.id).sort(), gift.map((l) => l.id).sort());
    child.kill("SIGINT");
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    assert.equal(code, 0);
  } finally {
    child.kill("SIGKILL");
  }
});

interface Api {
  url: string;
  child: ChildProcess;
  output: () => string;
}

async function startApi(): Promise<Api> {
  const child = spawn(process.execPath, [WEIR, "logs", "serve", "--port", "0", "--tokens", tokensFile], {
    env: childEnv(),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let all = "";
  child.stdout?.on("data", (c: Buffer) => {
    all += c.toString("utf8");
  });
  const text = await readUntil(child, "stdout", (t) => /"url":"http:\/\/127\.0\.0\.1:\d+"/.test(t));
  const url = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(text)?.[1] as string;
  return { url, child, output: () => all };
}

async function get(
  api: Api,
  path: string,
  token?: string,
): Promise<{ status: number; body: unknown; headers: Headers }> {
  const res = await fetch(`${api.url}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  const text = await res.text();
  return {
    status: res.status,
    body: res.headers.get("content-type")?.startsWith("application/json") ? JSON.parse(text) : text,
    headers: res.headers,
  };
}

test("the API: 401 without or with a bad token, scopes enforced in the query (403 outside), 400 with the caret, tail as SSE", async () => {
  const api = await startApi();
  try {
    assert.equal((await get(api, "/health")).status, 200);
    assert.deepEqual((await get(api, "/openapi.json")).body, JSON.parse(JSON.stringify(OPENAPI)));

    const none = await get(api, "/v1/logs/search?since=1h");
    assert.equal(none.status, 401);
    assert.equal(none.headers.get("www-authenticate"), 'Bearer realm="weir-logs"');
    assert.equal((none.body as { error: { code: string } }).error.code, "unauthorized");
    assert.equal((await get(api, "/v1/logs/search?since=1h", "wlt_not-a-token")).status, 401);

    // The scoped token sees only gift-svc, and the total is gift-svc's: the scope is in the query.
    const from = Date.now() - 60 * 60_000;
    const scoped = await get(api, `/v1/logs/search?from=${from}&limit=10000`, TOKENS.gift);
    assert.equal(scoped.status, 200);
    const page = scoped.body as { hits: LogHit[]; total: { value: number } };
    const giftLines = lines.filter((l) => l.service === "gift-svc" && l.ts >= from);
    assert.equal(page.total.value, giftLines.length);
    assert.ok(page.hits.every((h) => h.service === "gift-svc"));
    const forbidden = await get(api, "/v1/logs/search?since=1h&service=room-svc", TOKENS.gift);
    assert.equal(forbidden.status, 403);
    assert.match((forbidden.body as { error: { message: string } }).error.message, /may not read service room-svc/);
    assert.equal(
      (await get(api, `/v1/logs/search?since=1h&q=${encodeURIComponent("service:room-svc")}`, TOKENS.gift)).status,
      403,
    );
    assert.equal((await get(api, "/v1/logs/histogram?since=1h&service=room-svc", TOKENS.gift)).status, 403);
    const histogram = await get(api, `/v1/logs/histogram?from=${from}&interval=1m`, TOKENS.gift);
    assert.equal((histogram.body as { total: number }).total, giftLines.length);
    const fromClickHouse = await get(api, `/v1/logs/histogram?from=${from}&interval=1m&store=clickhouse`, TOKENS.gift);
    assert.equal((fromClickHouse.body as { store: string }).store, "clickhouse");
    assert.equal((fromClickHouse.body as { total: number }).total, giftLines.length);

    // A trace through gift-svc and others: the scoped token gets gift-svc's part of it.
    const { traceId, lines: traceLines } = richestTrace();
    const trace = await get(api, `/v1/logs/trace/${traceId}`, TOKENS.gift);
    assert.deepEqual(
      (trace.body as { lines: LogHit[] }).lines.map((h) => h.id).sort(),
      traceLines
        .filter((l) => l.service === "gift-svc")
        .map((l) => l.id)
        .sort(),
    );
    const fullTrace = await get(api, `/v1/logs/trace/${traceId}`, TOKENS.all);
    assert.equal((fullTrace.body as { lines: LogHit[] }).lines.length, traceLines.length);
    // Another service's line is not found with the scoped token (its existence is not told).
    const roomLine = lines.find((l) => l.service === "room-svc") as Line;
    assert.equal((await get(api, `/v1/logs/context/${encodeURIComponent(roomLine.id)}?n=2`, TOKENS.gift)).status, 404);
    const ctx = await get(api, `/v1/logs/context/${encodeURIComponent(roomLine.id)}?n=2`, TOKENS.all);
    assert.equal(ctx.status, 200);
    assert.ok((ctx.body as { lines: LogHit[] }).lines.some((h) => h.id === roomLine.id));

    const bad = await get(api, `/v1/logs/search?q=${encodeURIComponent("status:abc")}`, TOKENS.all);
    assert.equal(bad.status, 400);
    const err = (bad.body as { error: { code: string; message: string; column: number } }).error;
    assert.equal(err.code, "bad_query");
    assert.equal(err.column, 8);
    assert.match(err.message, /\n {2}status:abc\n {9}\^{3}/);
    assert.equal((await get(api, "/v1/logs/search?since=soon", TOKENS.all)).status, 400);
    assert.equal((await get(api, "/v1/logs/nothing", TOKENS.all)).status, 404);

    // Paging: two pages of 5 are the first 10, no line twice.
    const first = (await get(api, `/v1/logs/search?from=${from}&limit=5`, TOKENS.all)).body as {
      hits: LogHit[];
      next: string;
    };
    const second = (await get(api, `/v1/logs/search?from=${from}&limit=5&cursor=${first.next}`, TOKENS.all)).body as {
      hits: LogHit[];
    };
    const ten = (await get(api, `/v1/logs/search?from=${from}&limit=10`, TOKENS.all)).body as { hits: LogHit[] };
    assert.deepEqual(
      [...first.hits, ...second.hits].map((h) => h.id),
      ten.hits.map((h) => h.id),
    );

    // Tail: the backlog first, then the lines indexed after the stream began; of the token's services only.
    const ac = new AbortController();
    const res = await fetch(`${api.url}/v1/logs/tail?backlog=2`, {
      headers: { authorization: `Bearer ${TOKENS.gift}` },
      signal: ac.signal,
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = "";
    const events = () =>
      [...text.matchAll(/event: line\ndata: (.*)\n\n/g)].map((m) => JSON.parse(m[1] as string) as LogHit);
    const until = async (n: number) => {
      while (events().length < n) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`the stream ended after ${events().length} lines`);
        text += decoder.decode(value, { stream: true });
      }
    };
    await until(2);
    assert.ok(events().every((h) => h.service === "gift-svc"));
    const late = simulate(Date.now() - 10 * 60_000, 3_000, 123);
    const gift = late.filter((l) => l.service === "gift-svc");
    await index(late);
    await until(2 + gift.length);
    assert.deepEqual(
      events()
        .slice(2)
        .map((h) => h.id)
        .sort(),
      gift.map((l) => l.id).sort(),
    );
    ac.abort();
    // The server stops polling for a client that left (bounded wait: a tail that never stops fails here).
    for (let i = 0; ; i++) {
      const m = (await get(api, "/metrics")).body as string;
      if (/weir_logs_api_tails_open 0\b/.test(m)) break;
      assert.ok(i < 100, "the tail is still open after its client left");
      await new Promise((r) => setTimeout(r, 100));
    }

    const metrics = await get(api, "/metrics");
    assert.match(metrics.body as string, /weir_logs_api_requests_total\{route="search",status="403"\} 2/);
    // The audit line says who asked (never with what token) and what, the query masked as the pipeline masks lines.
    await get(api, `/v1/logs/search?since=1h&q=${PHONE}`, TOKENS.all);
    // The line is written when the response has finished: wait for it (bounded).
    for (let i = 0; !api.output().includes('"query":"138****8000'); i++) {
      assert.ok(i < 50, "no audit line for the phone search");
      await new Promise((r) => setTimeout(r, 100));
    }
    const log = api.output();
    assert.match(log, /"token":"gift-oncall"/);
    assert.match(log, /"query":"status:abc"/);
    assert.match(log, /"query":"138\*\*\*\*8000\[pii:ph_[0-9a-f]{16}\]"/);
    for (const secret of [TOKENS.all, TOKENS.gift, PHONE]) assert.ok(!log.includes(secret), secret);
  } finally {
    api.child.kill("SIGTERM");
    await new Promise((resolve) => api.child.once("exit", resolve));
  }
});
