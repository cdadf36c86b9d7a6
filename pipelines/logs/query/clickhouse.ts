// A resolved query as a ClickHouse WHERE clause, in the dialect of ClickHouse 18.16: no server-side
// parameters (every literal is quoted here, by sinks/clickhouse/sql.ts), no hasToken and no ILIKE
// (text is searched with positionCaseInsensitiveUTF8 and like over lowerUTF8), attributes in the
// parallel arrays attr_keys / attr_values. Column names come from the field table, never from the query.
import { quoteString } from "../../../sinks/clickhouse/sql.ts";
import { checkSchema, LOG_SCHEMA, type LogSchema } from "./fields.ts";
import type { SearchNode, Target } from "./resolve.ts";

export function toClickHouseWhere(node: SearchNode, schema: LogSchema = LOG_SCHEMA): string {
  checkSchema(schema);
  return new ChCompiler(schema).compile(node);
}

class ChCompiler {
  /** Columns of the keyword fields bare words search besides the text. */
  private readonly bareFields: string[];

  constructor(private readonly schema: LogSchema) {
    this.bareFields = schema.fields.filter((f) => f.bare !== undefined && f.kind === "keyword").map((f) => f.ch);
  }

  compile(n: SearchNode): string {
    switch (n.type) {
      case "all":
        return "1";
      case "and":
      case "or":
        return `(${n.children.map((c) => this.compile(c)).join(n.type === "and" ? " AND " : " OR ")})`;
      case "not":
        return `NOT (${this.compile(n.child)})`;
      case "phrase": {
        const text = quoteString(n.text);
        const phrase = `positionCaseInsensitiveUTF8(${this.column(n.target)}, ${text}) > 0`;
        if (!n.bare) return phrase;
        // Typed without a field: the logger and any attribute's whole value too, as in Elasticsearch.
        const also = this.bareFields.map((c) => `positionCaseInsensitiveUTF8(${c}, ${text}) > 0`);
        if (this.schema.bareAttributes) also.push(`has(${this.schema.clickhouse.attrValues}, ${text})`);
        return also.length === 0 ? phrase : `(${[phrase, ...also].join(" OR ")})`;
      }
      case "equals": {
        const numeric = n.target.field?.kind === "integer" || n.target.field?.kind === "id";
        const values = n.values.map((v) => (numeric ? number(v) : quoteString(v)));
        const column = this.column(n.target);
        return values.length === 1 ? `${column} = ${values[0]}` : `${column} IN (${values.join(", ")})`;
      }
      case "wildcard": {
        const pattern = n.parts.map(escapeLike).join("%");
        if (n.target.field?.kind === "text") {
          // A word anywhere in the text, in any case, like the analysed text field in Elasticsearch.
          const around = quoteString(
            `${n.parts[0] === "" ? "" : "%"}${pattern.toLowerCase()}${n.parts[n.parts.length - 1] === "" ? "" : "%"}`,
          );
          const words = `like(lowerUTF8(${this.column(n.target)}), ${around})`;
          if (!n.bare) return words;
          const also = this.bareFields.map((c) => `like(lowerUTF8(${c}), ${around})`);
          if (this.schema.bareAttributes)
            also.push(`arrayExists(x -> like(x, ${quoteString(pattern)}), ${this.schema.clickhouse.attrValues})`);
          return also.length === 0 ? words : `(${[words, ...also].join(" OR ")})`;
        }
        return `like(${this.column(n.target)}, ${quoteString(pattern)})`;
      }
      case "exists": {
        if (n.target.attribute !== undefined)
          return `has(${this.schema.clickhouse.attrKeys}, ${quoteString(n.target.attribute)})`;
        const f = n.target.field;
        switch (f.kind) {
          case "level":
            return "1"; // every line has one (and an Enum column has no '' to compare with)
          case "integer":
          case "duration":
          case "id":
            return `${f.ch} != 0`;
          default:
            return `${f.ch} != ''`;
        }
      }
      case "range": {
        const unit = n.target.field?.kind === "duration" ? this.schema.clickhouse.durationUnitNs : 1;
        const column = this.column(n.target);
        const parts: string[] = [];
        const ops = { gt: ">", gte: ">=", lt: "<", lte: "<=" } as const;
        for (const op of ["gt", "gte", "lt", "lte"] as const) {
          const v = n[op];
          if (v !== undefined) parts.push(`${column} ${ops[op]} ${number(v / unit)}`);
        }
        return parts.length === 1 ? (parts[0] as string) : `(${parts.join(" AND ")})`;
      }
      case "token": {
        const token = quoteString(n.token);
        if ("everywhere" in n.scope) {
          const text = this.schema.clickhouse.maskedText.map((c) => `position(${c}, ${token}) > 0`);
          return `(${[...text, `arrayExists(x -> position(x, ${token}) > 0, ${this.schema.clickhouse.attrValues})`].join(" OR ")})`;
        }
        if ("field" in n.scope) return `position(${n.scope.field.ch}, ${token}) > 0`;
        return `position(${this.attribute(n.scope.attribute)}, ${quoteString(`[${n.token}]`)}) > 0`;
      }
    }
  }

  private column(t: Target): string {
    return t.field !== undefined ? t.field.ch : this.attribute(t.attribute);
  }

  private attribute(key: string): string {
    const { attrKeys, attrValues } = this.schema.clickhouse;
    return `${attrValues}[indexOf(${attrKeys}, ${quoteString(key)})]`;
  }
}

/** `%`, `_` and `\` are LIKE's own characters: escaped, they match themselves. */
function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, "\\$&");
}

/** A number as SQL: finite, and without an exponent. */
function number(v: string | number): string {
  const n = typeof v === "number" ? v : Number(v);
  if (!Number.isFinite(n) || Math.abs(n) >= 1e21 || (typeof v === "string" && !/^\d+$/.test(v))) {
    throw new Error(`not a number for SQL: ${String(v)}`);
  }
  return String(n);
}
