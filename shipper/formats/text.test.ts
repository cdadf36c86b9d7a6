import assert from "node:assert/strict";
import { test } from "node:test";
import { loadTopicCatalog } from "../../schemas/catalog.ts";
import { codecFor } from "../../schemas/codec.ts";
import type { AppLog } from "../../schemas/types.generated.ts";
import type { RawLine, ShipEntry } from "../types.ts";
import { createLineDecoder, type LineDecoderConfigInput } from "./index.ts";
import { splitTrailingPairs } from "./text.ts";

const catalog = loadTopicCatalog();

function decode(text: string, format: Record<string, unknown> = {}): ShipEntry {
  const decoder = createLineDecoder(
    {
      format: { type: "text", timezone: "Asia/Shanghai", ...format } as LineDecoderConfigInput["format"],
      topic: "logs.app",
      service: "pay-svc",
      host: "pay-1",
    },
    { catalog },
  );
  const bytes = Buffer.from(text);
  const line: RawLine = {
    source: "s",
    file: "/x.log",
    fileId: "t",
    offset: 0,
    end: bytes.length + 1,
    seq: 0,
    bytes,
    size: bytes.length,
  };
  const out: ShipEntry[] = [];
  decoder.decode(line, out);
  return out[0] as ShipEntry;
}

function appLog(e: ShipEntry): AppLog {
  assert.equal(e.topic, "logs.app", e.topic === "dlq.ship" ? codecFor("DeadLetter").decode(e.value).message : "");
  return JSON.parse(JSON.stringify(codecFor("AppLog").decode(e.value)));
}

const LINE =
  "2026-11-20 20:30:00.108 INFO  [http-nio-8080-exec-130] com.live.pay.WalletController [traceId=112c spanId=cba9] - handled RPC /wallet/debit status=200 in 9 ms reqId=q-3z uid=100197442 status=200";

test("the default pattern: local time in the zone, level, thread, logger, trace, message, trailing pairs", () => {
  const log = appLog(decode(LINE));
  assert.equal(log.ts, Date.UTC(2026, 10, 20, 12, 30, 0, 108));
  assert.equal(log.level, "INFO");
  assert.equal(log.logger, "com.live.pay.WalletController");
  assert.equal(log.traceId, "112c");
  assert.equal(log.spanId, "cba9");
  assert.equal(log.message, "handled RPC /wallet/debit status=200 in 9 ms");
  assert.deepEqual(log.attributes, {
    thread: "http-nio-8080-exec-130",
    reqId: "q-3z",
    uid: "100197442",
    status: "200",
  });
  assert.equal(log.error, null);
});

test("pairs: false keeps the message whole; the timezone decides the instant", () => {
  const log = appLog(decode(LINE, { pairs: false, timezone: "UTC" }));
  assert.match(log.message, /in 9 ms reqId=q-3z uid=100197442 status=200$/);
  assert.deepEqual(log.attributes, { thread: "http-nio-8080-exec-130" });
  assert.equal(log.ts, Date.UTC(2026, 10, 20, 20, 30, 0, 108));
});

test("no trace ([]), log4j's comma before the milliseconds, a message made of pairs only", () => {
  const log = appLog(
    decode(
      "2026-11-20 20:30:10,697 WARN [main] com.live.pay.MainController [] - stats heapUsedMb=303 openConnections=28",
    ),
  );
  assert.equal(log.ts, Date.UTC(2026, 10, 20, 12, 30, 10, 697));
  assert.equal(log.level, "WARN");
  assert.deepEqual([log.traceId, log.spanId], [null, null]);
  assert.equal(log.message, "stats");
  assert.deepEqual(log.attributes, { thread: "main", heapUsedMb: "303", openConnections: "28" });
});

test("a merged event: a stack trace after the line is the error; other lines continue the message", () => {
  const withStack = appLog(
    decode(
      `${LINE}\njava.net.SocketTimeoutException: Read timed out\n\tat a.B.c(B.java:1)\nCaused by: java.io.IOException: x\n\t... 3 more`,
    ),
  );
  assert.deepEqual(withStack.error, {
    type: "java.net.SocketTimeoutException",
    message: "Read timed out",
    stack: "\tat a.B.c(B.java:1)\nCaused by: java.io.IOException: x\n\t... 3 more",
  });
  assert.equal(withStack.message, "handled RPC /wallet/debit status=200 in 9 ms");
  const noMessage = appLog(decode(`${LINE}\njava.lang.NullPointerException\n\tat a.B.c(B.java:1)`));
  assert.deepEqual(noMessage.error, {
    type: "java.lang.NullPointerException",
    message: "",
    stack: "\tat a.B.c(B.java:1)",
  });
  const continued = appLog(decode(`${LINE.replace(/ reqId.*/, "")}\nsecond line of the message\nthird`));
  assert.equal(continued.message, "handled RPC /wallet/debit status=200 in 9 ms\nsecond line of the message\nthird");
  assert.equal(continued.error, null);
});

test("a custom pattern: its other named groups are attributes; service and host groups fill those fields", () => {
  const pattern = String.raw`^(?<ts>\S+) \[(?<service>[\w-]+)@(?<host>[\w-]+)\] (?<level>\w+) (?<module>\w+): (?<message>.*)$`;
  const log = appLog(
    decode("2026-11-20T20:30:00.000+08:00 [gift-svc@gift-2] error payments: declined card=visa", { pattern }),
  );
  assert.deepEqual(
    [log.ts, log.service, log.host, log.level, log.message],
    [Date.UTC(2026, 10, 20, 12, 30), "gift-svc", "gift-2", "ERROR", "declined"],
  );
  assert.deepEqual(log.attributes, { module: "payments", card: "visa" });
});

test("a line the pattern does not match is unparsable", () => {
  const e = decode("not a log4j line");
  assert.equal(e.topic, "dlq.ship");
  assert.equal(codecFor("DeadLetter").decode(e.value).reason, "unparsable");
});

test("trailing pairs: read right to left, up to the first word that is not one", () => {
  const attrs: Record<string, string> = {};
  assert.equal(splitTrailingPairs("a=1 then b=2 c= d=x=y", attrs), "a=1 then");
  assert.deepEqual(attrs, { b: "2", c: "", d: "x=y" });
  const repeated: Record<string, string> = {};
  assert.equal(splitTrailingPairs("m k=1 k=2", repeated), "m");
  assert.deepEqual(repeated, { k: "2" });
  assert.equal(splitTrailingPairs("no pairs here", {}), "no pairs here");
  assert.equal(splitTrailingPairs("=5 ok", {}), "=5 ok");
});
