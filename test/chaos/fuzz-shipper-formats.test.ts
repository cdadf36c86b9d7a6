// Fuzzed lines into every shipper format. Whatever a service writes, the decoder gives exactly one
// entry per line: an event the topic's codec reads back, or a dead letter whose reason says what
// was wrong. `decoder-error` is the reason of a bug (the decoder threw), so it fails here too.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { accessLine, appLine, behaviorLine, coinLine, deviceLine } from "../../infra/simulator/formats.ts";
import { loadTopicCatalog } from "../../schemas/catalog.ts";
import { codecFor, decodeAny } from "../../schemas/codec.ts";
import { SAMPLES } from "../../schemas/testdata/samples.ts";
import type { DeadLetter } from "../../schemas/types.generated.ts";
import { createLineDecoder, type LineDecoderConfigInput } from "../../shipper/formats/index.ts";
import { DEAD_LETTER_REASONS } from "../../shipper/formats/problem.ts";
import type { RawLine, ShipEntry } from "../../shipper/types.ts";
import { bounded, fuzzParams, mutated, nestedJson } from "./support/fuzz.ts";

const catalog = loadTopicCatalog();
const dlCodec = codecFor("DeadLetter");

const app = { ...SAMPLES.AppLog, attributes: { ...SAMPLES.AppLog.attributes, thread: "main" } };
const VALID: Record<string, string[]> = {
  json: [appLine("json", app, { pid: 7 })],
  pino: [appLine("pino", app, { pid: 7 })],
  logback: [appLine("logback", app, { pid: 7 })],
  text: [appLine("text", app, { pid: 7 })],
  combined: [
    '203.0.113.9 - - [20/Nov/2026:20:30:00 +0800] "GET /room/700018/enter?from=feed HTTP/1.1" 200 512 "https://live.example/feed" "Mozilla/5.0 (iPhone)" 0.023',
  ],
  access: [accessLine(SAMPLES.AccessLog)],
  coin: [coinLine(SAMPLES.CoinTxn)],
  behavior: [behaviorLine(SAMPLES.BehaviorEvent)],
  device: [deviceLine(SAMPLES.DeviceReport)],
};
const ALL_VALID = Object.values(VALID)
  .flat()
  .map((l) => l.replace(/\n$/, ""));

const CONFIGS: Array<{ name: string; config: LineDecoderConfigInput; valid: string[] }> = [
  { name: "json -> logs.app", config: { topic: "logs.app", format: "json" }, valid: VALID.json ?? [] },
  { name: "pino", config: { topic: "logs.app", format: "pino" }, valid: VALID.pino ?? [] },
  { name: "logback", config: { topic: "logs.app", format: "logback", service: "pay-svc" }, valid: VALID.logback ?? [] },
  {
    name: "text",
    config: { topic: "logs.app", format: { type: "text", timezone: "Asia/Shanghai" }, service: "pay-svc" },
    valid: VALID.text ?? [],
  },
  {
    name: "combined",
    config: {
      topic: "logs.access",
      format: { type: "combined", endpoints: ["/room/{id}/enter"] },
      service: "room-svc",
      fields: { app: "live", system: "room" },
    },
    valid: VALID.combined ?? [],
  },
  { name: "raw", config: { topic: "logs.app", format: "raw", service: "x-svc" }, valid: VALID.text ?? [] },
  { name: "json -> logs.access", config: { topic: "logs.access" }, valid: VALID.access ?? [] },
  { name: "json -> events.coin", config: { topic: "events.coin" }, valid: VALID.coin ?? [] },
  { name: "json -> events.behavior", config: { topic: "events.behavior" }, valid: VALID.behavior ?? [] },
  { name: "json -> events.device", config: { topic: "events.device" }, valid: VALID.device ?? [] },
  {
    name: "json routed by field",
    config: {
      route: { field: "kind", topics: { access: "logs.access", coin: "events.coin" }, default: "logs.app" },
      keyField: "attributes.reqId",
      service: "gift-svc",
    },
    valid: [
      JSON.stringify({ kind: "access", ...SAMPLES.AccessLog }),
      JSON.stringify({ kind: "coin", ...SAMPLES.CoinTxn }),
      JSON.stringify({ kind: "x", ts: 1, message: "m", attributes: { reqId: "q" } }),
    ],
  },
];

function rawLine(bytes: Buffer): RawLine {
  return {
    source: "fuzz",
    file: "/var/log/pay-svc/app.log",
    fileId: "fz",
    offset: 0,
    end: bytes.length + 1,
    seq: 0,
    bytes,
    size: bytes.length,
  };
}

