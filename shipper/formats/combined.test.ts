import assert from "node:assert/strict";
import { test } from "node:test";
import { loadTopicCatalog } from "../../schemas/catalog.ts";
import { codecFor } from "../../schemas/codec.ts";
import type { AccessLog, DeadLetter } from "../../schemas/types.generated.ts";
import type { RawLine, ShipEntry } from "../types.ts";
import { timeLocal } from "./combined.ts";
import { createLineDecoder, type LineDecoderConfigInput } from "./index.ts";

const catalog = loadTopicCatalog();

function decode(text: string, format: Record<string, unknown> = {}, over: Partial<LineDecoderConfigInput> = {}) {
  const decoder = createLineDecoder(
    {
      format: { type: "combined", ...format } as LineDecoderConfigInput["format"],
      topic: "logs.access",
      pathTemplate: "/var/log/nginx/{service}.access.log",
      host: "edge-1",
      fields: { app: "live", system: "room" },
      ...over,
    },
    { catalog },
  );
  const bytes = Buffer.from(text);
  const line: RawLine = {
    source: "nginx",
    file: "/var/log/nginx/room-svc.access.log",
    fileId: "ng",
    offset: 10,
    end: 11 + bytes.length,
    seq: 0,
    bytes,
    size: bytes.length,
  };
  const out: ShipEntry[] = [];
  decoder.decode(line, out);
  return out[0] as ShipEntry;
}

function access(e: ShipEntry): AccessLog {
  assert.equal(e.topic, "logs.access", e.topic === "dlq.ship" ? codecFor("DeadLetter").decode(e.value).message : "");
  return JSON.parse(JSON.stringify(codecFor("AccessLog").decode(e.value)));
}

function deadLetter(e: ShipEntry): DeadLetter {
  assert.equal(e.topic, "dlq.ship");
  return codecFor("DeadLetter").decode(e.value);
}

const SOURCE = { file: "/var/log/nginx/room-svc.access.log", fileId: "ng", offset: 10, seq: 0 };

test("nginx combined with $request_time: every field mapped, the query string and referrer kept, the path matched to its template", () => {
  const line =
    '203.0.113.9 - - [20/Nov/2026:20:30:00 +0800] "GET /room/700018/enter?from=feed HTTP/1.1" 200 512 "https://live.example/feed" "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)" 0.023';
  const e = decode(line, { endpoints: ["/room/{id}/enter", "/room/list"] });
  assert.deepEqual(access(e), {
    id: "ng:10",
    ts: Date.UTC(2026, 10, 20, 12, 30, 0),
    app: "live",
    system: "room",
    service: "room-svc",
    endpoint: "/room/{id}/enter",
    method: "GET",
    status: 200,
    latencyUs: 23_000,
    bytesIn: 0,
    bytesOut: 512,
    errorCode: null,
    traceId: null,
    caller: null,
    uid: null,
    deviceId: null,
    clientIp: "203.0.113.9",
    roomId: null,
    userAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)",
    urlQuery: "from=feed",
    referrer: "https://live.example/feed",
    host: "edge-1",
    source: SOURCE,
  });
  assert.deepEqual(e.key, Buffer.from("room-svc"));
  assert.equal(access(decode(line)).endpoint, "/room/700018/enter", "without templates, the path itself");
});

test("Apache combined with %D (microseconds), IPv6, a user, '-' bytes and referer, an escaped quote in the UA", () => {
  const line =
    '2001:db8::7 - alice [20/Nov/2026:12:30:00 +0000] "POST /gift/send HTTP/2.0" 503 - "-" "curl/8.5 \\"quoted\\" agent" 23456';
  const a = access(decode(line, { requestTimeUnit: "us" }));
  assert.equal(a.clientIp, "2001:db8::7");
  assert.equal(a.method, "POST");
  assert.equal(a.endpoint, "/gift/send");
  assert.equal(a.status, 503);
  assert.equal(a.bytesOut, 0);
  assert.equal(a.latencyUs, 23_456);
  assert.equal(a.userAgent, 'curl/8.5 "quoted" agent');
  assert.equal(a.urlQuery, null);
  assert.equal(a.referrer, null);
  assert.equal(a.ts, Date.UTC(2026, 10, 20, 12, 30, 0));
});

test("nginx's \\x22 escapes, '-' user agent, no request time, trailing fields after the user agent", () => {
  const a = access(
    decode('10.0.0.1 - - [01/Jan/2026:00:00:00 -0500] "GET / HTTP/1.1" 304 0 "-" "Mozilla \\x22x\\x22"'),
  );
  assert.equal(a.userAgent, 'Mozilla "x"');
  assert.equal(a.latencyUs, 0, "no request time: 0");
  assert.equal(a.ts, Date.UTC(2026, 0, 1, 5, 0, 0));
  const b = access(decode('10.0.0.1 - - [01/Jan/2026:00:00:00 +0000] "GET /a HTTP/1.1" 200 5 "-" "-" "198.51.100.7"'));
  assert.equal(b.userAgent, null);
  assert.equal(b.latencyUs, 0);
});

test("the query string ends at a fragment; an empty one is none", () => {
  const line = (path: string) => `10.0.0.1 - - [01/Jan/2026:00:00:00 +0000] "GET ${path} HTTP/1.1" 200 5 "" "-"`;
  assert.equal(access(decode(line("/a?x=1&y=%E4%B8%AD#top"))).urlQuery, "x=1&y=%E4%B8%AD");
  assert.equal(access(decode(line("/a?"))).urlQuery, null);
  assert.equal(access(decode(line("/a#x?y"))).urlQuery, null);
  assert.equal(access(decode(line("/a?x=1"))).referrer, null, 'an empty "" referer is none');
});

test('a request nginx could not read (400 with "-") is still a request', () => {
  const a = access(decode('198.51.100.2 - - [20/Nov/2026:20:30:01 +0800] "-" 400 0 "-" "-"'));
  assert.deepEqual([a.method, a.endpoint, a.status], ["-", "-", 400]);
});

test("requestTime: required dead-letters lines without one; none ignores it", () => {
  const without = '10.0.0.1 - - [01/Jan/2026:00:00:00 +0000] "GET /a HTTP/1.1" 200 5 "-" "ua"';
  const dl = deadLetter(decode(without, { requestTime: "required" }));
  assert.equal(dl.reason, "missing-field");
  assert.match(dl.message, /no request time/);
  assert.equal(access(decode(`${without} 1.5`, { requestTime: "none" })).latencyUs, 0);
  assert.equal(access(decode(`${without} 1.5`, { requestTimeUnit: "ms" })).latencyUs, 1500);
});

test("a line that is not a combined log, or has a broken time, is dead-lettered", () => {
  const a = deadLetter(decode('{"ts":1}'));
  assert.equal(a.reason, "unparsable");
  assert.match(a.message, /not a combined access log line/);
  assert.equal(a.schema, "AccessLog");
  const b = deadLetter(decode('10.0.0.1 - - [99/Foo/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "ua"'));
  assert.equal(b.reason, "wrong-type");
  assert.match(b.message, /"time_local": expected dd\/Mon\/yyyy:HH:mm:ss ±hhmm/);
});

test("time_local", () => {
  assert.equal(timeLocal("10/Oct/2000:13:55:36 -0700"), Date.UTC(2000, 9, 10, 20, 55, 36));
  assert.ok(Number.isNaN(timeLocal("10/Oct/2000:13:55:36")));
  assert.ok(Number.isNaN(timeLocal("10/oct/2000:13:55:36 +0000")));
});
