import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { loadTopicCatalog } from "../../schemas/catalog.ts";
import { codecFor, decodeAny } from "../../schemas/codec.ts";
import type { AppLog, DeadLetter } from "../../schemas/types.generated.ts";
import type { RawLine, ShipEntry } from "../types.ts";
import { createLineDecoder, DLQ_RAW_LIMIT, type LineDecoder, type LineDecoderConfigInput } from "./index.ts";

const catalog = loadTopicCatalog();
const NOW = 1_800_000_000_000;

function decoder(config: LineDecoderConfigInput): LineDecoder {
  return createLineDecoder(config, { catalog, host: "shipper-1", now: () => NOW });
}

function line(text: string | Buffer, over: Partial<RawLine> = {}): RawLine {
  const bytes = typeof text === "string" ? Buffer.from(text) : text;
  return {
    source: "app",
    file: "/var/log/gift-svc/app.log",
    fileId: "fid",
    offset: 100,
    end: 100 + bytes.length + 1,
    seq: 7,
    bytes,
    size: bytes.length,
    ...over,
  };
}

function decodeOne(d: LineDecoder, l: RawLine): ShipEntry {
  const out: ShipEntry[] = [];
  d.decode(l, out);
  assert.equal(out.length, 1, "exactly one entry per line");
  return out[0] as ShipEntry;
}

function plain<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

const appCodec = codecFor("AppLog");
const accessCodec = codecFor("AccessLog");
const dlCodec = codecFor("DeadLetter");

function appLog(e: ShipEntry): AppLog {
  assert.equal(e.topic, "logs.app");
  return plain(appCodec.decode(e.value));
}

function deadLetter(e: ShipEntry): DeadLetter {
  assert.equal(e.topic, "dlq.ship", "a dead letter");
  return dlCodec.decode(e.value);
}

const ACCESS = {
  id: "q-6y",
  ts: 1795177800175,
  app: "live",
  system: "gifting",
  service: "gift-svc",
  endpoint: "/gift/send",
  method: "POST",
  status: 200,
  latencyUs: 12377,
  bytesIn: 115,
  bytesOut: 97,
  clientIp: "111.200.107.138",
  host: "gift-svc-e84c4-2",
};
const COIN = {
  id: "c-2v",
  ts: 1795177800123,
  type: "GIFT",
  uid: 100001301,
  amount: 10,
  balanceAfter: 3576,
  ip: "183.192.193.142",
};

describe("routing by field", () => {
  const d = () =>
    decoder({
      route: { field: "kind", topics: { access: "logs.access", coin: "events.coin" }, default: "logs.app" },
      service: "gift-svc",
    });

  test("each line goes to the topic its field names, in that topic's schema", () => {
    const dec = d();
    const a = decodeOne(dec, line(JSON.stringify({ kind: "access", ...ACCESS })));
    const c = decodeOne(dec, line(JSON.stringify({ kind: "coin", ...COIN })));
    const other = decodeOne(dec, line(JSON.stringify({ kind: "audit", ts: 1, message: "hello" })));
    assert.equal(a.topic, "logs.access");
    assert.equal(accessCodec.decode(a.value).endpoint, "/gift/send");
    assert.equal(c.topic, "events.coin");
    assert.equal(codecFor("CoinTxn").decode(c.value).amount, 10);
    const log = appLog(other);
    assert.equal(log.message, "hello");
    assert.equal(log.attributes.kind, "audit", "the route field of an AppLog is an attribute like any other");
    assert.deepEqual(dec.topics, ["logs.access", "events.coin", "logs.app", "dlq.ship"]);
  });

  test("a value no route lists, without a default, is dead-lettered as unroutable", () => {
    const dec = decoder({ route: { field: "meta.kind", topics: { access: "logs.access" } } });
    const dl = deadLetter(decodeOne(dec, line(JSON.stringify({ meta: { kind: "coin" }, ...COIN }))));
    assert.equal(dl.reason, "unroutable");
    assert.match(dl.message, /"meta\.kind" is "coin", which route\.topics does not list \(access\)/);
    assert.equal(dl.schema, null, "no schema was chosen");
    assert.equal(dec.counts.deadLetters.unroutable, 1);
  });
});

