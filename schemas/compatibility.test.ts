import assert from "node:assert/strict";
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import avro from "avsc";
import { codecFor } from "./codec.ts";
import { checkCompatibility, checkRegistry, releaseSchemas, unreleased } from "./compatibility.ts";
import { canonicalForm, fingerprint } from "./fingerprint.ts";
import { SchemaRegistry, type SchemaVersion } from "./registry.ts";

const FIXTURES = new URL("./testdata/registries/", import.meta.url).pathname;

function version(schema: object, v: number): SchemaVersion {
  const type = avro.Type.forSchema(schema as avro.Schema);
  return {
    name: "Probe",
    fullName: "weir.test.Probe",
    version: v,
    schema: schema as avro.Schema,
    type,
    canonical: canonicalForm(type),
    fingerprint: fingerprint(type),
    file: `v${v}`,
  };
}

const base = {
  type: "record",
  name: "Probe",
  namespace: "weir.test",
  fields: [
    { name: "id", type: "string" },
    { name: "count", type: "int" },
    { name: "kind", type: { type: "enum", name: "Kind", symbols: ["A", "B"] } },
    { name: "note", type: ["null", "string"], default: null },
  ],
};
const v1 = version(base, 1);
const v1WithEnumDefault = version(
  {
    ...base,
    fields: base.fields.map((f) =>
      f.name === "kind" ? { name: "kind", type: { type: "enum", name: "Kind", symbols: ["A", "B"], default: "A" } } : f,
    ),
  },
  1,
);
const withFields = (fields: object[]) => version({ ...base, fields }, 2);

test("the project's schemas pass the gate against every kept version", () => {
  assert.deepEqual(checkRegistry(SchemaRegistry.load()), []);
});

test("every current schema is released: its exact definition is kept in history/", () => {
  assert.deepEqual(unreleased(SchemaRegistry.load()), [], "run `weir schemas release` after changing a schema");
});

test("a breaking change in a fixture registry is caught, and release refuses to keep it", () => {
  const dir = mkdtempSync(join(tmpdir(), "weir-gate-"));
  cpSync(join(FIXTURES, "breaking"), dir, { recursive: true });
  const registry = SchemaRegistry.load(dir);
  const problems = checkRegistry(registry);
  assert.deepEqual(
    problems.map((p) => p.direction),
    ["backward", "forward"],
  );
  assert.match(problems[0]?.message ?? "", /cannot read v1 data/);
  const result = releaseSchemas(registry, dir);
  assert.deepEqual(result.released, []);
  assert.equal(existsSync(join(dir, "history", "Probe", "v2.avsc")), false);
});

test("compatible evolutions pass: add or remove a field with a default, add an enum symbol where the enum has a default", () => {
  const [id, count, kind, note] = base.fields;
  const cases: [string, SchemaVersion][] = [
    ["add a field with a default", withFields([...base.fields, { name: "region", type: "string", default: "cn" }])],
    ["remove a field that had a default", withFields([id, count, kind] as object[])],
    [
      "add an enum symbol where the enum has a default",
      version(
        {
          ...base,
          fields: [
            id,
            count,
            { name: "kind", type: { type: "enum", name: "Kind", symbols: ["A", "B", "C"], default: "A" } },
            note,
          ],
        },
        2,
      ),
    ],
  ];
  for (const [what, candidate] of cases) {
    // The default that lets old readers read a new symbol must be in the old readers' enum.
    const kept = what.startsWith("add an enum symbol") ? v1WithEnumDefault : v1;
    assert.deepEqual(checkCompatibility(candidate, [kept]), [], what);
  }
});

test("breaking changes fail in the direction they break", () => {
  const [id, count, kind, note] = base.fields;
  const cases: [string, SchemaVersion, string[]][] = [
    [
      "change a field's type",
      withFields([id, { name: "count", type: "string" }, kind, note] as object[]),
      ["backward", "forward"],
    ],
    ["add a field without a default", withFields([...base.fields, { name: "owner", type: "string" }]), ["backward"]],
    ["remove a field that had no default", withFields([id, kind, note] as object[]), ["forward"]],
    // Avro's promotions are one-way: v1's int readers cannot read a long.
    ["promote int to long", withFields([id, { name: "count", type: "long" }, kind, note] as object[]), ["forward"]],
    [
      "add an enum symbol to an enum without a default",
      withFields([
        id,
        count,
        { name: "kind", type: { type: "enum", name: "Kind", symbols: ["A", "B", "C"] } },
        note,
      ] as object[]),
      ["forward"],
    ],
    ["rename the record", version({ ...base, name: "Sample" }, 2), ["backward", "forward"]],
  ];
  for (const [what, candidate, expected] of cases) {
    assert.deepEqual(
      checkCompatibility(candidate, [v1]).map((p) => p.direction),
      expected,
      what,
    );
  }
});

test("release keeps a compatible change as the next version, and data written by either version reads in the other", () => {
  const dir = mkdtempSync(join(tmpdir(), "weir-release-"));
  cpSync(join(FIXTURES, "breaking"), dir, { recursive: true });
  const evolved = JSON.parse(readFileSync(join(dir, "history", "Probe", "v1.avsc"), "utf8"));
  evolved.fields.push({ name: "region", type: "string", default: "cn", doc: "Added with a default." });
  writeFileSync(join(dir, "avro", "Probe.avsc"), JSON.stringify(evolved));

  const before = SchemaRegistry.load(dir);
  assert.deepEqual(unreleased(before), ["Probe"]);
  const result = releaseSchemas(before, dir);
  assert.deepEqual(result.problems, []);
  assert.deepEqual(result.released, [{ name: "Probe", version: 2, file: "history/Probe/v2.avsc" }]);

  const after = SchemaRegistry.load(dir);
  assert.equal(after.current("Probe").version, 2);
  assert.deepEqual(unreleased(after), []);
  // Data written with v1 decodes with the v2 reader: the new field takes its default.
  const v1Type = after.history("Probe")[0]?.type as avro.Type;
  const oldBytes = Buffer.concat([
    Buffer.from([0xc3, 0x01]),
    le(after.history("Probe")[0]?.fingerprint ?? 0n),
    v1Type.toBuffer({ id: "a", count: 3, note: null }),
  ]);
  const reader = codecFor("Probe" as never, after);
  assert.deepEqual({ ...(reader.decode(oldBytes) as object) }, { id: "a", count: 3, note: null, region: "cn" });
  // Data written with v2 reads with a v1 reader: the unknown field is skipped.
  const newBytes = reader.encode({ id: "b", count: 4, note: "x", region: "eu" } as never);
  const asV1 = v1Type.createResolver(after.current("Probe").type);
  assert.deepEqual({ ...(v1Type.fromBuffer(newBytes.subarray(10), asV1) as object) }, { id: "b", count: 4, note: "x" });
});

function le(fp: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(fp);
  return b;
}
