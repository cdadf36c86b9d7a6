// Rows in ClickHouse's RowBinary format: each row's columns in the order of the INSERT's column list,
// little-endian numbers, strings and arrays prefixed with their length as an unsigned LEB128 varint.
// The server reads it without parsing text, which over HTTP is most of an INSERT's cost on the
// server (bench/results/logs-clickhouse.md).
//
// RowBinary carries no names and no checks: 18.16 stores an Enum8 byte that is no element of the
// Enum, and a body whose column types differ from the table's is read as other values. So the
// encoder checks every value against its column's type and refuses the row, naming the column, and
// the sink compares the declared columns with the table's before its first INSERT.
//
// The encoder is made once from the column list (name and type, as `system.columns` spells it);
// encoding a row writes straight into the caller's growing buffer and allocates nothing.
import { quoteIdentifier } from "./sql.ts";

/** A column of the INSERT: its name and its ClickHouse type (`String`, `Enum8('a' = 1)`, `Array(UInt64)`, ...). */
export interface ColumnSpec {
  name: string;
  type: string;
}

/** A buffer being filled: `buf[0, size)` is written. The encoder replaces `buf` with a bigger copy when it must. */
export interface ByteBuffer {
  buf: Buffer;
  size: number;
}

/** A parsed column type. */
export type ColumnType =
  | { kind: "String" }
  | { kind: "FixedString"; length: number }
  | { kind: "UInt8" | "UInt16" | "UInt32" | "UInt64" | "Int8" | "Int16" | "Int32" | "Int64" }
  | { kind: "Float32" | "Float64" }
  | { kind: "DateTime"; timezone: string | null }
  | { kind: "Enum8" | "Enum16"; elements: Array<[name: string, value: number]> }
  | { kind: "Array"; of: ColumnType }
  | { kind: "Nullable"; of: ColumnType };

/** A column type the encoder cannot write, or a type string it cannot read. */
export class ColumnTypeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ColumnTypeError";
  }
}

// --- types ------------------------------------------------------------------------------------------

const SIMPLE = new Set(["String", "UInt8", "UInt16", "UInt32", "UInt64", "Int8", "Int16", "Int32", "Int64"]);
const SUPPORTED =
  "String, FixedString(N), UInt8..UInt64, Int8..Int64, Float32, Float64, DateTime, Enum8, Enum16, Array(T), Nullable(T)";

/** Reads a type as ClickHouse writes it in DDL or `system.columns`. */
export function parseColumnType(text: string): ColumnType {
  const p = new TypeReader(text);
  const t = p.type();
  p.end();
  return t;
}

/** The type in one spelling (Enum elements by value, one space after commas), to compare two spellings. */
export function formatColumnType(t: ColumnType): string {
  switch (t.kind) {
    case "FixedString":
      return `FixedString(${t.length})`;
    case "DateTime":
      return t.timezone === null ? "DateTime" : `DateTime(${quote(t.timezone)})`;
    case "Enum8":
    case "Enum16":
      return `${t.kind}(${t.elements.map(([n, v]) => `${quote(n)} = ${v}`).join(", ")})`;
    case "Array":
    case "Nullable":
      return `${t.kind}(${formatColumnType(t.of)})`;
    default:
      return t.kind;
  }
}