describe("keys", () => {
  test("the catalog's key of the topic by default, as UTF-8 bytes", () => {
    assert.deepEqual(
      decodeOne(decoder({ topic: "logs.access" }), line(JSON.stringify(ACCESS))).key,
      Buffer.from("gift-svc"),
    );
    assert.deepEqual(
      decodeOne(decoder({ topic: "events.coin" }), line(JSON.stringify(COIN))).key,
      Buffer.from("100001301"),
    );
  });

  test("keyField, a dotted path into the record; null when the record has no value there", () => {
    const byTrace = decoder({ topic: "logs.app", keyField: "traceId" });
    const withTrace = JSON.stringify({
      ts: 1,
      service: "s",
      message: "m",
      traceId: "tr-1",
      attributes: { reqId: "q-9" },
    });
    assert.deepEqual(decodeOne(byTrace, line(withTrace)).key, Buffer.from("tr-1"));
    assert.equal(decodeOne(byTrace, line(JSON.stringify({ ts: 1, service: "s", message: "m" }))).key, null);
    const byReq = decoder({ topic: "logs.app", keyField: "attributes.reqId" });
    assert.deepEqual(decodeOne(byReq, line(withTrace)).key, Buffer.from("q-9"));
  });
});

describe("enrichment", () => {
  test("source, host (only when the line has none) and service from the path template", () => {
    const dec = decoder({ format: "logback", topic: "logs.app", pathTemplate: "/var/log/{service}/*.log" });
    const l = line('{"@timestamp":"2026-11-20T20:30:00.040+08:00","message":"m","level":"INFO"}');
    const log = appLog(decodeOne(dec, l));
    assert.equal(log.service, "gift-svc");
    assert.equal(log.host, "shipper-1", "the shipper's host when neither line nor config names one");
    assert.equal(log.id, "fid:100");
    assert.deepEqual(log.source, { file: "/var/log/gift-svc/app.log", fileId: "fid", offset: 100, seq: 7 });
    const own = appLog(decodeOne(dec, line('{"@timestamp":"2026-11-20T20:30:00Z","message":"m","HOSTNAME":"pod-3"}')));
    assert.equal(own.host, "pod-3");
  });

  test("config host and service fill in; the line's own values win", () => {
    const dec = decoder({ topic: "logs.app", host: "cfg-host", service: "cfg-svc" });
    const none = appLog(decodeOne(dec, line('{"ts":1,"message":"m"}')));
    assert.deepEqual([none.service, none.host], ["cfg-svc", "cfg-host"]);
    const own = appLog(decodeOne(dec, line('{"ts":1,"message":"m","service":"line-svc","host":"line-host"}')));
    assert.deepEqual([own.service, own.host], ["line-svc", "line-host"]);
  });

  test("fields: AppLog attributes (the line's own win), path captures besides service too", () => {
    const dec = decoder({
      topic: "logs.app",
      pathTemplate: "/var/log/{service}/{stream}.log",
      fields: { env: "prod", canary: true, shard: 3 },
    });
    const log = appLog(decodeOne(dec, line('{"ts":1,"message":"m","attributes":{"env":"staging"}}')));
    assert.deepEqual(log.attributes, { env: "staging", canary: "true", shard: "3", stream: "app" });
    assert.equal(log.service, "gift-svc");
  });

  test("fields fill the schema fields of the same name when the line lacks them; other schemas get host, service, source", () => {
    const dec = decoder({ topic: "logs.access", host: "cfg-host", fields: { app: "live", system: "other", env: "x" } });
    const { app: _app, system: _system, host: _host, ...rest } = ACCESS;
    const a = accessCodec.decode(decodeOne(dec, line(JSON.stringify({ ...rest, system: "gifting" }))).value);
    assert.deepEqual([a.app, a.system, a.host], ["live", "gifting", "cfg-host"]);
    assert.deepEqual(plain(a.source), { file: "/var/log/gift-svc/app.log", fileId: "fid", offset: 100, seq: 7 });
  });
});

