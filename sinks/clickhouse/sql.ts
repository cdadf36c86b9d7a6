// SQL text for ClickHouse, built on the client side. ClickHouse 18.16 has no server-side query
// parameters (`{name:Type}`; the client's `query_params` fails with "Unknown setting param_..."),
// so every value and name that enters a statement goes through the quoting here: nothing else in
// weir concatenates user-provided text into SQL.

/** A name (database, table, column) to be quoted as an identifier: `name`. */
export class SqlIdentifier {
  constructor(readonly parts: readonly string[]) {}
  toString(): string {
    return this.parts.map(quoteIdentifier).join(".");
  }
}

/** Text inserted as is: only for SQL that weir itself wrote (keywords, a partition expression read from the server). */
export class SqlRaw {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

export type SqlValue = string | number | bigint | boolean | null | Date | readonly SqlValue[];

const STRING_ESCAPES: Record<string, string> = {
  "\\": "\\\\",
  "'": "\\'",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
  "\0": "\\0",
  "\b": "\\b",
  "\f": "\\f",
};

/** A string literal: `'it\'s'`. Backslash escapes work in every ClickHouse release. */
export function quoteString(value: string): string {
  return `'${value.replace(/[\\'\n\r\t\0\b\f]/g, (c) => STRING_ESCAPES[c] as string)}'`;
}

/** An identifier in backquotes: `` `my table` ``. Backquotes and backslashes inside are escaped. */
export function quoteIdentifier(name: string): string {
  if (name.length === 0) throw new SqlError("an identifier cannot be empty");
  return `\`${name.replace(/[\\`]/g, (c) => `\\${c}`).replace(/[\n\r\t\0]/g, (c) => STRING_ESCAPES[c] as string)}\``;
}

/** `db`.`table` (or any dotted name given as parts). */
export function ident(...parts: string[]): SqlIdentifier {
  if (parts.length === 0) throw new SqlError("ident() needs at least one part");
  return new SqlIdentifier(parts);
}

export function raw(text: string): SqlRaw {
  return new SqlRaw(text);
}

/** A literal for any supported JS value. Dates become `toDateTime(<seconds>)` (DateTime has second precision). */
export function literal(value: SqlValue): string {
  if (value === null) return "NULL";
  switch (typeof value) {
    case "string":
      return quoteString(value);
    case "number":
      if (!Number.isFinite(value)) throw new SqlError(`cannot write ${value} as a SQL literal`);
      return String(value);
    case "bigint":
      return value.toString();
    case "boolean":
      return value ? "1" : "0";
  }
  if (value instanceof Date) {
    const t = value.getTime();
    if (!Number.isFinite(t)) throw new SqlError("cannot write an invalid Date as a SQL literal");
    return `toDateTime(${Math.floor(t / 1000)})`;
  }
  if (Array.isArray(value)) return `[${value.map(literal).join(", ")}]`;
  throw new SqlError(`cannot write a ${typeof value} as a SQL literal`);
}

/**
 * A tagged template for statements: interpolated values become literals, `ident(...)` becomes
 * quoted names, `raw(...)` is kept. `sql\`SELECT * FROM ${ident(db, t)} WHERE name = ${name}\``.
 */
export function sql(strings: TemplateStringsArray, ...values: Array<SqlValue | SqlIdentifier | SqlRaw>): string {
  let out = strings[0] as string;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    out += v instanceof SqlIdentifier || v instanceof SqlRaw ? v.toString() : literal(v as SqlValue);
    out += strings[i + 1] as string;
  }
  return out;
}

export class SqlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SqlError";
  }
}