function quote(s: string): string {
  return `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

class TypeReader {
  private at = 0;
  constructor(private readonly text: string) {}

  type(): ColumnType {
    const name = this.word();
    if (SIMPLE.has(name) || name === "Float32" || name === "Float64") {
      return { kind: name } as ColumnType;
    }
    switch (name) {
      case "DateTime": {
        if (!this.take("(")) return { kind: "DateTime", timezone: null };
        const timezone = this.string();
        this.expect(")");
        return { kind: "DateTime", timezone };
      }
      case "FixedString": {
        this.expect("(");
        const length = this.integer();
        this.expect(")");
        if (length < 1) this.fail("a FixedString length of at least 1");
        return { kind: "FixedString", length };
      }
      case "Enum8":
      case "Enum16": {
        this.expect("(");
        const elements: Array<[string, number]> = [];
        do {
          const element = this.string();
          this.expect("=");
          elements.push([element, this.integer()]);
        } while (this.take(","));
        this.expect(")");
        const [lo, hi] = name === "Enum8" ? [-128, 127] : [-32768, 32767];
        for (const [n, v] of elements)
          if (v < lo || v > hi) this.fail(`${name} values within ${lo}..${hi} ('${n}' = ${v})`);
        elements.sort((a, b) => a[1] - b[1]);
        return { kind: name, elements };
      }
      case "Array":
      case "Nullable": {
        this.expect("(");
        const of = this.type();
        this.expect(")");
        return { kind: name, of };
      }
      default:
        throw new ColumnTypeError(
          `column type ${this.text}: RowBinary is written here for ${SUPPORTED} only; use JSONEachRow for a table with other types`,
        );
    }
  }

  end(): void {
    this.space();
    if (this.at < this.text.length) this.fail("the end of the type");
  }

  private space(): void {
    while (this.at < this.text.length && /\s/.test(this.text[this.at] as string)) this.at++;
  }

  private word(): string {
    this.space();
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.text.slice(this.at));
    if (!m) this.fail("a type name");
    this.at += (m as RegExpExecArray)[0].length;
    return (m as RegExpExecArray)[0];
  }

  private integer(): number {
    this.space();
    const m = /^-?\d+/.exec(this.text.slice(this.at));
    if (!m) this.fail("an integer");
    this.at += (m as RegExpExecArray)[0].length;
    return Number((m as RegExpExecArray)[0]);
  }

  private string(): string {
    this.space();
    if (this.text[this.at] !== "'") this.fail("a quoted string");
    let out = "";
    for (this.at++; this.at < this.text.length; this.at++) {
      const c = this.text[this.at] as string;
      if (c === "'") {
        this.at++;
        return out;
      }
      if (c === "\\") {
        this.at++;
        out += this.text[this.at] ?? "";
      } else out += c;
    }
    return this.fail("a closing quote");
  }

  private take(c: string): boolean {
    this.space();
    if (this.text[this.at] !== c) return false;
    this.at++;
    return true;
  }

  private expect(c: string): void {
    if (!this.take(c)) this.fail(`'${c}'`);
  }

  private fail(what: string): never {
    throw new ColumnTypeError(`column type ${this.text}: expected ${what} at character ${this.at + 1}`);
  }
}

// --- writing values -----------------------------------------------------------------------------------

/**
 * Writes one value of a column type at `out.size`. Returns false, having written nothing that counts,
 * when the value does not fit the type; `explain` then says why. `undefined` is the type's default
 * (what JSONEachRow stores for a missing key); `null` fits Nullable only.
 */
interface ValueWriter {
  write(v: unknown, out: ByteBuffer): boolean;
  explain(v: unknown): string;
}

const TWO_32 = 4294967296;
const TWO_64 = 2n ** 64n;
const TWO_63 = 2n ** 63n;
/** Strings up to this many UTF-16 units are copied by a loop here when ASCII: faster than a call into C++ for short strings. */
const SHORT_STRING = 20;
/** Up to this many UTF-16 units, a string's UTF-8 bytes (at most 3 a unit) fit a one-byte length. */
const ONE_BYTE_LENGTH = 42;

/** Makes room for `n` more bytes. */
export function reserve(out: ByteBuffer, n: number): void {
  if (out.size + n <= out.buf.length) return;
  const next = Buffer.allocUnsafe(Math.max(out.buf.length * 2, out.size + n, 4096));
  out.buf.copy(next, 0, 0, out.size);
  out.buf = next;
}

function writeVarint(out: ByteBuffer, n: number): void {
  const buf = out.buf;
  let at = out.size;
  while (n >= 0x80) {
    buf[at++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[at++] = n;
  out.size = at;
}

function writeU32(buf: Buffer, at: number, v: number): void {
  buf[at] = v;
  buf[at + 1] = v >>> 8;
  buf[at + 2] = v >>> 16;
  buf[at + 3] = v >>> 24;
}

/** Writes a string as its UTF-8 length and bytes. */
function writeString(out: ByteBuffer, s: string): void {
  const n = s.length;
  reserve(out, n * 3 + 5);
  const buf = out.buf;
  const at = out.size;
  if (n <= SHORT_STRING) {
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      buf[at + 1 + i] = c;
    }
    if (i === n) {
      buf[at] = n;
      out.size = at + 1 + n;
      return;
    }
  }
  if (n <= ONE_BYTE_LENGTH) {
    const bytes = buf.write(s, at + 1);
    buf[at] = bytes;
    out.size = at + 1 + bytes;
    return;
  }
  writeVarint(out, Buffer.byteLength(s, "utf8"));
  out.size += out.buf.write(s, out.size);
}

function show(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}...` : v);
  if (typeof v === "bigint") return `${v}n`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v === null) return "null";
  if (typeof v === "object") return "an object";
  return String(v);
}

