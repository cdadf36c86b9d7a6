import assert from "node:assert/strict";
import { test } from "node:test";
import type { AccessLog, AppLog } from "../../../schemas/types.generated.ts";
import { accessLogDocument, appLogDocument } from "../documents.ts";
import { type LogHit, toLogHit } from "./hit.ts";

/** Every leaf of a document: [path, value]; the attributes map is one leaf. */
function leaves(o: object, path: string[] = []): Array<[string, unknown]> {
  return Object.entries(o).flatMap(([k, v]) =>
    v !== null && typeof v === "object" && k !== "attributes" ? leaves(v, [...path, k]) : [[[...path, k].join("."), v]],
  );
}

/** Every value a hit holds, its nested ones too (error, source, attributes as one). */
function values(hit: LogHit): unknown[] {
  const out: unknown[] = [];
  for (const [k, v] of Object.entries(hit)) {
    if (v !== null && typeof v === "object" && k !== "attributes") out.push(...Object.values(v));
    else out.push(v);
  }
  return out;
}

const T = Date.UTC(2026, 10, 20, 12, 30, 1, 250);
const source = { file: "/var/log/gift-svc/app.log", fileId: "9f1c2a-1024", offset: 4096, seq: 37 };

test("an app line's document as a hit: store-independent names, absent fields left out", () => {
  const app: AppLog = {
    id: "9f1c2a-1024:4096",
    ts: T,
    service: "gift-svc",
    host: "gift-svc-0",
    level: "ERROR",
    message: "send failed for 138****8000[pii:ph_6cecbd2c8d965364]",
    logger: "gift.send",
    traceId: "t1",
    spanId: "s1",
    error: { type: "TimeoutError", message: "timed out", stack: "at x" },
    attributes: { reqId: "q-1" },
    source,
  };
  assert.deepEqual(toLogHit({ _id: app.id, _index: "logs-gift-svc-2026.11.20", _source: appLogDocument(app) }), {
    id: "9f1c2a-1024:4096",
    index: "logs-gift-svc-2026.11.20",
    ts: T,
    time: "2026-11-20T12:30:01.250Z",
    service: "gift-svc",
    host: "gift-svc-0",
    level: "ERROR",
    dataset: "app",
    message: "send failed for 138****8000[pii:ph_6cecbd2c8d965364]",
    logger: "gift.send",
    traceId: "t1",
    spanId: "s1",
    error: { type: "TimeoutError", message: "timed out", stack: "at x" },
    attributes: { reqId: "q-1" },
    source: { fileId: "9f1c2a-1024", seq: 37, path: "/var/log/gift-svc/app.log", offset: 4096 },
  });
  const bare = toLogHit({
    _id: "x",
    _index: "i",
    _source: appLogDocument({
      ...app,
      logger: null,
      traceId: null,
      spanId: null,
      error: null,
      attributes: {},
      source: null,
    }),
  });
  assert.deepEqual(Object.keys(bare), ["id", "index", "ts", "time", "service", "host", "level", "dataset", "message"]);
});

test("an access line's document as a hit: request, status, latency in ms, caller", () => {
  const access: AccessLog = {
    id: "q-1o",
    ts: T,
    app: "live",
    system: "gifting",
    service: "gift-svc",
    endpoint: "/gift/send",
    method: "POST",
    status: 503,
    latencyUs: 14377,
    bytesIn: 1,
    bytesOut: 2,
    errorCode: "UPSTREAM_TIMEOUT",
    traceId: "t1",
    caller: "gateway",
    uid: 100000002,
    deviceId: null,
    clientIp: "10.0.0.1",
    roomId: null,
    userAgent: null,
    urlQuery: null,
    referrer: null,
    host: "gift-svc-1",
    source: null,
  };
  const hit = toLogHit({ _id: "req:gift-svc:q-1o", _index: "i", _source: accessLogDocument(access) });
  assert.equal(hit.dataset, "access");
  assert.equal(hit.message, "POST /gift/send 503 in 14.4 ms");
  assert.equal(hit.level, "ERROR");
  assert.equal(hit.method, "POST");
  assert.equal(hit.endpoint, "/gift/send");
  assert.equal(hit.status, 503);
  assert.equal(hit.latencyMs, 14.377);
  assert.equal(hit.caller, "gateway");
  assert.equal(hit.uid, "100000002");
  assert.deepEqual(hit.error, { code: "UPSTREAM_TIMEOUT" });
  assert.equal(hit.source, undefined);
  // A timestamp stored as text (another writer) is read too.
  assert.equal(toLogHit({ _index: "i", _source: { "@timestamp": "2026-11-20T12:30:01.250Z" } }).ts, T);
});

test("every value a stored document holds is in its hit: weir logs search --json prints the whole line", () => {
  const access: AccessLog = {
    id: "q-9",
    ts: T,
    app: "live",
    system: "gifting",
    service: "gift-svc",
    endpoint: "/gift/send",
    method: "POST",
    status: 200,
    latencyUs: 2500,
    bytesIn: 115,
    bytesOut: 97,
    errorCode: "BALANCE_NOT_ENOUGH",
    traceId: "t9",
    caller: "gateway",
    uid: 100000009,
    deviceId: "d-9",
    clientIp: "10.0.0.9",
    roomId: 700009,
    userAgent: "live-android/8.4.1",
    urlQuery: "v=8.4.1&from=feed",
    referrer: "https://live.example.com/room/700009",
    host: "gift-svc-9",
    source: { ...source, file: "/var/log/gift-svc/access.log" },
  };
  const app: AppLog = {
    id: "a-9",
    ts: T,
    service: "gift-svc",
    host: "gift-svc-9",
    level: "WARN",
    message: "slow",
    logger: "com.live.gift.GiftController",
    traceId: "t9",
    spanId: "s9",
    error: { type: "E", message: "m", stack: "at y" },
    attributes: { thread: "http-nio-1" },
    source,
  };
  for (const doc of [accessLogDocument(access), appLogDocument(app)]) {
    const hit = toLogHit({ _id: "x", _index: "i", _source: doc });
    const held = values(hit);
    for (const [path, value] of leaves(doc)) {
      // @timestamp is ts; event.duration is latencyMs (ns to ms).
      if (path === "@timestamp" || path === "event.duration") continue;
      assert.ok(
        held.some((v) => JSON.stringify(v) === JSON.stringify(value)),
        `${path} = ${JSON.stringify(value)} is not in the hit`,
      );
    }
  }
  const hit = toLogHit({ _id: "x", _index: "i", _source: accessLogDocument(access) });
  assert.deepEqual(
    [hit.userAgent, hit.bytesIn, hit.bytesOut, hit.urlQuery, hit.referrer, hit.requestId, hit.roomId, hit.deviceId],
    ["live-android/8.4.1", 115, 97, "v=8.4.1&from=feed", "https://live.example.com/room/700009", "q-9", 700009, "d-9"],
  );
});
