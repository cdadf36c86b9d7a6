import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { codecFor } from "../../schemas/codec.ts";
import { CollectingSink, TopologyTestDriver } from "../../stream/testing/test-driver.ts";
import type { Rec } from "../../stream/types.ts";
import { logLineMapping } from "./documents.ts";
import { type AccessLog, type AppLog, type LogLine, lineId } from "./lines.ts";
import { PiiDetector, PiiMatches } from "./pii/detector.ts";
import { PiiKey } from "./pii/key.ts";
import { PiiMasker } from "./pii/masker.ts";
import { piiToken } from "./pii/token.ts";
import { logRow } from "./rows.ts";
import { buildLogsApp } from "./topology.ts";

const key = new PiiKey("logs-topology-test-key-0123456789abcdef", "given");
const T0 = Date.UTC(2026, 10, 20, 23, 59, 59, 500);
const PHONE = "13800138000";
const ID_CARD = "11010519491231002X";

function appLog(i: number, extra: Partial<AppLog> = {}): AppLog {
  return {
    id: `f-app:${i * 120}`,
    ts: T0 + i,
    service: i % 2 ? "gift-svc" : "user-svc",
    host: "h-1",
    level: "INFO",
    message: `handled request ${i}`,
    logger: "http",
    traceId: `trace-${i}`,
    spanId: null,
    error: null,
    attributes: { reqId: `q-${i}` },
    source: { file: "/var/log/app.log", fileId: "f-app", offset: i * 120, seq: i },
    ...extra,
  };
}

function accessLog(i: number, extra: Partial<AccessLog> = {}): AccessLog {
  return {
    id: `q-${i}`,
    ts: T0 + i,
    app: "live",
    system: "gifting",
    service: "gift-svc",
    endpoint: "/gift/send",
    method: "POST",
    status: 200,
    latencyUs: 12_345,
    bytesIn: 10,
    bytesOut: 20,
    errorCode: null,
    traceId: `trace-${i}`,
    caller: null,
    uid: 100_000 + i,
    deviceId: null,
    clientIp: "116.228.51.94",
    roomId: null,
    userAgent: "live-android/8.4.1",
    urlQuery: null,
    referrer: null,
    host: "gift-svc-0",
    source: null,
    ...extra,
  };
}

function setup(masker = new PiiMasker({}, key)) {
  const es = new CollectingSink<LogLine>("es");
  const ch = new CollectingSink<LogLine>("ch");
  const app = buildLogsApp({ masker, sinks: [es, ch] });
  const driver = new TopologyTestDriver(app, { partitions: 3 });
  return { es, ch, driver, masker };
}

/** Every string in a value, however deep. */
function strings(v: unknown, out: string[] = []): string[] {
  if (typeof v === "string") out.push(v);
  else if (Array.isArray(v)) for (const x of v) strings(x, out);
  else if (v && typeof v === "object") for (const x of Object.values(v)) strings(x, out);
  return out;
}

/** The PII values the detector finds in any string of `v` outside a masked token. */
function unmaskedPii(v: unknown): string[] {
  const detector = new PiiDetector({});
  const m = new PiiMatches();
  const found: string[] = [];
  for (const s of strings(v)) {
    detector.scan(s, m);
    for (let k = 0; k < m.length; k++) found.push(m.values[k] as string);
  }
  return found;
}

