// The ClickHouse row and the Elasticsearch document of a line say the same thing: for every field of
// the query language's table (LOG_SCHEMA), the column and the document field hold the same value, so a
// query finds the same lines in both stores. And every column a row or the field table names exists
// in the table's DDL (infra/clickhouse/002_logs.sql and the migrations that alter it).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { columnMismatches, RowBinaryEncoder } from "../../sinks/clickhouse/rowbinary.ts";
import { logDocument } from "./documents.ts";
import { type AccessLog, type AppLog, type LogLine, lineId } from "./lines.ts";
import { LOG_SCHEMA } from "./query/fields.ts";
import { accessMessage, denseLogRow, LOG_COLUMNS, type LogRow, logRow } from "./rows.ts";
import { logsTableStatements } from "./table.ts";

/** The table's columns as its migrations leave it: CREATE TABLE's, then each ADD COLUMN ... AFTER. */
function tableColumns(): Array<{ name: string; type: string }> {
  const [create, ...alters] = logsTableStatements().filter((s) => /^(CREATE TABLE|ALTER TABLE)/.test(s));
  const body = (create as string).slice(
    (create as string).indexOf("(") + 1,
    (create as string).lastIndexOf(")", (create as string).indexOf("ENGINE")),
  );
  const columns = body
    .split("\n")
    .map((l) => l.trim().replace(/,$/, ""))
    .filter(Boolean)
    .map((l) => ({ name: l.slice(0, l.indexOf(" ")), type: l.slice(l.indexOf(" ") + 1).trim() }));
  for (const alter of alters) {
    for (const m of alter.matchAll(/ADD COLUMN ([a-z_]+) ([A-Za-z0-9()]+) AFTER ([a-z_]+)/g)) {
      const at = columns.findIndex((c) => c.name === m[3]);
      assert.ok(at >= 0, `${m[0]}: no column ${m[3]}`);
      columns.splice(at + 1, 0, { name: m[1] as string, type: m[2] as string });
    }
  }
  return columns;
}

const TS = Date.UTC(2026, 10, 20, 12, 30, 0, 123);

const app: AppLog = {
  id: "f-1:2048",
  ts: TS,
  service: "pay-svc",
  host: "pay-svc-0",
  level: "ERROR",
  message: "/wallet/debit failed with 503",
  logger: "com.live.pay.WalletController",
  traceId: "032725aa9e77597fb752fc77ccacd1b0",
  spanId: "b752fc77ccacd1b0",
  error: { type: "java.lang.IllegalStateException", message: "upstream timed out", stack: "at a\n\tat b" },
  attributes: { thread: "http-nio-8080-exec-7", reqId: "q-1", status: "503" },
  source: { file: "/var/log/pay-svc/app.log", fileId: "f-1", offset: 2048, seq: 17 },
};

const access: AccessLog = {
  id: "q-6y",
  ts: TS,
  app: "live",
  system: "gifting",
  service: "gift-svc",
  endpoint: "/gift/send",
  method: "POST",
  status: 503,
  latencyUs: 812_377,
  bytesIn: 115,
  bytesOut: 97,
  errorCode: "UPSTREAM_TIMEOUT",
  traceId: "032725aa9e77597fb752fc77ccacd1b0",
  caller: null,
  uid: 100_043_296,
  deviceId: "d-47e3406d2152",
  clientIp: "111.200.107.138",
  roomId: 700_000,
  userAgent: "live-android/8.4.1",
  urlQuery: "v=8.4.1&from=feed",
  referrer: "https://live.example.com/room/700054",
  host: "gift-svc-e84c4-2",
  source: null,
};

const LINES: LogLine[] = [
  { dataset: "app", log: app },
  {
    dataset: "app",
    log: { ...app, id: "k:1", error: null, attributes: {}, logger: null, traceId: null, source: null },
  },
  { dataset: "access", log: access },
  { dataset: "access", log: { ...access, status: 200, errorCode: null, uid: null, traceId: null } },
];

function at(doc: unknown, path: string): unknown {
  let v = doc;
  for (const part of path.split(".")) v = (v as Record<string, unknown> | undefined)?.[part];
  return v;
}

/** The column's value as the document would hold it: defaults are absent fields. */
function asDocumentValue(row: LogRow, column: string, kind: string): unknown {
  const v = (row as unknown as Record<string, unknown>)[column];
  if (v === undefined || v === "" || v === 0) return undefined;
  if (kind === "duration")
    return (v as number) * (LOG_SCHEMA.clickhouse.durationUnitNs / LOG_SCHEMA.elasticsearch.durationUnitNs);
  if (kind === "id") return String(v);
  return v;
}

