// The RowBinary encoder against a reference decoder written here from ClickHouse's format description
// (little-endian numbers, LEB128 lengths, Nullable as a 0/1 byte before the value). Whether the real
// server reads the same values is test/integration/clickhouse-sink.test.ts.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  type ByteBuffer,
  type ColumnSpec,
  type ColumnType,
  ColumnTypeError,
  columnMismatches,
  formatColumnType,
  parseColumnType,
  RowBinaryEncoder,
} from "./rowbinary.ts";

/** Reads rows back: UInt64/Int64 as bigint, Enums as their names, FixedString as its bytes' text with the padding. */
function decode(columns: readonly ColumnSpec[], buf: Buffer): Array<Record<string, unknown>> {
  let at = 0;
  const varint = (): number => {
    let n = 0;
    let shift = 1;
    for (;;) {
      const b = buf[at++] as number;
      n += (b & 0x7f) * shift;
      if (b < 0x80) return n;
      shift *= 128;
    }
  };
  /** Moves past n bytes; returns where they start. */
  const take = (n: number): number => {
    at += n;
    return at - n;
  };
  const value = (t: ColumnType): unknown => {
    switch (t.kind) {
      case "String": {
        const n = varint();
        return buf.toString("utf8", take(n), at);
      }
      case "FixedString":
        return buf.toString("utf8", take(t.length), at);
      case "UInt8":
        return buf.readUInt8(take(1));
      case "UInt16":
        return buf.readUInt16LE(take(2));
      case "UInt32":
      case "DateTime":
        return buf.readUInt32LE(take(4));
      case "Int8":
        return buf.readInt8(take(1));
      case "Int16":
        return buf.readInt16LE(take(2));
      case "Int32":
        return buf.readInt32LE(take(4));
      case "UInt64":
        return buf.readBigUInt64LE(take(8));
      case "Int64":
        return buf.readBigInt64LE(take(8));
      case "Float32":
        return buf.readFloatLE(take(4));
      case "Float64":
        return buf.readDoubleLE(take(8));
      case "Enum8":
      case "Enum16": {
        const n = t.kind === "Enum8" ? buf.readInt8(take(1)) : buf.readInt16LE(take(2));
        const e = t.elements.find(([, v]) => v === n);
        if (!e) throw new Error(`no element ${n} in ${formatColumnType(t)}`);
        return e[0];
      }
      case "Array": {
        const n = varint();
        return Array.from({ length: n }, () => value(t.of));
      }
      case "Nullable":
        return buf[at++] === 1 ? null : value(t.of);
    }
  };
  const types = columns.map((c) => parseColumnType(c.type));
  const rows: Array<Record<string, unknown>> = [];
  while (at < buf.length) {
    const row: Record<string, unknown> = {};
    columns.forEach((c, i) => {
      // defineProperty: a column named __proto__ is a key like any other.
      Object.defineProperty(row, c.name, { value: value(types[i] as ColumnType), enumerable: true, writable: true });
    });
    rows.push(row);
  }
  assert.equal(at, buf.length, "the body ends where its last row does");
  return rows;
}

function encodeAll(
  encoder: RowBinaryEncoder,
  rows: object[],
  initial = 16,
): { out: ByteBuffer; problems: Array<string | null> } {
  const out: ByteBuffer = { buf: Buffer.alloc(initial), size: 0 };
  const problems = rows.map((r) => encoder.encode(r, out));
  return { out, problems };
}

