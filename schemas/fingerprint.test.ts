import assert from "node:assert/strict";
import { test } from "node:test";
import avro from "avsc";
import { canonicalForm, fingerprint, fingerprintBytes, rabin64 } from "./fingerprint.ts";

// Vectors from the Avro specification's shared test data (share/test/data/schema-tests.txt):
// input schema, its Parsing Canonical Form, and the fingerprint as Java prints it (signed).
const VECTORS: [unknown, string, bigint][] = [
  ["null", '"null"', 7195948357588979594n],
  [{ type: "int" }, '"int"', 8247732601305521295n],
  ["long", '"long"', -3434872931120570953n],
  ["string", '"string"', -8142146995180207161n],
  [["int", { type: "boolean" }], '["int","boolean"]', 5392556393470105090n],
  [
    { fields: [], type: "record", name: "foo", namespace: "x.y" },
    '{"name":"x.y.foo","type":"record","fields":[]}',
    5916914534497305771n,
  ],
  [
    {
      fields: [
        { type: "boolean", aliases: [], name: "f1", default: true },
        { order: "descending", name: "f2", doc: "Hello", type: "int" },
      ],
      type: "record",
      name: "foo",
    },
    '{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"},{"name":"f2","type":"int"}]}',
    -4860222112080293046n,
  ],
  [
    { namespace: "x.y.z", type: "enum", name: "foo", doc: "foo bar", symbols: ["A1", "A2"] },
    '{"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]}',
    -4448647247586288245n,
  ],
  [{ name: "foo", type: "fixed", size: 15 }, '{"name":"foo","type":"fixed","size":15}', 1756455273707447556n],
  [{ items: { type: "null" }, type: "array" }, '{"type":"array","items":"null"}', -589620603366471059n],
  [{ values: "string", type: "map" }, '{"type":"map","values":"string"}', -8732877298790414990n],
  [
    { name: "PigValue", type: "record", fields: [{ name: "value", type: ["null", "int", "long", "PigValue"] }] },
    '{"name":"PigValue","type":"record","fields":[{"name":"value","type":["null","int","long","PigValue"]}]}',
    -1759257747318642341n,
  ],
];

test("canonical form and CRC-64-AVRO match the Avro specification's test vectors", () => {
  for (const [schema, canonical, expected] of VECTORS) {
    const type = avro.Type.forSchema(schema as avro.Schema);
    assert.equal(canonicalForm(type), canonical);
    assert.equal(BigInt.asIntN(64, fingerprint(type)), expected, canonical);
  }
});

test("the empty input fingerprints to the algorithm's seed", () => {
  assert.equal(rabin64(new Uint8Array()), 0xc15d213aa4d7a795n);
});

test("fingerprint bytes are little-endian", () => {
  assert.deepEqual([...fingerprintBytes(0x0102030405060708n)], [8, 7, 6, 5, 4, 3, 2, 1]);
});
