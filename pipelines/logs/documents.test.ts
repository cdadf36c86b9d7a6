import assert from "node:assert/strict";
import { test } from "node:test";
import type { AccessLog, AppLog } from "../../schemas/types.generated.ts";
import {
  accessLogDocument,
  accessLogJson,
  accessLogMapping,
  appLogDocument,
  appLogJson,
  appLogMapping,
  type LogDocument,
} from "./documents.ts";
import { accessLogId } from "./lines.ts";
import { logsTemplates } from "./template.ts";

const T = Date.UTC(2026, 10, 20, 12, 30, 1, 250);

const shipped = { file: "/var/log/gift-svc/app.log", fileId: "9f1c2a", offset: 4096, seq: 37 };

const appLog: AppLog = {
  id: "9f1c2a:4096",
  ts: T,
  service: "gift-svc",
  host: "gift-svc-994d4-0",
  level: "ERROR",
  message: "/gift/send failed with 500 (gift-svc)",
  logger: "gift.send",
  traceId: "272aa8c5b9814212650f29714e0f0b78",
  spanId: "4146a318227b378b",
  error: { type: "*net.OpError", message: "dial tcp 10.20.3.7:6379: i/o timeout", stack: "goroutine 1 [running]" },
  attributes: { reqId: "q-6d", uid: "100072273" },
  source: shipped,
};

const accessLog: AccessLog = {
  id: "q-1o",
  ts: T,
  app: "live",
  system: "gifting",
  service: "gift-svc",
  endpoint: "/gift/send",
  method: "POST",
  status: 503,
  latencyUs: 14377,
  bytesIn: 115,
  bytesOut: 97,
  errorCode: "UPSTREAM_TIMEOUT",
  traceId: "a7a5b7ee72134a847bea30ad5ee7c3b5",
  caller: "gateway",
  uid: 100000002,
  deviceId: "d-9c06397c0920",
  clientIp: "116.228.51.94",
  roomId: 700054,
  userAgent: "live-android/8.4.1",
  urlQuery: "v=8.4.1&from=feed",
  referrer: "https://live.example.com/room/700054",
  host: "gift-svc-994d4-2",
  source: { ...shipped, file: "/var/log/gift-svc/access.log", fileId: "77aa01", offset: 0, seq: 0 },
};

test("an app log line as an ECS document", () => {
  assert.deepEqual(appLogDocument(appLog), {
    "@timestamp": T,
    message: "/gift/send failed with 500 (gift-svc)",
    event: { dataset: "app" },
    log: { level: "ERROR", logger: "gift.send", file: { path: "/var/log/gift-svc/app.log" }, offset: 4096 },
    service: { name: "gift-svc" },
    host: { name: "gift-svc-994d4-0" },
    trace: { id: "272aa8c5b9814212650f29714e0f0b78" },
    span: { id: "4146a318227b378b" },
    error: {
      type: "*net.OpError",
      message: "dial tcp 10.20.3.7:6379: i/o timeout",
      stack_trace: "goroutine 1 [running]",
    },
    attributes: { reqId: "q-6d", uid: "100072273" },
    weir: { source: { file_id: "9f1c2a", seq: 37 } },
  });
  const bare = appLogDocument({
    ...appLog,
    logger: null,
    traceId: null,
    spanId: null,
    error: null,
    attributes: {},
    source: null,
  });
  assert.deepEqual(bare, {
    "@timestamp": T,
    message: appLog.message,
    event: { dataset: "app" },
    log: { level: "ERROR" },
    service: { name: "gift-svc" },
    host: { name: "gift-svc-994d4-0" },
  });
});

test("an access log line as an ECS document: duration in ns, 5xx an ERROR line, a message to search, the query string and referrer", () => {
  const doc = accessLogDocument(accessLog);
  assert.deepEqual(doc, {
    "@timestamp": T,
    message: "POST /gift/send 503 in 14.4 ms",
    event: { dataset: "access", duration: 14_377_000 },
    log: { level: "ERROR", file: { path: "/var/log/gift-svc/access.log" }, offset: 0 },
    service: { name: "gift-svc" },
    host: { name: "gift-svc-994d4-2" },
    http: {
      request: {
        id: "q-1o",
        method: "POST",
        body: { bytes: 115 },
        referrer: "https://live.example.com/room/700054",
      },
      response: { status_code: 503, body: { bytes: 97 } },
    },
    url: { path: "/gift/send", query: "v=8.4.1&from=feed" },
    client: { ip: "116.228.51.94" },
    trace: { id: "a7a5b7ee72134a847bea30ad5ee7c3b5" },
    error: { code: "UPSTREAM_TIMEOUT" },
    user: { id: "100000002" },
    user_agent: { original: "live-android/8.4.1" },
    device: { id: "d-9c06397c0920" },
    weir: { app: "live", system: "gifting", caller: "gateway", room_id: 700054, source: { file_id: "77aa01", seq: 0 } },
  });
  assert.equal(accessLogDocument({ ...accessLog, status: 404 }).log.level, "INFO");
  const plain = accessLogDocument({ ...accessLog, urlQuery: null, referrer: null });
  assert.deepEqual(plain.url, { path: "/gift/send" });
  assert.equal(plain.http?.request.referrer, undefined);
});

test("ids are the same however often a line is shipped; access lines without a source use the request id", () => {
  assert.equal(appLogMapping().id({ key: null, ts: T, value: appLog }), "9f1c2a:4096");
  assert.equal(accessLogId(accessLog), "77aa01:0");
  assert.equal(accessLogId({ ...accessLog, source: null }), "req:gift-svc:q-1o");
});

