// The formats against the simulator, which writes each format the way services do
// (infra/simulator/formats.ts): every app format and business event reads back as the record it was
// written from, and every bad line of a --dirty run is dead-lettered with the reason the ground truth
// gives it, while every other line becomes its event.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { accessLine, appLine, behaviorLine, coinLine, deviceLine } from "../../infra/simulator/formats.ts";
import type { TruthRecord } from "../../infra/simulator/ground-truth.ts";
import type { LineFormat as SimFormat } from "../../infra/simulator/platform.ts";
import { SIMULATE_DEFAULTS, simulate } from "../../infra/simulator/simulate.ts";
import { loadTopicCatalog } from "../../schemas/catalog.ts";
import { codecFor } from "../../schemas/codec.ts";
import type {
  AccessLog,
  AppLog,
  BehaviorEvent,
  CoinTxn,
  DeadLetter,
  DeviceReport,
} from "../../schemas/types.generated.ts";
import type { RawLine, ShipEntry } from "../types.ts";
import { createLineDecoder, type LineDecoderConfigInput } from "./index.ts";
import { MultilineMerger } from "./multiline.ts";
import { TEXT_EVENT_START } from "./text.ts";

const catalog = loadTopicCatalog();
const FILE = "/var/log/pay-svc/app.log";

/** A file's bytes as the tail would give them: lines with offsets, ends and seqs, cut at maxLineBytes. */
function rawLines(buf: Buffer, fileId: string, file = FILE, maxLineBytes = 1 << 20): RawLine[] {
  const lines: RawLine[] = [];
  let start = 0;
  let seq = 0;
  for (let nl = buf.indexOf(10); nl !== -1; nl = buf.indexOf(10, start)) {
    const whole = buf.subarray(start, nl);
    lines.push({
      source: "test",
      file,
      fileId,
      offset: start,
      end: nl + 1,
      seq: seq++,
      bytes: whole.subarray(0, Math.min(whole.length, maxLineBytes)),
      size: whole.length,
    });
    start = nl + 1;
  }
  return lines;
}

function merged(lines: RawLine[]): RawLine[] {
  const merger = new MultilineMerger({ start: TEXT_EVENT_START });
  const out: RawLine[] = [];
  for (const l of lines) merger.push(l, out, 0);
  merger.close(lines[0]?.fileId ?? "", out);
  return out;
}

function decodeAll(config: LineDecoderConfigInput, lines: RawLine[]): ShipEntry[] {
  const decoder = createLineDecoder(config, { catalog, host: "shipper-1", now: () => 1_000 });
  const out: ShipEntry[] = [];
  for (const l of lines) decoder.decode(l, out);
  assert.equal(out.length, lines.length, "one entry per line");
  return out;
}

/** avsc decodes into record classes; compare plain values. */
function plain<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

const appCodec = codecFor("AppLog");
const dlCodec = codecFor("DeadLetter");

function deadLetter(e: ShipEntry): DeadLetter {
  assert.equal(e.topic, "dlq.ship");
  return dlCodec.decode(e.value);
}

function appLogs(): AppLog[] {
  const base = {
    id: "",
    service: "pay-svc",
    host: "pay-svc-9f3c1-0",
    source: null,
  };
  return [
    {
      ...base,
      ts: Date.UTC(2026, 10, 20, 12, 30, 0, 108),
      level: "INFO",
      message: "handled RPC /wallet/debit status=200 in 9 ms",
      logger: "com.live.pay.WalletController",
      traceId: "112c5eabaf6e442e11df91501fa2d967",
      spanId: "cba9f0d35d88b390",
      error: null,
      attributes: { thread: "http-nio-8080-exec-130", reqId: "q-3z", uid: "100197442", status: "200" },
    },
    {
      ...base,
      ts: Date.UTC(2026, 10, 20, 15, 59, 59, 999),
      level: "ERROR",
      message: "/wallet/debit failed with 503 (pay-svc)",
      logger: "com.live.pay.WalletController",
      traceId: "6bc316175d20775c0916ca0fd30a5a47",
      spanId: "913682cf65d9decb",
      error: {
        type: "java.lang.IllegalStateException",
        message: "Connection pool exhausted (max 64)",
        stack:
          "\tat com.live.pay.service.PayService.handle(Service.java:219)\n\tat com.live.pay.web.Controller.invoke(Controller.java:72)\n\tat java.base/java.lang.Thread.run(Thread.java:840)",
      },
      attributes: { thread: "http-nio-8080-exec-71", reqId: "q-s0p", status: "503" },
    },
    {
      ...base,
      ts: Date.UTC(2026, 10, 20, 16, 0, 0, 0),
      level: "WARN",
      message: "slow answer: 1200 ms for /pay/recharge",
      logger: "com.live.pay.PayController",
      traceId: null,
      spanId: null,
      error: null,
      attributes: { thread: "main" },
    },
    {
      ...base,
      ts: Date.UTC(2026, 10, 21, 0, 0, 0, 5),
      level: "FATAL",
      message: "out of memory",
      logger: "com.live.pay.MainController",
      traceId: null,
      spanId: null,
      error: { type: "java.lang.OutOfMemoryError", message: "Java heap space", stack: "\tat x.Y.z(Y.java:1)" },
      attributes: { thread: "main" },
    },
  ];
}