describe("the logs topology", () => {
  test("masks before any sink: what either sink receives holds no phone or ID number, only their tokens", () => {
    const { es, ch, driver } = setup();
    const raw = [
      appLog(0, { message: `register failed for +86 138 0013 8000 idCard=${ID_CARD}` }),
      appLog(1, {
        level: "ERROR",
        error: { type: "KycError", message: `bad id ${ID_CARD}`, stack: `at kyc(${PHONE})\n\tat x` },
        attributes: { phone: "138-0013-8000", note: `call ${PHONE}`, uid: "100043296" },
      }),
    ];
    for (const l of raw) driver.pipe("logs.app", structuredClone(l), { key: l.service });
    driver.pipe("logs.access", accessLog(2, { userAgent: `live-android/8.4.1 (tel ${PHONE})` }), { key: "gift-svc" });

    assert.equal(es.records.length, 3);
    assert.equal(ch.records.length, 3);
    const input = unmaskedPii(raw);
    assert.ok(input.includes(PHONE) && input.includes(ID_CARD), "the input holds PII");
    for (const sink of [es, ch]) {
      assert.deepEqual(unmaskedPii(sink.records.map((r) => r.value)), [], `${sink.name} got unmasked PII`);
    }
    // What the stores are given is built from the masked lines.
    const mapping = logLineMapping("logs");
    assert.deepEqual(unmaskedPii(es.records.map((r) => mapping.toDocument(r))), []);
    assert.deepEqual(unmaskedPii(ch.records.map(logRow)), []);
    const phoneToken = `[${piiToken("phone", PHONE, key)}]`;
    const [a0, a1, x2] = es.records.map((r) => r.value);
    assert.ok(a0?.dataset === "app" && a0.log.message.includes(phoneToken), JSON.stringify(a0));
    assert.ok(a1?.dataset === "app" && a1.log.attributes.phone === `138****8000${phoneToken}`);
    assert.equal(a1.log.attributes.uid, "100043296", "ids are not PII");
    assert.ok(a1.log.error?.stack?.includes(phoneToken));
    assert.ok(x2?.dataset === "access" && x2.log.userAgent === `live-android/8.4.1 (tel 138****8000${phoneToken})`);
  });

  test("both sinks get every line, app and access, in order per service; the index is the service's day", () => {
    const { es, ch, driver } = setup();
    for (let i = 0; i < 40; i++) {
      const l = appLog(i);
      driver.pipe("logs.app", l, { key: l.service });
      driver.pipe("logs.access", accessLog(i, { service: i % 3 ? "pay-svc" : "gift-svc" }), {
        key: i % 3 ? "pay-svc" : "gift-svc",
      });
    }
    assert.equal(es.records.length, 80);
    assert.deepEqual(
      ch.records.map((r) => lineId(r.value)),
      es.records.map((r) => lineId(r.value)),
    );
    const mapping = logLineMapping("logs");
    const indices = new Map<string, number>();
    for (const r of es.records) {
      const index = mapping.index(r);
      indices.set(index, (indices.get(index) ?? 0) + 1);
    }
    // T0 is half a second before midnight: the first 500 ms of lines fall on the 20th, none after.
    assert.deepEqual([...indices.keys()].sort(), [
      "logs-gift-svc-2026.11.20",
      "logs-pay-svc-2026.11.20",
      "logs-user-svc-2026.11.20",
    ]);
    const late = { key: "user-svc", value: { dataset: "app", log: appLog(600) }, ts: T0 + 600 } as Rec<LogLine>;
    assert.equal(mapping.index(late), "logs-user-svc-2026.11.21", "a line after midnight UTC goes to the next day");
    // Within a service (one partition), lines keep their order.
    const gift = es.records.filter((r) => r.value.dataset === "access" && r.value.log.service === "gift-svc");
    assert.deepEqual(
      gift.map((r) => r.value.log.ts),
      [...gift.map((r) => r.value.log.ts)].sort((a, b) => a - b),
    );
  });

  test("bad records go to the DLQ with their reason and the rest go on", () => {
    const { es, driver } = setup();
    const codec = codecFor("AccessLog");
    const good = codec.encode(accessLog(1));
    const unknown = Buffer.from(good);
    unknown.writeUInt32LE(0xdeadbeef, 2);
    driver.pipe("logs.access", accessLog(0), { key: "gift-svc" });
    driver.pipeRaw("logs.access", Buffer.from('{"not":"avro"}'), { key: "gift-svc" });
    driver.pipeRaw("logs.access", unknown, { key: "gift-svc" });
    driver.pipeRaw("logs.access", good.subarray(0, good.length - 5), { key: "gift-svc" });
    driver.pipeRaw("logs.access", codecFor("AppLog").encode(appLog(3)), { key: "gift-svc" });
    driver.pipe("logs.app", appLog(4, { id: "" }), { key: "user-svc" });
    driver.pipe("logs.app", appLog(5, { ts: -1000 }), { key: "gift-svc" });
    driver.pipe("logs.access", accessLog(6), { key: "gift-svc" });

    assert.deepEqual(
      es.records.map((r) => lineId(r.value)),
      ["req:gift-svc:q-0", "req:gift-svc:q-6"],
    );
    assert.deepEqual(
      driver.deadLetters.map((d) => [d.reason, d.topic]),
      [
        ["not-single-object", "logs.access"],
        ["unknown-fingerprint", "logs.access"],
        ["truncated", "logs.access"],
        ["incompatible-schema", "logs.access"],
        ["user-code-error", "logs.app"],
        ["user-code-error", "logs.app"],
      ],
    );
    assert.match(driver.deadLetters[4]?.message ?? "", /app log line has an empty id/);
    assert.match(driver.deadLetters[5]?.message ?? "", /before 1970/);
    for (const d of driver.deadLetters) assert.ok(d.raw && d.raw.length > 0, "the raw bytes are kept");
  });

  test("ids are deterministic: the same line gets the same id and the same masked text after a crash", () => {
    const { es, ch, driver } = setup();
    const lines: AccessLog[] = [
      accessLog(0, { id: "q-1", service: "gift-svc", userAgent: `ua ${PHONE}` }),
      accessLog(1, { id: "q-1", service: "pay-svc" }), // request ids are unique per service only
      accessLog(2, { source: { file: "/var/log/access.log", fileId: "f-acc", offset: 4096, seq: 7 } }),
    ];
    for (const l of lines) driver.pipe("logs.access", l, { key: l.service });
    driver.pipe("logs.app", appLog(3), { key: "gift-svc" });
    assert.deepEqual(
      es.records.map((r) => lineId(r.value)),
      ["req:gift-svc:q-1", "req:pay-svc:q-1", "f-acc:4096", "f-app:360"],
    );
    // Nothing checkpointed: a crash replays every line into the sinks, with identical ids and values.
    driver.crash();
    assert.equal(es.records.length, 8);
    const first = es.records.slice(0, 4).map((r) => [lineId(r.value), JSON.stringify(r.value)]);
    const again = es.records.slice(4).map((r) => [lineId(r.value), JSON.stringify(r.value)]);
    assert.deepEqual(
      again.sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
      first.sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    );
    assert.deepEqual(
      ch.records.map((r) => logRow(r).id),
      es.records.map((r) => lineId(r.value)),
    );
    // After a checkpoint nothing is replayed.
    driver.checkpoint();
    driver.crash();
    assert.equal(es.records.length, 8);
  });

  test("the masking configuration decides what is masked: a record type with an empty scan list is left alone", () => {
    const masker = new PiiMasker({ fields: { AccessLog: { scan: [] } } }, key);
    const { es, driver } = setup(masker);
    driver.pipe("logs.access", accessLog(0, { userAgent: `ua ${PHONE}` }), { key: "gift-svc" });
    driver.pipe("logs.app", appLog(1, { message: `call ${PHONE}` }), { key: "gift-svc" });
    const [access, app] = es.records.map((r) => r.value);
    assert.ok(access?.dataset === "access" && access.log.userAgent === `ua ${PHONE}`);
    assert.ok(app?.dataset === "app" && !app.log.message.includes(PHONE));
    assert.deepEqual(masker.takeCounts(), { phone: 1, idCard: 0, email: 0, card: 0 });
  });
});