test("documents go to the daily index of their service and event day", () => {
  const app = appLogMapping();
  const access = accessLogMapping("t_logs");
  assert.equal(app.index({ key: null, ts: 0, value: appLog }), "logs-gift-svc-2026.11.20");
  assert.equal(
    access.index({ key: null, ts: 0, value: { ...accessLog, service: "Room Svc" } }),
    "t_logs-room_svc-2026.11.20",
  );
});

/** Strings that need escaping in JSON, or look like they might. */
const AWKWARD = [
  'say "hi"',
  "C:\\temp\\x",
  "line one\nline two\r\n\ttabbed",
  "bell \u0007 and nul \u0000",
  "emoji 🎁 and 中文",
  "lone \ud83d surrogate",
  "separators \u2028 \u2029",
  "</script>",
  "",
];

test("the JSON text the sink is given is exactly the document, for every shape and any text", () => {
  const apps: AppLog[] = [
    appLog,
    { ...appLog, logger: null, traceId: null, spanId: null, error: null, attributes: {}, source: null },
    { ...appLog, error: { type: "E", message: "m", stack: null } },
    { ...appLog, level: "TRACE", attributes: { only: "one" } },
  ];
  const accesses: AccessLog[] = [
    accessLog,
    {
      ...accessLog,
      errorCode: null,
      traceId: null,
      caller: null,
      uid: null,
      deviceId: null,
      roomId: null,
      userAgent: null,
      urlQuery: null,
      referrer: null,
      source: null,
      status: 200,
      latencyUs: 0,
    },
    { ...accessLog, latencyUs: 123_456_789, uid: 0, roomId: 0 },
  ];
  for (const text of AWKWARD) {
    apps.push({
      ...appLog,
      message: text,
      logger: text,
      host: text,
      error: { type: text, message: text, stack: text },
      attributes: { [text]: text, plain: "x" },
      source: { ...shipped, file: text, fileId: text },
    });
    accesses.push({
      ...accessLog,
      endpoint: text,
      userAgent: text,
      urlQuery: text,
      referrer: text,
      caller: text,
      clientIp: text,
      id: text,
    });
  }
  for (const l of apps) {
    const json = appLogJson(l);
    assert.ok(!json.includes("\n"), "one line");
    assert.deepEqual(JSON.parse(json), JSON.parse(JSON.stringify(appLogDocument(l))), json);
  }
  for (const l of accesses) {
    const json = accessLogJson(l);
    assert.ok(!json.includes("\n"), "one line");
    assert.deepEqual(JSON.parse(json), JSON.parse(JSON.stringify(accessLogDocument(l))), json);
  }
  assert.equal(appLogMapping().toDocument({ key: null, ts: T, value: appLog }), appLogJson(appLog));
  assert.equal(accessLogMapping().toDocument({ key: null, ts: T, value: accessLog }), accessLogJson(accessLog));
});

interface MappingNode {
  type?: string;
  properties?: Record<string, MappingNode>;
  fields?: Record<string, MappingNode>;
  ignore_above?: number;
}

function mappingOf(): { dynamic: boolean; properties: Record<string, MappingNode> } {
  const set = logsTemplates();
  const mappings = set.components.find((c) => c.name === "weir-logs-mappings")?.body.template.mappings;
  return mappings as { dynamic: boolean; properties: Record<string, MappingNode> };
}

function mappedType(path: string[]): string | undefined {
  let node: MappingNode = { properties: mappingOf().properties };
  for (const part of path) {
    const next: MappingNode | undefined = node.properties?.[part];
    if (!next) return undefined;
    node = next;
  }
  return node.type ?? "object";
}

function leaves(o: object, path: string[] = [], out: string[][] = []): string[][] {
  for (const [k, v] of Object.entries(o)) {
    // A flattened field takes any keys below it.
    if (v !== null && typeof v === "object" && mappedType([...path, k]) !== "flattened") leaves(v, [...path, k], out);
    else out.push([...path, k]);
  }
  return out;
}

test("every field a document builder writes is mapped: the mapping is closed (dynamic: false)", () => {
  assert.equal(mappingOf().dynamic, false);
  const docs: LogDocument[] = [appLogDocument(appLog), accessLogDocument(accessLog)];
  for (const doc of docs) {
    for (const path of leaves(doc)) {
      const type = mappedType(path);
      assert.ok(type !== undefined && type !== "object", `${path.join(".")} is not mapped`);
    }
  }
});

test("the mapping has the on-call fields with their types", () => {
  const expected: Record<string, string> = {
    "@timestamp": "date",
    message: "text",
    "log.level": "keyword",
    "service.name": "keyword",
    "host.name": "keyword",
    "trace.id": "keyword",
    "span.id": "keyword",
    "log.logger": "keyword",
    "error.type": "keyword",
    "error.message": "text",
    "error.stack_trace": "text",
    "http.request.method": "keyword",
    "url.path": "keyword",
    "url.query": "text",
    "http.request.referrer": "text",
    "http.response.status_code": "long",
    "event.duration": "long",
    "client.ip": "ip",
    "user.id": "keyword",
    "log.file.path": "keyword",
    "log.offset": "long",
    "weir.source.file_id": "keyword",
    "weir.source.seq": "long",
    "event.dataset": "keyword",
    attributes: "flattened",
  };
  for (const [path, type] of Object.entries(expected)) assert.equal(mappedType(path.split(".")), type, path);
  const message = mappingOf().properties.message;
  assert.deepEqual(message?.fields?.keyword, { type: "keyword", ignore_above: 1024 });
});