const stringWriter: ValueWriter = {
  write(v, out) {
    if (typeof v === "string") writeString(out, v);
    else if (v === undefined) {
      reserve(out, 1);
      out.buf[out.size++] = 0;
    } else return false;
    return true;
  },
  explain: (v) => `${show(v)} is not a string`,
};

function fixedStringWriter(length: number): ValueWriter {
  return {
    write(v, out) {
      if (v !== undefined && typeof v !== "string") return false;
      // Room for the longest UTF-8 the string can be, so that write() cannot stop short.
      reserve(out, Math.max(length, v === undefined ? 0 : v.length * 3));
      const written = v === undefined ? 0 : out.buf.write(v, out.size);
      if (written > length) return false;
      out.buf.fill(0, out.size + written, out.size + length);
      out.size += length;
      return true;
    },
    explain: (v) =>
      typeof v === "string"
        ? `${show(v)} is ${Buffer.byteLength(v, "utf8")} bytes of UTF-8, more than ${length}`
        : `${show(v)} is not a string`,
  };
}

/** UInt8..UInt32, Int8..Int32: `fits` is true when v is an integer of the type's range (a string or 1.5 is not). */
function smallIntWriter(bytes: 1 | 2 | 4, fits: (v: unknown) => boolean, range: string): ValueWriter {
  return {
    write(v, out) {
      if (v === undefined) v = 0;
      else if (!fits(v)) return false;
      reserve(out, bytes);
      const n = v as number;
      const buf = out.buf;
      const at = out.size;
      buf[at] = n;
      if (bytes >= 2) buf[at + 1] = n >>> 8;
      if (bytes === 4) {
        buf[at + 2] = n >>> 16;
        buf[at + 3] = n >>> 24;
      }
      out.size = at + bytes;
      return true;
    },
    explain: (v) => `${show(v)} is not an integer in ${range}`,
  };
}

function int64Writer(signed: boolean): ValueWriter {
  const min = signed ? -TWO_63 : 0n;
  const max = signed ? TWO_63 - 1n : TWO_64 - 1n;
  return {
    write(v, out) {
      let lo: number;
      let hi: number;
      if (v === undefined) v = 0;
      if (typeof v === "number") {
        // Past 2^53 a number is not exact: the row would hold another value than the one meant.
        if (!Number.isSafeInteger(v) || (!signed && v < 0)) return false;
        lo = v >>> 0;
        hi = Math.floor(v / TWO_32) >>> 0;
      } else if (typeof v === "bigint") {
        if (v < min || v > max) return false;
        const u = BigInt.asUintN(64, v);
        lo = Number(u & 0xffffffffn);
        hi = Number(u >> 32n);
      } else return false;
      reserve(out, 8);
      writeU32(out.buf, out.size, lo);
      writeU32(out.buf, out.size + 4, hi);
      out.size += 8;
      return true;
    },
    explain: (v) =>
      typeof v === "number" && Number.isInteger(v) && !Number.isSafeInteger(v)
        ? `${show(v)} is past 2^53, where a number is not exact: give a bigint`
        : `${show(v)} is not an integer in ${min}..${max} (a number up to 2^53, or a bigint)`,
  };
}

