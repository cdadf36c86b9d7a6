import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ShipEntry } from "../types.ts";
import { decodeShipEntry, encodeShipEntry, ShipEntryDecodeError } from "./entry.ts";

function entry(over: Partial<ShipEntry> = {}, position: Partial<ShipEntry["position"]> = {}): ShipEntry {
  return {
    topic: "logs.app",
    key: Buffer.from("svc-a"),
    value: Buffer.from([0xc3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 0x42]),
    ts: 1_730_000_000_123,
    position: {
      source: "app",
      file: "/var/log/app/app.log",
      fileId: "2049:131075:1730000000000",
      offset: 1_234_567,
      end: 1_234_890,
      seq: 4242,
      ...position,
    },
    ...over,
  };
}

describe("ShipEntry payloads", () => {
  it("round-trip every field, positions to 2^53 included", () => {
    const cases: ShipEntry[] = [
      entry(),
      entry({ key: null }),
      entry({ key: Buffer.alloc(0), value: Buffer.alloc(0) }),
      entry({ topic: "dlq.ship", ts: -1.5 }, { file: "/var/log/ünïcødé/日志.log", source: "" }),
      entry({}, { offset: Number.MAX_SAFE_INTEGER - 10, end: Number.MAX_SAFE_INTEGER, seq: Number.MAX_SAFE_INTEGER }),
      entry({}, { offset: 0, end: 0, seq: 0, fileId: "stdin-1730000000000" }),
      entry({ value: Buffer.alloc(300_000, 7) }, { end: 1_234_567 + 300_001 }),
    ];
    for (const e of cases) {
      const got = decodeShipEntry(encodeShipEntry(e));
      assert.deepEqual(got, e);
      assert.equal(got.key === null, e.key === null);
    }
  });

  it("are compact: beyond its strings, key and value, an entry costs about 20 bytes", () => {
    const e = entry({ value: Buffer.alloc(200) });
    const strings =
      "logs.app".length + "app".length + "/var/log/app/app.log".length + "2049:131075:1730000000000".length;
    const envelope = encodeShipEntry(e).length - 200 - 5 - strings;
    // version 1 + ts 8 + offset 3 + length 2 + seq 2 + four string lengths 4 + key length 1
    assert.equal(envelope, 21);
  });

  it("decode the strings of consecutive entries of different files correctly (the decoder reuses equal ones)", () => {
    const a = encodeShipEntry(entry({}, { file: "/a.log", fileId: "1" }));
    const b = encodeShipEntry(entry({}, { file: "/b.log", fileId: "2" }));
    const c = encodeShipEntry(entry({}, { file: "/ab.log", fileId: "1" }));
    const got = [a, b, a, c, c].map((p) => decodeShipEntry(p).position);
    assert.deepEqual(
      got.map((p) => `${p.file} ${p.fileId}`),
      ["/a.log 1", "/b.log 2", "/a.log 1", "/ab.log 1", "/ab.log 1"],
    );
  });

  it("give key and value as views of the payload", () => {
    const payload = encodeShipEntry(entry());
    const got = decodeShipEntry(payload);
    assert.equal(got.value.buffer, payload.buffer);
    assert.equal(got.key?.buffer, payload.buffer);
  });

  it("refuse what is not one, and positions that are not counts", () => {
    assert.throws(() => decodeShipEntry(Buffer.from("{}")), ShipEntryDecodeError);
    assert.throws(() => decodeShipEntry(Buffer.from([9, 0, 0, 0, 0, 0, 0, 0, 0, 1])), ShipEntryDecodeError);
    const truncated = encodeShipEntry(entry({ key: Buffer.alloc(40) }));
    assert.throws(() => decodeShipEntry(truncated.subarray(0, 40)), ShipEntryDecodeError);
    assert.throws(() => encodeShipEntry(entry({}, { offset: -1 })), RangeError);
    assert.throws(() => encodeShipEntry(entry({}, { end: 1 })), RangeError);
    assert.throws(() => encodeShipEntry(entry({}, { seq: 1.5 })), RangeError);
  });
});