const APP_CONFIG: Record<SimFormat, LineDecoderConfigInput> = {
  json: { topic: "logs.app" },
  pino: { format: "pino", topic: "logs.app" },
  logback: { format: "logback", topic: "logs.app", pathTemplate: "/var/log/{service}/*.log", host: "pay-svc-9f3c1-0" },
  text: {
    format: { type: "text", timezone: "Asia/Shanghai" },
    topic: "logs.app",
    service: "pay-svc",
    host: "pay-svc-9f3c1-0",
  },
};

describe("app logs read back as the AppLog they were written from", () => {
  for (const format of ["json", "pino", "logback", "text"] as const) {
    test(format, () => {
      const records = appLogs();
      const text = records.map((e) => appLine(format, e, { pid: 4438 })).join("");
      let lines = rawLines(Buffer.from(text), "f-app");
      if (format === "text") {
        assert.equal(lines.length, 4 + (1 + 3) + (1 + 1), "the stack traces are on lines of their own");
        lines = merged(lines);
      }
      const entries = decodeAll(APP_CONFIG[format], lines);
      assert.equal(entries.length, records.length);
      entries.forEach((entry, i) => {
        const line = lines[i] as RawLine;
        const expected: AppLog = {
          ...(records[i] as AppLog),
          id: `f-app:${line.offset}`,
          source: { file: FILE, fileId: "f-app", offset: line.offset, seq: line.seq },
        };
        if (format === "pino") {
          // pino writes its process id, which the AppLog did not have: an attribute like any other. It
          // writes no logger name (the simulator's Node services have one only in their AppLog).
          expected.attributes = { ...expected.attributes, pid: "4438" };
          expected.logger = null;
        }
        assert.equal(entry.topic, "logs.app");
        assert.deepEqual(plain(appCodec.decode(entry.value)), plain(expected));
        assert.equal(entry.ts, expected.ts);
        assert.deepEqual(entry.key, Buffer.from("pay-svc"), "logs.app is keyed by service");
        assert.deepEqual(entry.position, {
          source: "test",
          file: FILE,
          fileId: "f-app",
          offset: line.offset,
          end: line.end,
          seq: line.seq,
        });
      });
    });
  }
});

test("business events and access logs read back as the records they were written from", () => {
  const access: AccessLog = {
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
    errorCode: null,
    traceId: "032725aa9e77597fb752fc77ccacd1b0",
    caller: null,
    uid: 100043296,
    deviceId: "d-47e3406d2152",
    clientIp: "2408:8207:1851:5d30::1",
    roomId: 700000,
    userAgent: "live-android/8.4.1",
    urlQuery: null,
    referrer: null,
    host: "gift-svc-e84c4-2",
    source: null,
  };
  const coin: CoinTxn = {
    id: "c-2v",
    ts: 1795177800123,
    type: "RECHARGE",
    uid: 100001301,
    counterpartUid: null,
    roomId: null,
    amount: 600,
    balanceAfter: 3576,
    giftId: null,
    cardToken: "tok_9a8b",
    paymentChannel: "card",
    fiatAmountCents: 600,
    currency: "CNY",
    deviceId: "d-b2437e7a70f2",
    ip: "183.192.193.142",
    traceId: null,
    source: null,
  };
  const behavior: BehaviorEvent = {
    id: "b-1",
    ts: 1795177800200,
    type: "REGISTER",
    uid: 100200300,
    targetUid: null,
    roomId: null,
    deviceId: "d-1",
    ip: "1.2.3.4",
    appVersion: "8.4.1",
    platform: "android",
    phone: "+86 170-1234-5678",
    method: "sms",
    success: false,
    text: null,
    traceId: "t",
    source: null,
  };
  const device: DeviceReport = {
    id: "r-2m",
    ts: 1795177800073,
    deviceId: "d-bf03c2d19454",
    installId: "i-e1e12adc05",
    uid: null,
    platform: "IOS",
    osVersion: "17.4.1",
    appVersion: "8.4.1",
    build: {
      fingerprint: "",
      model: "iPhone15,2",
      manufacturer: "Apple",
      brand: "",
      hardware: "",
      product: "",
      device: "",
      board: "",
      tags: "",
      type: "user",
    },
    sensors: ["accelerometer", "gyroscope"],
    battery: { level: 74, charging: false, temperatureDeciC: 297, voltageMv: 3658 },
    telephony: { imeiPresent: false, imsiPresent: true, simOperator: null },
    root: {
      suPaths: [],
      packages: ["com.saurik.Cydia"],
      testKeys: false,
      writableSystem: true,
      debuggable: false,
      hookFrameworks: ["substrate"],
      jailbreakPaths: ["/Applications/Cydia.app"],
    },
    ip: "123.125.226.240",
    network: null,
    source: null,
  };
  const cases = [
    { topic: "logs.access", schema: "AccessLog", line: accessLine(access), record: access, key: "gift-svc" },
    { topic: "events.coin", schema: "CoinTxn", line: coinLine(coin), record: coin, key: "100001301" },
    {
      topic: "events.behavior",
      schema: "BehaviorEvent",
      line: behaviorLine(behavior),
      record: behavior,
      key: "100200300",
    },
    { topic: "events.device", schema: "DeviceReport", line: deviceLine(device), record: device, key: "d-bf03c2d19454" },
  ] as const;
  for (const c of cases) {
    const [line] = rawLines(Buffer.from(c.line), "f-ev", "/var/log/x.log");
    const [entry] = decodeAll({ topic: c.topic }, [line as RawLine]);
    assert.equal(entry?.topic, c.topic, c.schema);
    const decoded = codecFor(c.schema).decode((entry as ShipEntry).value);
    assert.deepEqual(
      plain(decoded),
      plain({ ...c.record, source: { file: "/var/log/x.log", fileId: "f-ev", offset: 0, seq: 0 } }),
      c.schema,
    );
    assert.deepEqual(entry?.key, Buffer.from(c.key), `${c.topic} is keyed as the catalog says`);
  }
});