describe("mapping to AppLog", () => {
  test("levels: any case, synonyms, pino numbers; unknown ones read as INFO and are counted", () => {
    const dec = decoder({ topic: "logs.app", service: "s" });
    const level = (v: unknown) => appLog(decodeOne(dec, line(JSON.stringify({ ts: 1, level: v, message: "m" })))).level;
    assert.equal(level("warning"), "WARN");
    assert.equal(level("Warn"), "WARN");
    assert.equal(level("SEVERE"), "ERROR");
    assert.equal(level("crit"), "FATAL");
    assert.equal(level("notice"), "INFO");
    assert.equal(level(35), "INFO");
    assert.equal(level(45), "WARN");
    assert.equal(dec.counts.unknownLevels, 0);
    assert.equal(level("chatty"), "INFO");
    assert.equal(level(true), "INFO");
    assert.equal(dec.counts.unknownLevels, 2);
    const logback = decoder({ format: "logback", topic: "logs.app", service: "s" });
    const fatal = '{"@timestamp":"2026-11-20T20:30:00Z","level":"ERROR","level_value":50000,"message":"m"}';
    assert.equal(appLog(decodeOne(logback, line(fatal))).level, "FATAL", "log4j's FATAL through logback");
  });

  test("attributes are strings: numbers and booleans as JSON text, nested objects flattened with dots, arrays as JSON, nulls left out", () => {
    const dec = decoder({ format: "pino", topic: "logs.app" });
    const text = JSON.stringify({
      level: 30,
      time: 5,
      name: "svc",
      msg: "m",
      n: 1.5,
      ok: false,
      http: { status: 200, req: { path: "/x" } },
      tags: ["a", 1],
      gone: null,
      err: { type: "E", message: "boom", stack: "E: boom\n    at x", code: "ECONNRESET" },
    });
    const log = appLog(decodeOne(dec, line(text)));
    assert.deepEqual(log.attributes, {
      n: "1.5",
      ok: "false",
      "http.status": "200",
      "http.req.path": "/x",
      tags: '["a",1]',
      "err.code": "ECONNRESET",
    });
    assert.deepEqual(log.error, { type: "E", message: "boom", stack: "E: boom\n    at x" });
  });

  test("json `fields` maps other JSON shapes onto AppLog; ISO timestamps without an offset read in `timezone`", () => {
    const dec = decoder({
      format: { type: "json", fields: { ts: "timestamp", message: "msg", level: "severity" }, timezone: "+08:00" },
      topic: "logs.app",
      service: "s",
    });
    const log = appLog(
      decodeOne(dec, line('{"timestamp":"2026-11-20 20:30:00.5","severity":"warning","msg":"hi","ts":"kept"}')),
    );
    assert.equal(log.ts, Date.UTC(2026, 10, 20, 12, 30, 0, 500));
    assert.equal(log.level, "WARN");
    assert.equal(log.message, "hi");
    assert.equal(log.attributes.ts, "kept", "once mapped elsewhere, `ts` is just an attribute");
  });

  test("event schemas take ISO-8601 timestamps too", () => {
    const dec = decoder({ topic: "logs.access" });
    const e = decodeOne(dec, line(JSON.stringify({ ...ACCESS, ts: "2026-11-20T12:30:00.175Z" })));
    assert.equal(accessCodec.decode(e.value).ts, 1795177800175);
    assert.equal(e.ts, 1795177800175, "the Kafka timestamp is the event time");
  });
});

