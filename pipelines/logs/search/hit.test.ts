import assert from "node:assert/strict";
import { test } from "node:test";
import type { AccessLog, AppLog } from "../../../schemas/types.generated.ts";
import { accessLogDocument, appLogDocument } from "../documents.ts";
import { toLogHit } from "./hit.ts";

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