function floatWriter(bytes: 4 | 8): ValueWriter {
  return {
    write(v, out) {
      if (v === undefined) v = 0;
      else if (typeof v !== "number") return false;
      reserve(out, bytes);
      if (bytes === 8) out.buf.writeDoubleLE(v as number, out.size);
      else out.buf.writeFloatLE(v as number, out.size);
      out.size += bytes;
      return true;
    },
    explain: (v) => `${show(v)} is not a number`,
  };
}

function enumWriter(t: { kind: "Enum8" | "Enum16"; elements: Array<[string, number]> }): ValueWriter {
  const values = new Map(t.elements);
  // JSONEachRow stores a missing Enum as its element of the smallest value; so does this.
  const dflt = (t.elements[0] as [string, number])[1];
  const bytes = t.kind === "Enum8" ? 1 : 2;
  return {
    write(v, out) {
      const n = v === undefined ? dflt : typeof v === "string" ? values.get(v) : undefined;
      if (n === undefined) return false;
      reserve(out, bytes);
      out.buf[out.size] = n;
      if (bytes === 2) out.buf[out.size + 1] = n >>> 8;
      out.size += bytes;
      return true;
    },
    explain: (v) => `${show(v)} is not one of the Enum's elements`,
  };
}

function arrayWriter(of: ValueWriter): ValueWriter {
  return {
    write(v, out) {
      if (v === undefined) {
        reserve(out, 1);
        out.buf[out.size++] = 0;
        return true;
      }
      if (!Array.isArray(v)) return false;
      const n = v.length;
      reserve(out, 5);
      writeVarint(out, n);
      // Holes are refused, not written as defaults: [, "a"] is more likely a bug than a wish.
      for (let i = 0; i < n; i++) if (v[i] === undefined || !of.write(v[i], out)) return false;
      return true;
    },
    explain(v) {
      if (!Array.isArray(v)) return `${show(v)} is not an array`;
      for (let i = 0; i < v.length; i++) {
        if (v[i] === undefined) return `element ${i}: undefined`;
        if (!of.write(v[i], scratch)) return `element ${i}: ${of.explain(v[i])}`;
        scratch.size = 0;
      }
      return "?";
    },
  };
}

/** Where `explain` tries elements again to find the bad one. */
const scratch: ByteBuffer = { buf: Buffer.allocUnsafe(256), size: 0 };

function nullableWriter(of: ValueWriter): ValueWriter {
  return {
    write(v, out) {
      reserve(out, 1);
      if (v === null || v === undefined) {
        out.buf[out.size++] = 1;
        return true;
      }
      out.buf[out.size++] = 0;
      return of.write(v, out);
    },
    explain: (v) => of.explain(v),
  };
}