const LEVEL = "Enum8('TRACE' = 1, 'DEBUG' = 2, 'INFO' = 3, 'WARN' = 4, 'ERROR' = 5, 'FATAL' = 6)";
const COLUMNS: ColumnSpec[] = [
  { name: "ts", type: "DateTime" },
  { name: "ts_ms", type: "UInt64" },
  { name: "level", type: LEVEL },
  { name: "message", type: "String" },
  { name: "keys", type: "Array(String)" },
  { name: "status", type: "UInt16" },
  { name: "small", type: "UInt8" },
  { name: "count", type: "UInt32" },
  { name: "delta", type: "Int64" },
  { name: "i8", type: "Int8" },
  { name: "i16", type: "Int16" },
  { name: "i32", type: "Int32" },
  { name: "ratio", type: "Float64" },
  { name: "f32", type: "Float32" },
  { name: "code", type: "FixedString(4)" },
  { name: "note", type: "Nullable(String)" },
  { name: "grid", type: "Array(Array(UInt8))" },
  { name: "e16", type: "Enum16('low' = -300, 'high' = 300)" },
];

describe("column types", () => {
  test("are read as ClickHouse writes them and written in one spelling", () => {
    assert.deepEqual(parseColumnType("Array( Nullable(UInt64) )"), {
      kind: "Array",
      of: { kind: "Nullable", of: { kind: "UInt64" } },
    });
    // system.columns lists Enum elements by value; a DDL may not.
    assert.equal(
      formatColumnType(parseColumnType("Enum8('b' = 2,'a'=1, 'it\\'s' = -3)")),
      "Enum8('it\\'s' = -3, 'a' = 1, 'b' = 2)",
    );
    assert.equal(formatColumnType(parseColumnType("DateTime('Europe/Moscow')")), "DateTime('Europe/Moscow')");
    assert.equal(formatColumnType(parseColumnType("FixedString(16)")), "FixedString(16)");
  });

  test("a type RowBinary is not written for here is refused with what to do", () => {
    for (const t of ["Decimal(10, 2)", "LowCardinality(String)", "Map(String, String)", "Date", "UUID"]) {
      assert.throws(
        () => parseColumnType(t),
        (e: unknown) => e instanceof ColumnTypeError && /use JSONEachRow/.test(e.message),
      );
    }
    assert.throws(() => parseColumnType("Array(String"), /expected '\)'/);
    assert.throws(() => parseColumnType("Enum8('a' = 200)"), /Enum8 values within -128\.\.127/);
    assert.throws(() => parseColumnType("String extra"), /expected the end of the type/);
    assert.throws(() => new RowBinaryEncoder([{ name: "n", type: "Nullable(Array(String))" }]), /no Nullable of Array/);
    assert.throws(
      () =>
        new RowBinaryEncoder([
          { name: "a", type: "String" },
          { name: "a", type: "UInt8" },
        ]),
      /column a is listed twice/,
    );
  });

  test("declared columns are compared with the table's by meaning, not spelling", () => {
    const table: ColumnSpec[] = [
      { name: "level", type: "Enum8('b' = 2, 'a' = 1)" },
      { name: "n", type: "UInt32" },
      { name: "extra", type: "String" }, // not declared: takes its default
    ];
    assert.deepEqual(
      columnMismatches(
        [
          { name: "level", type: "Enum8('a'=1,'b'=2)" },
          { name: "n", type: "UInt32" },
        ],
        table,
      ),
      [],
    );
    assert.deepEqual(
      columnMismatches(
        [
          { name: "level", type: "Enum8('a' = 1)" },
          { name: "n", type: "UInt64" },
          { name: "gone", type: "String" },
        ],
        table,
      ),
      [
        "column level is Enum8('b' = 2, 'a' = 1) in the table, not Enum8('a' = 1)",
        "column n is UInt32 in the table, not UInt64",
        "the table has no column gone",
      ],
    );
  });
});