describe("dead letters", () => {
  const access = () => decoder({ topic: "logs.access" });

  test("the record: deterministic id, keyed by it, the origin, the expected schema, raw bytes and their size", () => {
    const bad = line(`{"id":"q-6y","ts":"yesterday"${",x".repeat(10)}`, { offset: 4242 });
    const entry = decodeOne(access(), bad);
    const dl = deadLetter(entry);
    assert.equal(dl.id, "fid:4242:malformed-json");
    assert.deepEqual(entry.key, Buffer.from(dl.id));
    assert.equal(entry.ts, NOW);
    assert.deepEqual(entry.position, {
      source: "app",
      file: bad.file,
      fileId: "fid",
      offset: 4242,
      end: bad.end,
      seq: 7,
    });
    assert.deepEqual(plain({ ...dl, raw: undefined, message: undefined }), {
      id: "fid:4242:malformed-json",
      ts: NOW,
      component: "ship",
      reason: "malformed-json",
      origin: {
        topic: null,
        partition: null,
        offset: null,
        file: "/var/log/gift-svc/app.log",
        fileId: "fid",
        fileOffset: 4242,
        host: "shipper-1",
      },
      schema: "AccessLog",
      rawSize: bad.size,
      truncated: false,
      headers: {},
    });
    assert.deepEqual(dl.raw, bad.bytes);
    assert.match(dl.message, /^not valid JSON: .*cut short/);
    // The same line decoded again (a replay after a crash) gives the same record but for its time.
    const again = deadLetter(
      decodeOne(createLineDecoder({ topic: "logs.access" }, { catalog, host: "shipper-1", now: () => NOW }), bad),
    );
    assert.deepEqual(again, dl);
  });

  test("malformed-json: cut lines, and JSON that is not an object", () => {
    const dec = access();
    assert.equal(deadLetter(decodeOne(dec, line('{"id":"q-6y","ts":179517'))).reason, "malformed-json");
    const arr = deadLetter(decodeOne(dec, line("[1,2]")));
    assert.equal(arr.reason, "malformed-json");
    assert.match(arr.message, /expected a JSON object per line, got \[1,2\]/);
    const text = deadLetter(decodeOne(dec, line("2026-11-20 20:30:00 INFO hello")));
    assert.match(text.message, /if this file is not JSON lines, set the source's format/);
    assert.equal(dec.counts.deadLetters["malformed-json"], 3);
  });

  test("wrong-type names the field; the encoder never coerces", () => {
    const dec = access();
    const reason = (over: Record<string, unknown>) => {
      const dl = deadLetter(decodeOne(dec, line(JSON.stringify({ ...ACCESS, ...over }))));
      assert.equal(dl.reason, "wrong-type");
      return dl.message;
    };
    assert.equal(
      reason({ ts: "yesterday" }),
      `"ts": expected a number (epoch ms) or an ISO-8601 string, got "yesterday"`,
    );
    assert.equal(reason({ ts: false }), `"ts": expected a number (epoch ms) or an ISO-8601 string, got false`);
    assert.equal(reason({ status: "200" }), `"status": expected an int (a whole number within ±2^31), got "200"`);
    assert.equal(reason({ status: 200.5 }), `"status": expected an int (a whole number within ±2^31), got 200.5`);
    assert.equal(reason({ uid: "100" }), `"uid": expected a long (a whole number) or null, got "100"`);
    assert.equal(reason({ method: 7 }), `"method": expected a string, got 7`);
    const coin = deadLetter(
      decodeOne(decoder({ topic: "events.coin" }), line(JSON.stringify({ ...COIN, type: "TIP" }))),
    );
    assert.equal(coin.message, `"type": expected one of RECHARGE, GIFT, WITHDRAW, REFUND, CHARGEBACK, got "TIP"`);
    const device = decoder({ topic: "events.device" });
    const nested = deadLetter(
      decodeOne(
        device,
        line(
          '{"id":"r","ts":1,"deviceId":"d","installId":"i","platform":"IOS","osVersion":"1","appVersion":"1","build":{"fingerprint":"","model":5}}',
        ),
      ),
    );
    assert.equal(nested.reason, "wrong-type");
    assert.equal(nested.message, `"build.model": expected a string, got 5`);
    assert.equal(nested.schema, "DeviceReport");
  });

  test("missing-field: no timestamp, a required field absent or null, an AppLog without any service", () => {
    const { ts: _ts, ...noTs } = ACCESS;
    const a = deadLetter(decodeOne(access(), line(JSON.stringify(noTs))));
    assert.deepEqual(
      [a.reason, a.message],
      ["missing-field", `no timestamp: "ts" is missing (every event needs its time)`],
    );
    const { clientIp: _ip, ...noIp } = ACCESS;
    const b = deadLetter(decodeOne(access(), line(JSON.stringify(noIp))));
    assert.deepEqual([b.reason, b.message], ["missing-field", `"clientIp": is missing; AccessLog requires a string`]);
    const c = deadLetter(decodeOne(access(), line(JSON.stringify({ ...ACCESS, endpoint: null }))));
    assert.equal(c.message, `"endpoint": is null; AccessLog requires a string`);
    const app = deadLetter(decodeOne(decoder({ topic: "logs.app" }), line('{"ts":1,"message":"m"}')));
    assert.equal(app.reason, "missing-field");
    assert.match(app.message, /^"service": .*set service: <name>/);
    const pino = deadLetter(decodeOne(decoder({ format: "pino", topic: "logs.app" }), line('{"level":30,"name":"s"}')));
    assert.equal(pino.message, `no timestamp: "time" is missing (every event needs its time)`);
  });

  test("invalid-utf8: checked strictly before parsing, the first bad byte named", () => {
    const good = Buffer.from(JSON.stringify({ ...ACCESS, userAgent: "直播/8.4" }));
    assert.equal(decodeOne(access(), line(good)).topic, "logs.access", "valid multi-byte UTF-8 passes");
    const bad = Buffer.concat([good.subarray(0, 20), Buffer.from([0xc3, 0x28, 0xff]), good.subarray(20)]);
    const dl = deadLetter(decodeOne(access(), line(bad)));
    assert.equal(dl.reason, "invalid-utf8");
    assert.match(dl.message, /^invalid UTF-8 at byte 20 \(c328ff/);
    // Overlong encodings and UTF-16 surrogates are not UTF-8 either, though a lenient decoder would read them.
    for (const seq of [
      [0xc0, 0xaf],
      [0xed, 0xa0, 0x80],
      [0xf4, 0x90, 0x80, 0x80],
    ]) {
      const b = Buffer.concat([Buffer.from('{"a":"'), Buffer.from(seq), Buffer.from('"}')]);
      assert.equal(deadLetter(decodeOne(access(), line(b))).reason, "invalid-utf8", Buffer.from(seq).toString("hex"));
    }
  });

  test("oversized: a line the source cut, and an event over maxEventBytes; raw is kept up to 64 KiB", () => {
    const big = Buffer.from(JSON.stringify({ ...ACCESS, blob: "x".repeat(100_000) }));
    const cut = deadLetter(decodeOne(access(), line(big.subarray(0, 80_000), { size: big.length })));
    assert.equal(cut.reason, "oversized");
    assert.match(cut.message, new RegExp(`the line is ${big.length} bytes and the source kept only the first 80000`));
    assert.equal(cut.raw.length, DLQ_RAW_LIMIT);
    assert.deepEqual(cut.raw, big.subarray(0, DLQ_RAW_LIMIT));
    assert.equal(cut.rawSize, big.length);
    assert.equal(cut.truncated, true);
    const limited = decoder({ topic: "logs.access", maxEventBytes: 50_000 });
    const whole = deadLetter(decodeOne(limited, line(big)));
    assert.equal(whole.reason, "oversized");
    assert.match(whole.message, /more than maxEventBytes \(50000\)/);
  });

  test("unparsable: a text line the pattern does not match", () => {
    const dec = decoder({ format: "text", topic: "logs.app", service: "pay-svc" });
    const dl = deadLetter(decodeOne(dec, line("\tat com.live.Orphan.frame(Orphan.java:1)")));
    assert.equal(dl.reason, "unparsable");
    assert.match(dl.message, /does not match the text pattern/);
  });

  test("binary: a line of NUL bytes (a copytruncate hole); a hole before a line is skipped", () => {
    const dec = access();
    const hole = deadLetter(decodeOne(dec, line(Buffer.alloc(5000))));
    assert.equal(hole.reason, "binary");
    assert.match(hole.message, /5000 bytes, all NUL: a hole in the file/);
    const after = Buffer.concat([Buffer.alloc(300), Buffer.from(JSON.stringify(ACCESS))]);
    const e = decodeOne(dec, line(after));
    assert.equal(e.topic, "logs.access");
    assert.equal(accessCodec.decode(e.value).id, "q-6y");
    assert.equal(dec.counts.nulPrefixes, 1);
  });

  test("counts by reason and events", () => {
    const dec = access();
    decodeOne(dec, line(JSON.stringify(ACCESS)));
    decodeOne(dec, line("{"));
    decodeOne(dec, line(JSON.stringify({ ...ACCESS, status: "x" })));
    assert.equal(dec.counts.events, 1);
    assert.equal(dec.counts.deadLetters["malformed-json"], 1);
    assert.equal(dec.counts.deadLetters["wrong-type"], 1);
  });
});

describe("config mistakes are refused when the decoder is made, with what to do", () => {
  const make = (config: LineDecoderConfigInput, dlqTopic?: string) => () =>
    createLineDecoder(config, { catalog, ...(dlqTopic ? { dlqTopic } : {}) });
  test("topics and schemas", () => {
    assert.throws(make({ topic: "logs.nope" }), /topic: logs\.nope is not in the topic catalog/);
    assert.throws(make({}), /name the topic the lines go to/);
    assert.throws(
      make({ topic: "logs.app", route: { field: "k", topics: { a: "logs.app" } } }),
      /topic or route, not both/,
    );
    assert.throws(
      make({ format: "pino", topic: "logs.access" }),
      /topic logs\.access holds AccessLog events, and format pino makes AppLog/,
    );
    assert.throws(
      make({ topic: "logs.app" }, "logs.access"),
      /the DLQ topic logs\.access holds AccessLog records, not DeadLetter/,
    );
    assert.throws(
      make({ format: { type: "raw" }, service: "s", route: { field: "k", topics: { a: "logs.app" } } }),
      /format raw has no fields to route by/,
    );
  });
  test("enrichment that no line could supply", () => {
    assert.throws(
      make({ format: "logback", topic: "logs.app" }),
      /format logback lines do not name their service: set service/,
    );
    assert.throws(
      make({ format: "combined", topic: "logs.access", service: "s" }),
      /AccessLog needs "app".*fields\.app/,
    );
    assert.throws(
      make({ topic: "logs.access", fields: { status: "ok" } }),
      /fields\.status: "status": expected an int/,
    );
    assert.throws(make({ topic: "logs.app", pathTemplate: "/var/log/*.log" }), /pathTemplate .* captures nothing/);
    assert.throws(
      make({ format: { type: "text", timezone: "Mars/Olympus" }, topic: "logs.app", service: "s" }),
      /unknown time zone "Mars\/Olympus"/,
    );
    assert.throws(
      make({ format: { type: "text", pattern: "^(?<message>.*)$" }, topic: "logs.app", service: "s" }),
      /needs a named group \(\?<ts>/,
    );
  });
  test("the agent's whole source config is accepted as it is (its other keys ignored)", () => {
    const d = createLineDecoder(
      { topic: "logs.access", paths: ["/var/log/*.log"], maxLineBytes: 1 } as LineDecoderConfigInput,
      {
        catalog,
      },
    );
    assert.equal(d.format, "json");
  });
});

test("every entry's value is a single-object-encoded record of its topic's schema", () => {
  const dec = decoder({ topic: "logs.access" });
  for (const text of [JSON.stringify(ACCESS), "{"]) {
    const e = decodeOne(dec, line(text));
    const { schema } = decodeAny(e.value);
    assert.equal(schema.name, catalog.topic(e.topic).schema);
  }
});

test("a byte order mark before the first line is not part of it; an empty line is a dead letter that says so", () => {
  const dec = decoder({ topic: "logs.access" });
  const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(ACCESS))]);
  assert.equal(decodeOne(dec, line(bom, { offset: 0 })).topic, "logs.access");
  const empty = deadLetter(decodeOne(dec, line("")));
  assert.deepEqual(
    [empty.reason, empty.message],
    ["malformed-json", "an empty line: JSON lines hold one object per line"],
  );
});

