// Foreign bytes into Avro decoding: a producer weir does not know, a corrupted record, garbage. The
// codec either reads a record or throws a CodecError with a DLQ reason; the stream runtime sends
// every record it cannot read to the DLQ with that reason and goes on. Nothing takes long: a record's
// declared sizes (strings, array and map blocks) cannot make the reader loop past its bytes.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { CodecError, codecFor } from "../../schemas/codec.ts";
import { SAMPLES } from "../../schemas/testdata/samples.ts";
import type { SchemaName } from "../../schemas/types.generated.ts";
import { StreamApp } from "../../stream/dsl/app.ts";
import { CollectingSink, TopologyTestDriver } from "../../stream/testing/test-driver.ts";
import { bounded, fuzzParams, mutatedBytes } from "./support/fuzz.ts";

const CODEC_REASONS = new Set([
  "not-single-object",
  "truncated",
  "unknown-fingerprint",
  "incompatible-schema",
  "corrupt-avro",
  "trailing-bytes",
]);
const SCHEMAS = Object.keys(SAMPLES) as SchemaName[];

/** Avro's zig-zag varint of a long. */
function varint(n: bigint): Buffer {
  let z = n >= 0n ? n << 1n : (-n << 1n) - 1n;
  const out: number[] = [];
  while (z >= 0x80n) {
    out.push(Number((z & 0x7fn) | 0x80n));
    z >>= 7n;
  }
  out.push(Number(z));
  return Buffer.from(out);
}

describe("Avro decoding of foreign bytes", () => {
  for (const name of SCHEMAS) {
    test(`${name}: a record or a CodecError with a DLQ reason, in bounded time`, () => {
      const codec = codecFor(name);
      const valid = codec.encode(SAMPLES[name] as never);
      // Records of the other schemas too: the right header, the wrong body.
      const others = SCHEMAS.map((n) => codecFor(n).encode(SAMPLES[n] as never));
      fc.assert(
        fc.property(mutatedBytes(fc.constantFrom(valid, ...others)), (bytes) => {
          try {
            bounded(`${name}.decode(${bytes.length} bytes)`, () => codec.decode(bytes));
          } catch (e) {
            assert.ok(e instanceof CodecError, `not a CodecError: ${(e as Error).stack}`);
            assert.ok(CODEC_REASONS.has(e.reason), `reason ${e.reason}`);
          }
        }),
        fuzzParams(500),
      );
    });
  }

  // Found by this suite: avsc reads an array or map block of n items without checking that n items
  // fit in the bytes left, so a 36-byte record declaring 10^8 map entries kept a worker busy for
  // 17 s (and 2^60 for ever), and an array's block of 10^8 allocated a 10^8-slot array first.
  test("a map or array block that declares more items than there are bytes is truncated at once", () => {
    const app = codecFor("AppLog");
    const withMap = app.encode({ ...SAMPLES.AppLog, attributes: { zz: "yy" } });
    const at = withMap.indexOf(Buffer.from("047a7a", "hex")) - 1; // the block count (1) before key "zz"
    assert.equal(withMap[at], 2);
    for (const n of [100_000_000n, 1n << 40n, (1n << 62n) - 1n]) {
      const bad = Buffer.concat([withMap.subarray(0, at), varint(n), withMap.subarray(at + 1)]);
      assert.throws(
        () => bounded(`a map of ${n} entries`, () => app.decode(bad), 100),
        (e: unknown) => e instanceof CodecError && e.reason === "truncated",
      );
    }
    const device = codecFor("DeviceReport");
    const sample = SAMPLES.DeviceReport;
    const arrays = Object.entries(sample).filter(([, v]) => Array.isArray(v));
    assert.ok(arrays.length > 0 || JSON.stringify(sample).includes("["), "DeviceReport has an array");
    const encoded = device.encode(sample);
    // Every position that could be a block count: set a huge count there, the decoder must stay quick.
    for (let i = 10; i < encoded.length; i++) {
      const bad = Buffer.concat([encoded.subarray(0, i), varint(50_000_000n), encoded.subarray(i + 1)]);
      try {
        bounded(`DeviceReport with a huge count at byte ${i}`, () => device.decode(bad), 200);
      } catch (e) {
        assert.ok(e instanceof CodecError, `byte ${i}: ${(e as Error).message}`);
      }
    }
  });

  test("the stream runtime dead-letters every record it cannot read, with the codec's reason, and goes on", () => {
    const topics: Array<[string, SchemaName]> = [
      ["logs.app", "AppLog"],
      ["logs.access", "AccessLog"],
      ["events.coin", "CoinTxn"],
      ["events.behavior", "BehaviorEvent"],
      ["events.device", "DeviceReport"],
    ];
    for (const [topic, schema] of topics) {
      const app = new StreamApp({ appId: "fuzz" });
      const sink = new CollectingSink();
      app.stream(topic).to(sink);
      const driver = new TopologyTestDriver(app, { partitions: 1 });
      const valid = codecFor(schema).encode(SAMPLES[schema] as never);
      let piped = 0;
      fc.assert(
        fc.property(mutatedBytes(fc.constant(valid)), (bytes) => {
          const before = { sunk: sink.records.length, dead: driver.deadLetters.length };
          bounded(`${topic}: a record of ${bytes.length} bytes`, () => driver.pipeRaw(topic, bytes, { key: "k" }));
          piped++;
          const sunk = sink.records.length - before.sunk;
          const dead = driver.deadLetters.slice(before.dead);
          assert.equal(sunk + dead.length, 1, "each record reaches the sink or the DLQ, once");
          for (const d of dead) {
            assert.ok(d.message.length > 0);
            assert.ok(
              CODEC_REASONS.has(d.reason) || d.reason === "invalid-timestamp" || d.reason === "user-code-error",
              `reason ${d.reason}: ${d.message}`,
            );
            assert.deepEqual(d.raw, bytes, "the dead letter keeps the bytes");
          }
        }),
        fuzzParams(300),
      );
      // A valid record after all of that still goes through.
      driver.pipeRaw(topic, valid, { key: "k" });
      assert.equal(sink.records.length + driver.deadLetters.length, piped + 1);
      assert.deepEqual(
        sink.records.at(-1)?.value && JSON.parse(JSON.stringify(sink.records.at(-1)?.value)),
        JSON.parse(JSON.stringify(SAMPLES[schema])),
      );
    }
  });
});