/** The property every decoder keeps, for one line. */
function checkLine(name: string, config: LineDecoderConfigInput, bytes: Buffer): ShipEntry {
  const decoder = createLineDecoder(config, { catalog, host: "fuzz-1", now: () => 1_800_000_000_000 });
  const out: ShipEntry[] = [];
  bounded(`${name}: decoding ${bytes.length} bytes`, () => decoder.decode(rawLine(bytes), out));
  assert.equal(out.length, 1, "exactly one entry per line");
  const entry = out[0] as ShipEntry;
  if (entry.topic === "dlq.ship") {
    const dl: DeadLetter = dlCodec.decode(entry.value);
    assert.ok(
      (DEAD_LETTER_REASONS as readonly string[]).includes(dl.reason),
      `unknown dead-letter reason ${dl.reason}`,
    );
    assert.notEqual(dl.reason, "decoder-error", `a bug in the decoder: ${dl.message}`);
    assert.ok(dl.message.length > 0, "a dead letter says why");
  } else {
    assert.ok(decoder.topics.includes(entry.topic), `${entry.topic} is one of the decoder's topics`);
    // The event is what the topic's schema reads back.
    const { schema } = decodeAny(entry.value);
    assert.equal(schema.name, catalog.topics.find((t) => t.name === entry.topic)?.schema);
  }
  return entry;
}

const anyText = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.string({ unit: "grapheme", maxLength: 100 }),
  fc.json({ maxDepth: 4 }),
  nestedJson(40),
);

describe("shipper formats: every line is an event or a dead letter with its reason", () => {
  for (const { name, config, valid } of CONFIGS) {
    test(name, { timeout: 300_000 }, () => {
      const lines = fc.oneof(
        { weight: 5, arbitrary: mutated(fc.constantFrom(...valid, ...ALL_VALID)) },
        { weight: 2, arbitrary: anyText },
        // JSON objects with the topic's fields given values of any type.
        {
          weight: 2,
          arbitrary: fc
            .tuple(
              fc.constantFrom(...valid, ...ALL_VALID),
              fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 }),
            )
            .map(([line, extra]) => {
              try {
                const obj = JSON.parse(line) as Record<string, unknown>;
                const keys = Object.keys(obj);
                for (const [i, v] of Object.values(extra).entries()) obj[keys[i % keys.length] as string] = v;
                return JSON.stringify({ ...obj, ...extra });
              } catch {
                return line;
              }
            }),
        },
      );
      const asBytes = fc.oneof(
        { weight: 6, arbitrary: lines.map((s) => Buffer.from(s)) },
        { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)) },
        { weight: 1, arbitrary: lines.map((s) => Buffer.from(s, "latin1")) },
      );
      fc.assert(
        fc.property(asBytes, (bytes) => {
          checkLine(name, config, bytes);
        }),
        fuzzParams(300),
      );
    });
  }

  test("every format's valid line is an event (the fuzz starts from lines the formats accept)", () => {
    for (const { name, config, valid } of CONFIGS) {
      for (const line of valid) {
        const decoder = createLineDecoder(config, { catalog, host: "fuzz-1", now: () => 1_800_000_000_000 });
        const out: ShipEntry[] = [];
        decoder.decode(rawLine(Buffer.from(line.replace(/\n$/, ""))), out);
        const e = out[0] as ShipEntry;
        assert.notEqual(
          e.topic,
          "dlq.ship",
          `${name}: ${e.topic === "dlq.ship" ? dlCodec.decode(e.value).message : ""}`,
        );
      }
    }
  });
});

// Issue 21, defect 4 (fixed on wip-reliability): these were dead-lettered as decoder-error (a stack overflow).
test("a 100k-deep array and a 5,000-deep attributes object are dead letters with reason too-deep", () => {
  const lines = [
    `{"ts":1,"service":"s","message":"m","attributes":${'{"a":'.repeat(5000)}1${"}".repeat(5000)}}`,
    `{"ts":1,"service":"s","message":"m","x":${"[".repeat(100_000)}${"]".repeat(100_000)}}`,
  ];
  for (const l of lines) {
    const entry = checkLine("json deep", { topic: "logs.app" }, Buffer.from(l));
    assert.equal(entry.topic, "dlq.ship");
    assert.equal(dlCodec.decode(entry.value).reason, "too-deep");
  }
});