function writerOf(t: ColumnType): ValueWriter {
  switch (t.kind) {
    case "String":
      return stringWriter;
    case "FixedString":
      return fixedStringWriter(t.length);
    case "UInt8":
      return smallIntWriter(1, (v) => ((v as number) & 0xff) === v, "0..255");
    case "UInt16":
      return smallIntWriter(2, (v) => ((v as number) & 0xffff) === v, "0..65535");
    case "UInt32":
      return smallIntWriter(4, (v) => (v as number) >>> 0 === v, "0..4294967295");
    case "DateTime":
      return {
        ...smallIntWriter(4, (v) => (v as number) >>> 0 === v, "0..4294967295"),
        // Milliseconds (1.7e12 today) do not fit 32 bits: the mistake is refused here, not stored as 2080.
        explain: (v) => `${show(v)} is not whole seconds since the epoch (an integer in 0..4294967295)`,
      };
    case "Int8":
      return smallIntWriter(1, (v) => ((v as number) << 24) >> 24 === v, "-128..127");
    case "Int16":
      return smallIntWriter(2, (v) => ((v as number) << 16) >> 16 === v, "-32768..32767");
    case "Int32":
      return smallIntWriter(4, (v) => ((v as number) | 0) === v, "-2147483648..2147483647");
    case "UInt64":
      return int64Writer(false);
    case "Int64":
      return int64Writer(true);
    case "Float32":
      return floatWriter(4);
    case "Float64":
      return floatWriter(8);
    case "Enum8":
    case "Enum16":
      return enumWriter(t);
    case "Array":
      return arrayWriter(writerOf(t.of));
    case "Nullable":
      if (t.of.kind === "Nullable" || t.of.kind === "Array") {
        throw new ColumnTypeError(`column type ${formatColumnType(t)}: ClickHouse has no Nullable of ${t.of.kind}`);
      }
      return nullableWriter(writerOf(t.of));
  }
}

// --- rows ---------------------------------------------------------------------------------------------

/** Encodes rows (objects keyed by column name) as RowBinary, in the order of its columns. */
export class RowBinaryEncoder {
  readonly columns: ReadonlyArray<ColumnSpec & { parsed: ColumnType }>;
  /** `(name1, name2, ...)`, quoted, for `INSERT INTO t <columnList> FORMAT RowBinary`. */
  readonly columnList: string;
  private readonly names: string[];
  private readonly writers: ValueWriter[];

  constructor(columns: ReadonlyArray<ColumnSpec>) {
    if (columns.length === 0) throw new ColumnTypeError("RowBinary needs at least one column");
    const seen = new Set<string>();
    for (const c of columns) {
      if (seen.has(c.name)) throw new ColumnTypeError(`column ${c.name} is listed twice`);
      seen.add(c.name);
    }
    this.columns = columns.map((c) => ({ name: c.name, type: c.type, parsed: parseColumnType(c.type) }));
    this.names = columns.map((c) => c.name);
    this.writers = this.columns.map((c) => writerOf(c.parsed));
    this.columnList = `(${this.names.map(quoteIdentifier).join(", ")})`;
    this.encode = this.compile();
  }

  /**
   * Appends one row to `out`. A key the columns do not name is ignored; a missing one is the column's
   * default. Returns null when written; when a value does not fit its column, writes nothing and returns
   * why, naming the column.
   */
  readonly encode: (row: object, out: ByteBuffer) => string | null;