test("raw: the line (or merged event) is the message, read at the decoder's clock, at the configured level", () => {
  const dec = decoder({ format: { type: "raw", level: "WARN" }, topic: "logs.app", service: "legacy" });
  const log = appLog(decodeOne(dec, line("disk almost full\n  /var at 97%")));
  assert.deepEqual(
    [log.ts, log.level, log.message, log.service, log.host, log.id],
    [NOW, "WARN", "disk almost full\n  /var at 97%", "legacy", "shipper-1", "fid:100"],
  );
});

describe("JSON nested too deep (a line must not overflow the stack)", () => {
  const deep = (open: string, close: string, n: number, inner = "1") => open.repeat(n) + inner + close.repeat(n);
  const APP = '{"ts":1795177800175,"level":"info","message":"m","service":"gift-svc"';
  const cases: Array<[string, "json" | "pino" | "logback", string]> = [
    ["a 100,000-deep array", "json", `${APP},"x":${deep("[", "]", 100_000, "")}}`],
    ["a 5,000-deep attributes object", "json", `${APP},"attributes":${deep('{"a":', "}", 5000)}}`],
    ["a 5,000-deep error object", "pino", `${APP},"err":${deep('{"a":', "}", 5000)}}`],
    ["a 5,000-deep field of a logback line", "logback", `${APP},"mdc":${deep('{"a":', "}", 5000)}}`],
    ["a line that is only a 100,000-deep array", "json", deep("[", "]", 100_000, "")],
  ];
  for (const [what, format, text] of cases) {
    test(`${format}: ${what} is dead-lettered as too-deep, with the limit`, () => {
      const d = decoder({ format, topic: "logs.app", service: "gift-svc" });
      const dl = deadLetter(decodeOne(d, line(text)));
      assert.equal(dl.reason, "too-deep", dl.message);
      assert.match(dl.message, /^JSON nested deeper than 64 levels \(the source's maxJsonDepth\) at character \d+/);
      assert.equal(d.counts.deadLetters["too-deep"], 1);
    });
  }

  test("an AccessLog line nested too deep, routed or not", () => {
    const d = decoder({ format: "json", topic: "logs.access" });
    const dl = deadLetter(decodeOne(d, line(`{"id":"x","app":${deep("[", "]", 70, "")}}`)));
    assert.equal(dl.reason, "too-deep");
    const routed = decoder({ format: "json", route: { field: "kind", topics: { a: "logs.app" } } });
    assert.equal(deadLetter(decodeOne(routed, line(deep("[", "]", 100_000, "")))).reason, "too-deep");
  });

  test("at the limit a line is an event; brackets inside strings, escaped quotes included, do not count", () => {
    const d = decoder({ format: "json", topic: "logs.app", maxJsonDepth: 5 });
    // The line's object is level 1: attributes 2, then 3 more levels.
    const ok = appLog(decodeOne(d, line(`${APP},"attributes":{"a":{"b":{"c":[1]}}}}`)));
    assert.equal(ok.attributes["a.b.c"], "[1]");
    assert.equal(deadLetter(decodeOne(d, line(`${APP},"attributes":{"a":{"b":{"c":[[1]]}}}}`))).reason, "too-deep");
    const quoted = `${APP},"message":"[[[[[[{{{{{{ \\" [[[[[[","attributes":{"k":"\\\\"}}`;
    assert.equal(appLog(decodeOne(d, line(quoted))).message, '[[[[[[{{{{{{ " [[[[[[');
  });
});