describe("rows of the ClickHouse logs table", () => {
  test("every field of the query table holds the same value in the row and in the document", () => {
    for (const line of LINES) {
      const row = logRow({ key: null, ts: line.log.ts, value: line });
      const doc = logDocument(line);
      for (const f of LOG_SCHEMA.fields) {
        assert.deepEqual(
          asDocumentValue(row, f.ch, f.kind),
          at(doc, f.es),
          `${line.dataset} ${lineId(line)}: ${f.name}`,
        );
      }
      const attributes = (doc as { attributes?: Record<string, string> }).attributes ?? {};
      assert.deepEqual(row.attr_keys ?? [], Object.keys(attributes));
      assert.deepEqual(row.attr_values ?? [], Object.values(attributes));
      for (const [ch, es] of [
        ["error_message", "error.message"],
        ["error_stack", "error.stack_trace"],
        ["error_code", "error.code"],
        ["span_id", "span.id"],
        ["dataset", "event.dataset"],
      ] as const) {
        assert.equal(row[ch], at(doc, es), `${line.dataset} ${lineId(line)}: ${ch}`);
      }
      assert.equal(row.ts_ms, doc["@timestamp"]);
      assert.equal(row.ts, Math.floor(TS / 1000), "DateTime takes seconds");
      assert.equal(row.id, lineId(line));
    }
  });

  test("an access line's message and level are the ones its document has", () => {
    assert.equal(accessMessage(access), "POST /gift/send 503 in 812.4 ms");
    assert.equal(logRow({ key: null, ts: TS, value: LINES[2] as LogLine }).level, "ERROR");
    assert.equal(logRow({ key: null, ts: TS, value: LINES[3] as LogLine }).level, "INFO");
  });

  test("a shipped line keeps where it was read", () => {
    const row = logRow({ key: null, ts: TS, value: LINES[0] as LogLine });
    assert.deepEqual(
      [row.source_file, row.source_file_id, row.source_offset, row.source_seq],
      ["/var/log/pay-svc/app.log", "f-1", 2048, 17],
    );
    const direct = logRow({ key: null, ts: TS, value: LINES[1] as LogLine });
    assert.equal(direct.source_file, undefined, "left to the column default");
  });

  test("every column a row writes and the query table names exists in the table", () => {
    const columns = new Set(tableColumns().map((c) => c.name));
    assert.ok(columns.size > 30, `${columns.size} columns read`);
    const written = new Set(LINES.flatMap((line) => Object.keys(logRow({ key: null, ts: TS, value: line }))));
    for (const c of written) assert.ok(columns.has(c), `the row writes ${c}, which the table lacks`);
    for (const c of [
      ...LOG_SCHEMA.fields.map((f) => f.ch),
      LOG_SCHEMA.clickhouse.attrKeys,
      LOG_SCHEMA.clickhouse.attrValues,
      ...LOG_SCHEMA.clickhouse.maskedText,
    ]) {
      assert.ok(columns.has(c), `the query table names ${c}, which the table lacks`);
    }
  });

  test("LOG_COLUMNS are the table's columns (002_logs.sql, then 005's), in its order, with its types", () => {
    const columns = tableColumns();
    assert.deepEqual(
      LOG_COLUMNS.map((c) => c.name),
      columns.map((c) => c.name),
    );
    assert.deepEqual(columnMismatches(LOG_COLUMNS, columns), []);
  });

  test("denseLogRow has every column's key, in order, and logRow's values", () => {
    const variants: LogLine[] = [
      ...LINES,
      { dataset: "app", log: { ...app, error: { type: "E", message: "m", stack: null }, spanId: null } },
      { dataset: "access", log: { ...access, source: { file: "/a.log", fileId: "f-2", offset: 7, seq: 1 } } },
      { dataset: "access", log: { ...access, userAgent: null, deviceId: null, roomId: null, caller: "gw" } },
    ];
    for (const line of variants) {
      const rec = { key: null, ts: TS, value: line };
      const dense = denseLogRow(rec) as unknown as Record<string, unknown>;
      assert.deepEqual(
        Object.keys(dense),
        LOG_COLUMNS.map((c) => c.name),
      );
      const defined = Object.fromEntries(Object.entries(dense).filter(([, v]) => v !== undefined));
      assert.deepEqual(defined, { ...logRow(rec) }, `${line.dataset} ${lineId(line)}`);
    }
  });

  test("every line's dense row fits LOG_COLUMNS' types", () => {
    const encoder = new RowBinaryEncoder(LOG_COLUMNS);
    const out = { buf: Buffer.alloc(64), size: 0 };
    for (const line of LINES) assert.equal(encoder.encode(denseLogRow({ key: null, ts: TS, value: line }), out), null);
  });
});