describe("RowBinaryEncoder", () => {
  const encoder = new RowBinaryEncoder(COLUMNS);

  test("rows of every type read back as they were written", () => {
    const rows = [
      {
        ts: 1_795_176_000,
        ts_ms: 1_795_176_000_129,
        level: "ERROR",
        message: "直播 é 😀 \n\t\0 \"'`",
        keys: ["a", "", "ключ"],
        status: 503,
        small: 255,
        count: 4_294_967_295,
        delta: -5,
        i8: -128,
        i16: 32767,
        i32: -2_147_483_648,
        ratio: 0.1,
        f32: 1.5,
        code: "ab",
        note: "n",
        grid: [[], [1], [2, 3]],
        e16: "low",
      },
      // Every key missing: each column's default, an Enum's element of the lowest value.
      {},
      {
        ts: 0,
        ts_ms: Number.MAX_SAFE_INTEGER,
        level: "TRACE",
        message: "",
        keys: ["only"],
        delta: -(2n ** 63n),
        code: "abcd",
        note: null,
        e16: "high",
      },
      { ts_ms: 2n ** 64n - 1n, delta: 2n ** 63n - 1n, i16: -32768, i32: 2_147_483_647, i8: 127 },
    ];
    const { out, problems } = encodeAll(encoder, rows);
    assert.deepEqual(problems, [null, null, null, null]);
    const got = decode(COLUMNS, out.buf.subarray(0, out.size));
    const dflt = {
      ts: 0,
      ts_ms: 0n,
      level: "TRACE",
      message: "",
      keys: [],
      status: 0,
      small: 0,
      count: 0,
      delta: 0n,
      i8: 0,
      i16: 0,
      i32: 0,
      ratio: 0,
      f32: 0,
      code: "\0\0\0\0",
      note: null,
      grid: [],
      e16: "low",
    };
    assert.deepEqual(got, [
      { ...rows[0], ts_ms: 1_795_176_000_129n, delta: -5n, code: "ab\0\0" },
      dflt,
      {
        ...dflt,
        ts_ms: BigInt(Number.MAX_SAFE_INTEGER),
        level: "TRACE",
        keys: ["only"],
        delta: -(2n ** 63n),
        code: "abcd",
        e16: "high",
      },
      { ...dflt, ts_ms: 2n ** 64n - 1n, delta: 2n ** 63n - 1n, i16: -32768, i32: 2_147_483_647, i8: 127 },
    ]);
  });

  test("string lengths take one, two or three bytes, around the sizes where the writer changes method", () => {
    const cols = [{ name: "s", type: "String" }];
    const enc = new RowBinaryEncoder(cols);
    const strings: string[] = [];
    for (const n of [0, 1, 20, 21, 42, 43, 127, 128, 129, 16383, 16384, 70_000]) {
      strings.push("x".repeat(n), "é".repeat(n), "😀".repeat(Math.ceil(n / 2)), `${"a".repeat(Math.max(0, n - 1))}é`);
    }
    const { out, problems } = encodeAll(
      enc,
      strings.map((s) => ({ s })),
    );
    assert.ok(problems.every((p) => p === null));
    assert.deepEqual(
      decode(cols, out.buf.subarray(0, out.size)).map((r) => r.s),
      strings,
    );
    // A 128-byte string's length is two bytes: 0x80 0x01.
    const one: ByteBuffer = { buf: Buffer.alloc(1), size: 0 };
    enc.encode({ s: "y".repeat(128) }, one);
    assert.deepEqual([...one.buf.subarray(0, 3)], [0x80, 0x01, 0x79]);
  });

  test("a value that does not fit its column is refused, naming the column; nothing of the row is written", () => {
    const bad: Array<[object, RegExp]> = [
      [{ status: -1 }, /^column status \(UInt16\): -1 is not an integer in 0\.\.65535$/],
      [{ status: 65536 }, /column status .*65536 is not an integer/],
      [{ small: 256 }, /column small \(UInt8\)/],
      [{ count: "12" }, /^column count \(UInt32\): "12" is not an integer/],
      [{ count: 1.5 }, /column count .*1\.5 is not an integer/],
      [{ i8: 128 }, /column i8 \(Int8\): 128 is not an integer in -128\.\.127/],
      [{ ts_ms: -1 }, /column ts_ms \(UInt64\): -1 is not an integer/],
      [
        { ts_ms: 2 ** 53 },
        /column ts_ms \(UInt64\): 9007199254740992 is past 2\^53, where a number is not exact: give a bigint/,
      ],
      [{ ts_ms: 2n ** 64n }, /column ts_ms \(UInt64\): 18446744073709551616n is not an integer/],
      [{ delta: 2n ** 63n }, /column delta \(Int64\)/],
      [{ ts_ms: "1795176000129" }, /column ts_ms \(UInt64\): "1795176000129" is not an integer/],
      [{ ts: 1_795_176_000_129 }, /column ts \(DateTime\): 1795176000129 is not whole seconds since the epoch/],
      [{ level: "GALAXY" }, /^column level \(Enum8\('TRACE' = 1, .*\)\): "GALAXY" is not one of the Enum's elements$/],
      [{ level: 5 }, /column level .*5 is not one of the Enum's elements/],
      [{ level: "toString" }, /column level/],
      [{ message: 42 }, /^column message \(String\): 42 is not a string$/],
      [{ message: null }, /column message \(String\): null is not a string/],
      [{ keys: "a" }, /column keys \(Array\(String\)\): "a" is not an array/],
      [{ keys: ["a", 7] }, /column keys \(Array\(String\)\): element 1: 7 is not a string/],
      // biome-ignore lint/suspicious/noSparseArray: a hole is what is tested
      [{ keys: ["a", , "c"] }, /column keys .*element 1: undefined/],
      [{ grid: [[1], [300]] }, /column grid .*element 1: element 0: 300 is not an integer in 0\.\.255/],
      [{ ratio: "0.5" }, /column ratio \(Float64\): "0.5" is not a number/],
      [{ code: "abcde" }, /column code \(FixedString\(4\)\): "abcde" is 5 bytes of UTF-8, more than 4/],
      [{ code: "ééé" }, /6 bytes of UTF-8, more than 4/],
      [{ e16: "mid" }, /column e16/],
    ];
    for (const [row, reason] of bad) {
      const out: ByteBuffer = { buf: Buffer.alloc(8), size: 0 };
      assert.equal(encoder.encode({ message: "before" }, out), null);
      const size = out.size;
      const problem = encoder.encode(
        { ts: 1, message: "a long enough message to have been written already", ...row },
        out,
      );
      assert.match(
        problem ?? "",
        reason,
        JSON.stringify(row, (_, v) => (typeof v === "bigint" ? `${v}n` : v)),
      );
      assert.equal(out.size, size, "the refused row's bytes are not kept");
      assert.equal(encoder.encode({ message: "after" }, out), null);
      assert.deepEqual(
        decode(COLUMNS, out.buf.subarray(0, out.size)).map((r) => r.message),
        ["before", "after"],
      );
    }
  });

  test("keys the columns do not name are ignored", () => {
    const { out } = encodeAll(encoder, [{ message: "m", unknown: "x" }]);
    assert.equal(decode(COLUMNS, out.buf.subarray(0, out.size))[0]?.message, "m");
  });

  test("any column name is read from the row and quoted in the column list, never run as code", () => {
    const names = ["a`b", 'q"uote', "new\nline */ }); throw 1; //", "\u2028", "__proto__"];
    const cols = names.map((name) => ({ name, type: "String" }));
    const enc = new RowBinaryEncoder(cols);
    const row = Object.fromEntries(names.map((n, i) => [n, `v${i}`]));
    Object.defineProperty(row, "__proto__", { value: "v4", enumerable: true });
    const { out, problems } = encodeAll(enc, [row]);
    assert.deepEqual(problems, [null]);
    assert.deepEqual(Object.values(decode(cols, out.buf.subarray(0, out.size))[0] ?? {}), [
      "v0",
      "v1",
      "v2",
      "v3",
      "v4",
    ]);
    assert.equal(enc.columnList, '(`a\\`b`, `q"uote`, `new\\nline */ }); throw 1; //`, `\u2028`, `__proto__`)');
  });
});
