// The fields on-call types, and what each one is in the two stores. This table is the one place that
// knows the stores' names: when the Elasticsearch mapping or the ClickHouse logs table changes, edit it
// here (or pass another LogSchema to the compilers) and nothing else.
//
// Elasticsearch: ECS names, `message` as text, attributes in one `flattened` field.
// ClickHouse: a logs table with one column per field, attributes as the parallel arrays
// attr_keys / attr_values (the value of key k is attr_values[indexOf(attr_keys, 'k')]).

/**
 * How a field is searched:
 * - text: full text (phrases, case-insensitive);
 * - keyword: exact values and wildcards;
 * - level: a log level, any case, ordered (level >= warn);
 * - integer: whole numbers, ranges, `5xx`;
 * - duration: ranges with units (latency > 1.5s), stored in the unit each store says;
 * - id: a numeric id, exact;
 * - attribute: attr.<key>, a string value of the line's attributes.
 */
export type FieldKind = "text" | "keyword" | "level" | "integer" | "duration" | "id";

export interface LogField {
  /** The name on-call types, and shows in errors and docs. */
  name: string;
  /** Other names accepted: the stores' own names, common spellings. */
  aliases: readonly string[];
  kind: FieldKind;
  /** Elasticsearch field. */
  es: string;
  /** ClickHouse column. */
  ch: string;
  /** Stored through the PII masker: a phone number typed in a query is searched as its token. */
  masked: boolean;
  /**
   * A keyword field bare words also search (the text field is always searched): a Java class typed as
   * a bare word finds the lines that class logged. `esWords` is its subfield analysed into words (the
   * class's simple name finds it); where an older index lacks it, the whole value still matches.
   */
  bare?: { esWords?: string };
  description: string;
}

export interface LogSchema {
  fields: readonly LogField[];
  /** Bare words also match a whole attribute value (any key). */
  bareAttributes: boolean;
  elasticsearch: {
    /** The `flattened` field holding the attributes. */
    attributes: string;
    /** `event.duration`: nanoseconds per unit of the stored duration. */
    durationUnitNs: number;
    /** Text fields a PII token can be in (attributes are searched too). */
    maskedText: readonly string[];
  };
  clickhouse: {
    attrKeys: string;
    attrValues: string;
    /** `latency_us`: nanoseconds per unit of the stored duration. */
    durationUnitNs: number;
    /** Text columns a PII token can be in (attribute values are searched too). */
    maskedText: readonly string[];
  };
}

/** The levels of AppLog, lowest first. */
export const LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"] as const;