describe("a --dirty simulator run", () => {
  let dir = "";
  let truth: TruthRecord[] = [];
  let manifest: { streams: { name: string; format: SimFormat; topic: string; events: number; lines: number }[] };
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "weir-formats-sim-"));
    await simulate({
      ...SIMULATE_DEFAULTS,
      seed: 7,
      durationMs: 12_000,
      rate: 1500,
      users: 20_000,
      streamers: 300,
      dirty: 0.03,
      oversizeBytes: 100_000,
      rotateBytes: 1 << 20,
      out: dir,
    });
    truth = readFileSync(join(dir, "ground-truth.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as TruthRecord);
    manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("every bad line gets the reason the ground truth lists, every other line is its event", () => {
    const seenReasons = new Set<string>();
    let textDirty = 0;
    for (const stream of manifest.streams) {
      // The stream's bytes in write order, rotated files first: the ground truth's offsets count across rotations.
      const base = join(dir, `${stream.name}.log`);
      const parts: Buffer[] = [];
      let n = 1;
      while (existsSync(`${base}.${n}`)) n++;
      for (let i = n - 1; i >= 1; i--) parts.push(readFileSync(`${base}.${i}`));
      parts.push(readFileSync(base));
      const service = stream.name.split("/")[0] as string;
      let lines = rawLines(Buffer.concat(parts), stream.name, `/var/log/${stream.name}.log`, 64 * 1024);
      assert.equal(lines.length, stream.lines, `${stream.name}: physical lines`);
      if (stream.format === "text") lines = merged(lines);
      const config: LineDecoderConfigInput = {
        format: stream.format === "text" ? { type: "text", timezone: "Asia/Shanghai" } : stream.format,
        topic: stream.topic,
        pathTemplate: "/var/log/{service}/*.log",
      };
      const entries = decodeAll(config, lines);
      const got = new Map<number, string>();
      let events = 0;
      entries.forEach((e, i) => {
        if (e.topic === "dlq.ship") {
          const dl = deadLetter(e);
          got.set(e.position.offset, dl.reason);
          assert.equal(dl.origin.fileOffset, e.position.offset);
          return;
        }
        events++;
        if (stream.format === "json" && stream.topic !== "logs.app") {
          // An event's JSON line holds the record's fields by their schema names, nulls left out.
          const l = lines[i] as RawLine;
          const written = JSON.parse(l.bytes.toString()) as Record<string, unknown>;
          const schema = catalog.topic(stream.topic).schema;
          const record = plain(codecFor(schema).decode(e.value)) as unknown as Record<string, unknown>;
          const { source, ...fields } = record;
          assert.deepEqual(source, { file: l.file, fileId: l.fileId, offset: l.offset, seq: l.seq });
          for (const [k, v] of Object.entries(fields)) {
            assert.deepEqual(v, written[k] ?? (k === "success" ? true : null), `${stream.name}:${l.offset} ${k}`);
          }
        }
      });
      const expected = new Map<number, string>();
      for (const t of truth) if (t.kind === "dirty" && t.stream === stream.name) expected.set(t.offset, t.reason);
      assert.deepEqual(got, expected, `${stream.name}: dead letters by offset`);
      assert.equal(events, stream.events, `${stream.name}: events`);
      for (const r of expected.values()) seenReasons.add(r);
      if (stream.format === "text") textDirty += expected.size;
      assert.ok(service.length > 0);
    }
    assert.deepEqual([...seenReasons].sort(), ["invalid-utf8", "malformed-json", "oversized", "wrong-type"]);
    assert.ok(textDirty > 0, "the text log has bad lines too (merged with their stack traces)");
  });
});
