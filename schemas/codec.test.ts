import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { AvroCodec, CodecError, codecFor, decodeAny } from "./codec.ts";
import { GENERATED_FILE, generateTypes } from "./codegen.ts";
import { schemaRegistry } from "./registry.ts";
import { SAMPLES } from "./testdata/samples.ts";
import { SCHEMA_NAMES } from "./types.generated.ts";

const plain = (v: unknown) => JSON.parse(JSON.stringify(v));

test("every schema round-trips its sample through single-object encoding", () => {
  for (const name of SCHEMA_NAMES) {
    const codec = codecFor(name);
    const bytes = codec.encode(SAMPLES[name] as never);
    assert.deepEqual([...bytes.subarray(0, 2)], [0xc3, 0x01], name);
    assert.equal(bytes.readBigUInt64LE(2), codec.schema.fingerprint, name);
    assert.deepEqual(plain(codec.decode(bytes)), plain(SAMPLES[name]), name);
    const any = decodeAny(bytes);
    assert.equal(any.schema.name, name);
  }
});

test("encode returns independent buffers and grows past its scratch size", () => {
  const codec = codecFor("AppLog");
  const big = { ...SAMPLES.AppLog, message: "x".repeat(100_000) };
  const a = codec.encode(big);
  const b = codec.encode(SAMPLES.AppLog);
  assert.equal(codec.decode(a).message.length, 100_000);
  assert.equal(codec.decode(b).message, SAMPLES.AppLog.message);
});

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof CodecError, String(e));
    return e.reason;
  }
  assert.fail("expected a CodecError");
}

test("every way a message can be wrong is a typed error with a DLQ reason", () => {
  const codec = codecFor("AccessLog");
  const good = codec.encode(SAMPLES.AccessLog);
  assert.equal(
    reason(() => codec.decode(Buffer.from('{"ts":1}'))),
    "not-single-object",
  );
  assert.equal(
    reason(() => codec.decode(Buffer.alloc(0))),
    "not-single-object",
  );
  assert.equal(
    reason(() => codec.decode(good.subarray(0, 6))),
    "truncated",
  );
  assert.equal(
    reason(() => codec.decode(good.subarray(0, good.length - 3))),
    "truncated",
  );
  assert.equal(
    reason(() => codec.decode(Buffer.concat([good, Buffer.from([0])]))),
    "trailing-bytes",
  );
  const unknown = Buffer.from(good);
  unknown.writeBigUInt64LE(0x1234n, 2);
  assert.equal(
    reason(() => codec.decode(unknown)),
    "unknown-fingerprint",
  );
  // A CoinTxn is not an AccessLog: the writer schema resolves to another record.
  assert.equal(
    reason(() => codec.decode(codecFor("CoinTxn").encode(SAMPLES.CoinTxn))),
    "incompatible-schema",
  );
  // A string length far past the end of the buffer.
  const corrupt = Buffer.from(good);
  corrupt[10] = 0xff;
  corrupt[11] = 0xff;
  corrupt[12] = 0xff;
  assert.ok(["truncated", "corrupt-avro"].includes(reason(() => codec.decode(corrupt))));
});

test("an invalid value names the field and the expected type", () => {
  const codec = codecFor("AccessLog");
  try {
    codec.encode({ ...SAMPLES.AccessLog, status: "503" as unknown as number });
    assert.fail("expected an error");
  } catch (e) {
    assert.ok(e instanceof CodecError);
    assert.equal(e.reason, "invalid-value");
    assert.match(e.message, /status = "503" is not int/);
  }
  assert.throws(
    () => codec.encode({ ...SAMPLES.AccessLog, source: { file: "f" } as never }),
    /source\.fileId = undefined is not string/,
  );
});

test("a codec for an unknown schema name fails with the known names", () => {
  assert.throws(() => new AvroCodec("Nope"), /no schema named Nope \(known: AccessLog, AppLog/);
});

test("every schema, field and named type has a doc", () => {
  const missing: string[] = [];
  const visit = (node: unknown, path: string) => {
    if (Array.isArray(node)) {
      node.forEach((n, i) => {
        visit(n, `${path}[${i}]`);
      });
      return;
    }
    if (!node || typeof node !== "object") return;
    const n = node as Record<string, unknown>;
    if (["record", "enum", "fixed"].includes(n.type as string) && !n.doc) missing.push(`${path} (${n.name})`);
    if (n.type === "record") {
      for (const f of n.fields as Record<string, unknown>[]) {
        if (typeof f.doc !== "string" || f.doc.trim() === "") missing.push(`${path}.${f.name}`);
        visit(f.type, `${path}.${f.name}`);
      }
    } else if (typeof n.type === "object") visit(n.type, path);
    if (n.items) visit(n.items, `${path}[]`);
    if (n.values) visit(n.values, `${path}{}`);
  };
  for (const name of SCHEMA_NAMES) visit(schemaRegistry().current(name).schema, name);
  assert.deepEqual(missing, []);
});

test("event time is `ts` in milliseconds on every input event", () => {
  for (const name of ["AppLog", "AccessLog", "CoinTxn", "BehaviorEvent", "DeviceReport"] as const) {
    const schema = schemaRegistry().current(name).schema as { fields: { name: string; type: unknown; doc: string }[] };
    const ts = schema.fields.find((f) => f.name === "ts");
    assert.equal(ts?.type, "long", name);
    assert.match(ts?.doc ?? "", /milliseconds since the Unix epoch, UTC/, name);
  }
});

test("schemas/types.generated.ts is up to date with the .avsc files", () => {
  assert.equal(readFileSync(GENERATED_FILE, "utf8"), generateTypes(), "run `weir schemas gen`");
});