export const LOG_SCHEMA: LogSchema = {
  bareAttributes: true,
  fields: [
    {
      name: "message",
      aliases: ["msg"],
      kind: "text",
      es: "message",
      ch: "message",
      masked: true,
      description: "the line's message; bare words and phrases search it",
    },
    {
      name: "service",
      aliases: ["svc", "service.name"],
      kind: "keyword",
      es: "service.name",
      ch: "service",
      masked: false,
      description: "the service that wrote the line, e.g. gift-svc",
    },
    {
      name: "level",
      aliases: ["log.level", "severity"],
      kind: "level",
      es: "log.level",
      ch: "level",
      masked: false,
      description: "TRACE, DEBUG, INFO, WARN, ERROR, FATAL (any case; warning, err and pino's 10-60 too)",
    },
    {
      name: "trace",
      aliases: ["traceId", "trace.id", "trace_id"],
      kind: "keyword",
      es: "trace.id",
      ch: "trace_id",
      masked: false,
      description: "the distributed trace id",
    },
    {
      name: "status",
      aliases: ["http.response.status_code"],
      kind: "integer",
      es: "http.response.status_code",
      ch: "status",
      masked: false,
      description: "HTTP status (access logs); 5xx for 500-599",
    },
    {
      name: "endpoint",
      aliases: ["url.path", "path", "route"],
      kind: "keyword",
      es: "url.path",
      ch: "endpoint",
      masked: false,
      description: "the route template, e.g. /gift/send or /room/{id}/enter",
    },
    {
      name: "host",
      aliases: ["host.name", "pod"],
      kind: "keyword",
      es: "host.name",
      ch: "host",
      masked: false,
      description: "the host or pod",
    },
    {
      name: "logger",
      aliases: ["log.logger"],
      kind: "keyword",
      es: "log.logger",
      ch: "logger",
      masked: false,
      bare: { esWords: "log.logger.words" },
      description: "the logger or component; bare words search it too (com.live.gift.GiftController, GiftController)",
    },
    {
      name: "query",
      aliases: ["url.query", "urlQuery", "url_query"],
      kind: "text",
      es: "url.query",
      ch: "url_query",
      masked: true,
      description: "the request URL's query string (access logs), without the '?': query:\"from=feed\"",
    },
    {
      name: "referrer",
      aliases: ["referer", "http.request.referrer"],
      kind: "text",
      es: "http.request.referrer",
      ch: "referrer",
      masked: true,
      description: "the page the request came from (access logs), the Referer header",
    },
    {
      name: "latency",
      aliases: ["duration", "event.duration", "latency_us"],
      kind: "duration",
      es: "event.duration",
      ch: "latency_us",
      masked: false,
      description: "request latency (access logs), with a unit: 250ms, 1.5s, 800us",
    },
    {
      name: "uid",
      aliases: ["user", "user.id"],
      kind: "id",
      es: "user.id",
      ch: "uid",
      masked: false,
      description: "the signed-in user's id",
    },
    {
      name: "error",
      aliases: ["error.type", "error_type", "err"],
      kind: "keyword",
      es: "error.type",
      ch: "error_type",
      masked: false,
      description: "the error class or code, e.g. java.net.SocketTimeoutException",
    },
  ],
  elasticsearch: {
    attributes: "attributes",
    durationUnitNs: 1, // ECS event.duration is in nanoseconds
    maskedText: ["message", "error.message", "error.stack_trace", "url.query", "http.request.referrer"],
  },
  clickhouse: {
    attrKeys: "attr_keys",
    attrValues: "attr_values",
    durationUnitNs: 1000, // latency_us
    maskedText: ["message", "error_message", "error_stack", "url_query", "referrer"],
  },
};

/** Prefixes of attribute fields: attr.reqId, attributes.reqId. */
export const ATTRIBUTE_PREFIXES = ["attr.", "attributes."] as const;

/** Field names that search PII tokens rather than a field: pii:ph_3f9a…, phone:13800138000. */
export const PII_FIELDS: Record<string, "any" | "phone" | "idCard" | "email" | "card"> = {
  pii: "any",
  phone: "phone",
  mobile: "phone",
  idcard: "idCard",
  email: "email",
  card: "card",
};

/** Attribute keys as services write them; anything else is refused rather than quoted into a query. */
export const ATTRIBUTE_KEY = /^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,127}$/;

const SQL_NAME = /^[a-z_][a-z0-9_]*$/;
const ES_NAME = /^[a-z_][a-z0-9_.@]*$/i;

/** The schema is code, but a typo in it would become SQL: every name is checked when it is used. */
export function checkSchema(schema: LogSchema): void {
  const seen = new Map<string, string>();
  for (const f of schema.fields) {
    if (!ES_NAME.test(f.es)) throw new Error(`log schema: "${f.es}" is no Elasticsearch field name`);
    if (f.bare && f.kind !== "keyword" && f.kind !== "text")
      throw new Error(`log schema: bare words cannot search ${f.name}`);
    if (f.bare?.esWords !== undefined && !ES_NAME.test(f.bare.esWords))
      throw new Error(`log schema: "${f.bare.esWords}" is no Elasticsearch field name`);
    if (!SQL_NAME.test(f.ch)) throw new Error(`log schema: "${f.ch}" is no plain ClickHouse column name`);
    for (const n of [f.name, ...f.aliases]) {
      const key = n.toLowerCase();
      const other = seen.get(key);
      if (other) throw new Error(`log schema: "${n}" names both ${other} and ${f.name}`);
      seen.set(key, f.name);
    }
  }
  for (const c of [schema.clickhouse.attrKeys, schema.clickhouse.attrValues, ...schema.clickhouse.maskedText]) {
    if (!SQL_NAME.test(c)) throw new Error(`log schema: "${c}" is no plain ClickHouse column name`);
  }
}

/** Levenshtein distance, for "did you mean". */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j] as number;
      row[j] = Math.min(up + 1, (row[j - 1] as number) + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length] as number;
}