  /**
   * The encoder as a function written for these columns: each column's value is read by a constant
   * name and its check and write are inline, so every property load and call site sees one column
   * only. A loop over the columns made each of them see all 35 of the logs table and cost twice as
   * much (~1 µs a row more). Column names and Enum values enter the source only as JSON literals.
   */
  private compile(): (row: object, out: ByteBuffer) => string | null {
    const lines: string[] = ["return function encode(row, out) {", "const start = out.size;", "let v, buf, at, lo;"];
    const fixed = (bytes: number, check: string, write: string[]) => [
      `if (v === undefined) v = 0; else if (${check}) return fail(I, v, out, start);`,
      `if (out.size + ${bytes} > out.buf.length) reserve(out, ${bytes});`,
      "buf = out.buf; at = out.size;",
      ...write,
      `out.size = at + ${bytes};`,
    ];
    const le = (n: number, value = "v") =>
      Array.from({ length: n }, (_, k) => `buf[at + ${k}] = ${k === 0 ? value : `${value} >>> ${8 * k}`};`);
    this.columns.forEach((c, i) => {
      lines.push(`// column ${i}`, `v = row[${JSON.stringify(c.name)}];`);
      let code: string[];
      switch (c.parsed.kind) {
        case "String":
          code = [
            'if (typeof v === "string") writeString(out, v);',
            "else if (v === undefined) { if (out.size + 1 > out.buf.length) reserve(out, 1); out.buf[out.size++] = 0; }",
            "else return fail(I, v, out, start);",
          ];
          break;
        case "UInt8":
          code = fixed(1, "(v & 0xff) !== v", le(1));
          break;
        case "UInt16":
          code = fixed(2, "(v & 0xffff) !== v", le(2));
          break;
        case "UInt32":
        case "DateTime":
          code = fixed(4, "v >>> 0 !== v", le(4));
          break;
        case "Int8":
          code = fixed(1, "((v << 24) >> 24) !== v", le(1));
          break;
        case "Int16":
          code = fixed(2, "((v << 16) >> 16) !== v", le(2));
          break;
        case "Int32":
          code = fixed(4, "(v | 0) !== v", le(4));
          break;
        case "UInt64":
        case "Int64": {
          // The common case, a safe integer number, inline; bigints and refusals through the writer.
          const sign = c.parsed.kind === "UInt64" ? "v >= 0" : "true";
          code = [
            "if (v === undefined) v = 0;",
            `if (typeof v === "number" && ${sign} && Number.isSafeInteger(v)) {`,
            "if (out.size + 8 > out.buf.length) reserve(out, 8);",
            "buf = out.buf; at = out.size; lo = v >>> 0;",
            ...le(4, "lo"),
            "lo = Math.floor(v / 4294967296) >>> 0;",
            ...le(4, "lo").map((l) => l.replace(/buf\[at \+ (\d)\]/, (_, k) => `buf[at + ${4 + Number(k)}]`)),
            "out.size = at + 8;",
            "} else if (!W[I].write(v, out)) return fail(I, v, out, start);",
          ];
          break;
        }
        case "Enum8": {
          const dflt = (c.parsed.elements[0] as [string, number])[1];
          // A Map lookup: an object literal would also answer for "toString" and "__proto__".
          code = [
            `lo = v === undefined ? ${dflt} : typeof v === "string" ? E[I].get(v) : undefined;`,
            "if (lo === undefined) return fail(I, v, out, start);",
            "if (out.size + 1 > out.buf.length) reserve(out, 1);",
            "out.buf[out.size++] = lo;",
          ];
          break;
        }
        default:
          code = ["if (!W[I].write(v, out)) return fail(I, v, out, start);"];
      }
      lines.push(...code.map((l) => l.replaceAll("I,", `${i},`).replaceAll("[I]", `[${i}]`)));
    });
    lines.push("return null;", "};");
    const enums = this.columns.map((c) =>
      c.parsed.kind === "Enum8" || c.parsed.kind === "Enum16" ? new Map(c.parsed.elements) : null,
    );
    const fail = (i: number, v: unknown, out: ByteBuffer, start: number): string => {
      out.size = start;
      const c = this.columns[i] as ColumnSpec;
      return `column ${c.name} (${c.type}): ${(this.writers[i] as ValueWriter).explain(v)}`;
    };
    return new Function("W", "E", "reserve", "writeString", "fail", lines.join("\n"))(
      this.writers,
      enums,
      reserve,
      writeString,
      fail,
    );
  }
}

/**
 * How declared columns differ from a table's (`system.columns`' name and type): a column the table
 * lacks, or another type. Columns of the table not declared are fine: an INSERT naming its columns
 * gives them their defaults.
 */
export function columnMismatches(declared: ReadonlyArray<ColumnSpec>, table: ReadonlyArray<ColumnSpec>): string[] {
  const types = new Map(table.map((c) => [c.name, c.type]));
  const problems: string[] = [];
  for (const c of declared) {
    const actual = types.get(c.name);
    if (actual === undefined) problems.push(`the table has no column ${c.name}`);
    else if (canonical(actual) !== canonical(c.type)) {
      problems.push(`column ${c.name} is ${actual} in the table, not ${c.type}`);
    }
  }
  return problems;
}

function canonical(type: string): string {
  try {
    return formatColumnType(parseColumnType(type));
  } catch {
    return `unreadable: ${type}`;
  }
}
