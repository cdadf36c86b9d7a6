// From a line to what goes to Kafka: exactly one ShipEntry per line (or merged event), the event or
// its dead letter, so the positions the agent checkpoints stay contiguous.
//
//   NUL hole? -> cut or too big? -> strict UTF-8 -> format.parse -> route -> map to the topic's
//   schema + enrich (host, service, fields, source) -> Avro single-object encoding -> key
//
// The encoder validates every value as it writes (avsc never coerces: "200" is not an int), so the
// hot path validates once; only a refused record is walked again to name the field (schema-check.ts).
import { isUtf8 } from "node:buffer";
import { hostname } from "node:os";
import type avro from "avsc";
import { keyReader, type TopicCatalog, type TopicSpec } from "../../schemas/catalog.ts";
import { type AvroCodec, CodecError, codecFor } from "../../schemas/codec.ts";
import { schemaRegistry } from "../../schemas/registry.ts";
import type { SchemaName, ShipSource } from "../../schemas/types.generated.ts";
import type { LinePosition, RawLine, ShipEntry } from "../types.ts";
import { combinedFormat } from "./combined.ts";
import { type FormatSpec, LineDecoderConfig, type LineDecoderConfigInput } from "./config.ts";
import type { DecoderCounts, FileDefaults, FormatName, LineContext, LineFormat } from "./format.ts";
import { jsonFormat } from "./json.ts";
import { checkJsonDepth } from "./json-object.ts";
import { logbackFormat } from "./logback.ts";
import { compilePathTemplate, type PathCaptures } from "./path-template.ts";
import { pinoFormat } from "./pino.ts";
import { DEAD_LETTER_REASONS, LineProblem, shown } from "./problem.ts";
import { rawFormat } from "./raw.ts";
import { recordProblem, valueProblem } from "./schema-check.ts";
import { textFormat } from "./text.ts";

/** Raw bytes kept in a dead letter: enough to see what the line was, small enough for any Kafka record. */
export const DLQ_RAW_LIMIT = 64 * 1024;
export const DEFAULT_DLQ_TOPIC = "dlq.ship";

export interface LineDecoderContext {
  catalog: TopicCatalog;
  /** The shipper's host: dead letters' origin.host, and events' host when neither line nor config names one. Default os.hostname(). */
  host?: string;
  /** Default dlq.ship. Its schema must be DeadLetter. */
  dlqTopic?: string;
  /** The clock of dead letters' ts and raw lines' time. Default Date.now. */
  now?: () => number;
}

export interface LineDecoder {
  /** Pushes exactly one entry onto `out`: the line's event, or its dead letter. Never throws for a bad line. */
  decode(line: RawLine, out: ShipEntry[]): void;
  readonly counts: DecoderCounts;
  readonly format: FormatName;
  /** Every topic this decoder may produce to, the DLQ included. */
  readonly topics: readonly string[];
}

export function createFormat(spec: FormatSpec): LineFormat {
  switch (spec.type) {
    case "json":
      return jsonFormat(spec);
    case "pino":
      return pinoFormat(spec);
    case "logback":
      return logbackFormat(spec);
    case "text":
      return textFormat(spec);
    case "combined":
      return combinedFormat(spec);
    case "raw":
      return rawFormat(spec);
  }
}

/**
 * A decoder for one source. `config` may be the agent's whole source config (other keys are ignored);
 * it is validated here too, and a problem the YAML schema cannot see (a topic missing from the catalog,
 * a format that cannot make the topic's schema) throws an Error saying what to change.
 */
export function createLineDecoder(
  config: LineDecoderConfigInput | LineDecoderConfig,
  ctx: LineDecoderContext,
): LineDecoder {
  const parsed = LineDecoderConfig.safeParse(config);
  if (!parsed.success) {
    throw new Error(
      `invalid source config: ${parsed.error.issues.map((i) => `${i.path.join(".") || "(source)"}: ${i.message}`).join("; ")}`,
    );
  }
  return new SourceLineDecoder(parsed.data, ctx);
}

interface Target {
  index: number;
  topic: string;
  schema: SchemaName;
  type: avro.Type;
  codec: AvroCodec<unknown>;
  key: (record: unknown) => string | null;
  fields: ReadonlySet<string>;
  hasSource: boolean;
}

interface FileInfo extends FileDefaults {
  /** Per target (by index): the [field, value] pairs that fill a record's missing fields, in precedence order. */
  fills: ([string, unknown][] | undefined)[];
  captures: Record<string, string>;
}

class SourceLineDecoder implements LineDecoder {
  readonly counts: DecoderCounts;
  readonly format: FormatName;
  readonly topics: readonly string[];
  private readonly lineFormat: LineFormat;
  private readonly targets: Target[] = [];
  private readonly fixed: Target | null = null;
  private readonly routePath: string[] = [];
  private readonly routes = new Map<string, Target>();
  private readonly routeDefault: Target | null = null;
  private readonly dlq: { topic: string; codec: AvroCodec<unknown>; key: (r: unknown) => string | null };
  private readonly shipperHost: string;
  private readonly clock: () => number;
  private readonly paths: PathCaptures | null;
  private readonly files = new Map<string, FileInfo>();
  private lastFile: string | null = null;
  private lastInfo: FileInfo | null = null;
  private readonly ctx: LineContext;
  private readonly needsNow: boolean;
  /** The format parses JSON: its depth is checked first. */
  private readonly jsonLines: boolean;
  private readonly needsId: boolean;
  private lastKey: string | null = null;
  private lastKeyBytes: Buffer | null = null;
  /** The target of the line being decoded, once known: the DLQ record names its schema. */
  private current: Target | null = null;

  constructor(
    private readonly config: LineDecoderConfig,
    context: LineDecoderContext,
  ) {
    const { catalog } = context;
    this.shipperHost = context.host ?? hostname();
    this.clock = context.now ?? Date.now;
    this.lineFormat = createFormat(config.format);
    this.format = this.lineFormat.name;
    this.needsNow = this.format === "raw";
    this.jsonLines = this.format === "json" || this.format === "pino" || this.format === "logback";
    this.paths = config.pathTemplate !== undefined ? compilePathTemplate(config.pathTemplate) : null;
    this.counts = {
      events: 0,
      deadLetters: Object.fromEntries(DEAD_LETTER_REASONS.map((r) => [r, 0])) as DecoderCounts["deadLetters"],
      unknownLevels: 0,
      nulPrefixes: 0,
    };

    const dlqSpec = topicSpec(catalog, context.dlqTopic ?? DEFAULT_DLQ_TOPIC, "the DLQ topic");
    if (dlqSpec.schema !== "DeadLetter") {
      throw new Error(
        `the DLQ topic ${dlqSpec.name} holds ${dlqSpec.schema} records, not DeadLetter: pick a dlq.* topic`,
      );
    }
    this.dlq = { topic: dlqSpec.name, codec: codecFor("DeadLetter") as AvroCodec<unknown>, key: keyReader(dlqSpec) };

    if (config.topic !== undefined) {
      this.fixed = this.target(topicSpec(catalog, config.topic, "topic"));
    } else if (config.route !== undefined) {
      if (this.format === "raw") throw new Error("format raw has no fields to route by: set topic instead of route");
      this.routePath = config.route.field.split(".");
      for (const [value, topic] of Object.entries(config.route.topics)) {
        this.routes.set(value, this.target(topicSpec(catalog, topic, `route.topics.${value}`)));
      }
      if (config.route.default !== undefined) {
        this.routeDefault = this.target(topicSpec(catalog, config.route.default, "route.default"));
      }
    }
    this.topics = [...this.targets.map((t) => t.topic), this.dlq.topic];
    this.needsId = this.format === "combined" || this.targets.some((t) => t.schema === "AppLog");
    this.checkEnrichment();
    this.ctx = {
      line: undefined as unknown as RawLine,
      id: "",
      source: undefined as unknown as ShipSource,
      file: undefined as unknown as FileDefaults,
      now: 0,
      counts: this.counts,
    };
  }

  decode(line: RawLine, out: ShipEntry[]): void {
    this.current = this.fixed;
    try {
      out.push(this.event(line));
      this.counts.events++;
    } catch (e) {
      const problem =
        e instanceof LineProblem
          ? e
          : new LineProblem(
              "decoder-error",
              `weir ship failed on this line: ${e instanceof Error ? e.message : String(e)} (a bug: please report it with this record)`,
            );
      out.push(this.deadLetter(line, problem));
    }
  }

  private event(line: RawLine): ShipEntry {
    let bytes = line.bytes;
    if (bytes.length > 0 && bytes[0] === 0) bytes = this.skipNulHole(line);
    if (line.size > line.bytes.length) {
      throw new LineProblem(
        "oversized",
        `the line is ${line.size} bytes and the source kept only the first ${line.bytes.length} (its maxLineBytes)`,
      );
    }
    if (line.size > this.config.maxEventBytes) {
      throw new LineProblem(
        "oversized",
        `the event is ${line.size} bytes, more than maxEventBytes (${this.config.maxEventBytes}): Kafka would refuse it`,
      );
    }
    if (!isUtf8(bytes)) throw invalidUtf8(bytes);
    // A byte order mark (files written on Windows start with one) is not part of the first line.
    if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
    const format = this.lineFormat;
    const text = bytes.toString("utf8");
    if (this.jsonLines) checkJsonDepth(text, this.config.maxJsonDepth);
    const parsed = format.parse(text);
    const target = this.fixed ?? this.route(parsed);
    this.current = target;
    const ctx = this.lineContext(line);
    let record: Record<string, unknown>;
    if (target.schema === "AppLog") {
      record = (format.appLog as NonNullable<LineFormat["appLog"]>)(parsed, ctx) as unknown as Record<string, unknown>;
    } else {
      record = (format.record as NonNullable<LineFormat["record"]>)(parsed, target.schema, ctx);
      this.fill(record, target, ctx);
    }
    let value: Buffer;
    try {
      value = target.codec.encode(record);
    } catch (e) {
      if (!(e instanceof CodecError)) throw e;
      throw recordProblem(target.type, record) ?? new LineProblem("wrong-type", e.message);
    }
    return {
      topic: target.topic,
      key: this.keyBytes(target.key(record)),
      value,
      ts: record.ts as number,
      position: positionOf(line),
    };
  }

  /** Consecutive lines of a file mostly share their key (service, host): one Buffer for a run of them. */
  private keyBytes(key: string | null): Buffer | null {
    if (key === null) return null;
    if (key !== this.lastKey) {
      this.lastKey = key;
      this.lastKeyBytes = Buffer.from(key, "utf8");
    }
    return this.lastKeyBytes;
  }

  private lineContext(line: RawLine): LineContext {
    const ctx = this.ctx;
    ctx.line = line;
    // Only AppLog and combined lines take their id from their position; a JSON event has its own.
    if (this.needsId) ctx.id = `${line.fileId}:${line.offset}`;
    ctx.source = { file: line.file, fileId: line.fileId, offset: line.offset, seq: line.seq };
    ctx.file = this.fileInfo(line.file);
    if (this.needsNow) ctx.now = this.clock();
    return ctx;
  }

  private route(parsed: unknown): Target {
    const v = this.lineFormat.field(parsed, this.routePath);
    if (v !== undefined && v !== null) {
      const t = this.routes.get(typeof v === "string" ? v : String(v));
      if (t !== undefined) return t;
    }
    if (this.routeDefault !== null) return this.routeDefault;
    const route = this.config.route as NonNullable<LineDecoderConfig["route"]>;
    throw new LineProblem(
      "unroutable",
      `"${route.field}" is ${shown(v)}, which route.topics does not list (${Object.keys(route.topics).join(", ")}): add it, or set route.default`,
    );
  }

  private fill(record: Record<string, unknown>, target: Target, ctx: LineContext): void {
    const info = ctx.file as FileInfo;
    let fills = info.fills[target.index];
    if (fills === undefined) {
      fills = this.fillsFor(target, info);
      info.fills[target.index] = fills;
    }
    for (let i = 0; i < fills.length; i++) {
      const [k, v] = fills[i] as [string, unknown];
      const cur = record[k];
      if (cur === undefined || cur === null) record[k] = v;
    }
    if (target.hasSource) record.source = ctx.source;
  }

  private fillsFor(target: Target, info: FileInfo): [string, unknown][] {
    const fills: [string, unknown][] = [];
    const add = (k: string, v: unknown) => {
      if (target.fields.has(k) && !fills.some(([f]) => f === k)) fills.push([k, v]);
    };
    add("host", info.host);
    if (info.service !== null) add("service", info.service);
    for (const [k, v] of Object.entries(this.config.fields)) add(k, v);
    for (const [k, v] of Object.entries(info.captures)) add(k, v);
    return fills;
  }

  private fileInfo(file: string): FileInfo {
    if (file === this.lastFile) return this.lastInfo as FileInfo;
    let info = this.files.get(file);
    if (info === undefined) {
      const captures = this.paths?.(file) ?? {};
      const fields = this.config.fields;
      const attributes: [string, string][] = [];
      for (const [k, v] of Object.entries(fields)) if (k !== "service" && k !== "host") attributes.push([k, String(v)]);
      for (const [k, v] of Object.entries(captures)) {
        if (k !== "service" && k !== "host" && !(k in fields)) attributes.push([k, v]);
      }
      info = {
        service: this.config.service ?? stringOrNull(fields.service) ?? captures.service ?? null,
        host: this.config.host ?? stringOrNull(fields.host) ?? captures.host ?? this.shipperHost,
        attributes,
        captures,
        fills: [],
      };
      // Paths are few (a source's files), but a glob over rotated names can grow them without end.
      if (this.files.size >= 10_000) this.files.clear();
      this.files.set(file, info);
    }
    this.lastFile = file;
    this.lastInfo = info;
    return info;
  }

  /** A copytruncate hole (NUL bytes where the writer kept writing at its old offset) is skipped, the line after it kept. */
  private skipNulHole(line: RawLine): Buffer {
    const bytes = line.bytes;
    let i = 0;
    while (i < bytes.length && bytes[i] === 0) i++;
    if (i === bytes.length) {
      throw new LineProblem(
        "binary",
        `${line.size} bytes, all NUL${line.size > bytes.length ? " (as far as the source read)" : ""}: a hole in the file, left by copytruncate while the service kept writing at its old offset, or by a crash`,
      );
    }
    this.counts.nulPrefixes++;
    return bytes.subarray(i);
  }

  private deadLetter(line: RawLine, problem: LineProblem): ShipEntry {
    this.counts.deadLetters[problem.reason]++;
    const now = this.clock();
    const id = `${line.fileId}:${line.offset}:${problem.reason}`;
    const raw = line.bytes.length > DLQ_RAW_LIMIT ? line.bytes.subarray(0, DLQ_RAW_LIMIT) : line.bytes;
    const record = {
      id,
      ts: now,
      component: "ship",
      reason: problem.reason,
      message: problem.message.length > 4096 ? `${problem.message.slice(0, 4093)}...` : problem.message,
      origin: {
        topic: null,
        partition: null,
        offset: null,
        file: line.file,
        fileId: line.fileId,
        fileOffset: line.offset,
        host: this.shipperHost,
      },
      schema: this.current?.schema ?? null,
      raw,
      rawSize: line.size,
      truncated: line.size > raw.length,
      headers: {},
    };
    const key = this.dlq.key(record);
    return {
      topic: this.dlq.topic,
      key: key === null ? null : Buffer.from(key, "utf8"),
      value: this.dlq.codec.encode(record),
      ts: now,
      position: positionOf(line),
    };
  }

  private target(spec: TopicSpec): Target {
    const existing = this.targets.find((t) => t.topic === spec.name);
    if (existing) return existing;
    const format = this.lineFormat;
    if (!format.schemas.includes(spec.schema)) {
      throw new Error(
        `topic ${spec.name} holds ${spec.schema} events, and format ${format.name} makes ${format.schemas.join(", ")}: route these lines to another topic, or use the json format`,
      );
    }
    const type = schemaRegistry().current(spec.schema).type;
    const fieldTypes = new Map(
      ((type as unknown as { fields: avro.types.Field[] }).fields ?? []).map((f) => [f.name, f.type] as const),
    );
    if (spec.schema !== "AppLog") {
      for (const [k, v] of Object.entries(this.config.fields)) {
        const fieldType = fieldTypes.get(k);
        const problem = fieldType && valueProblem(fieldType, v, k);
        if (problem)
          throw new Error(`fields.${k}: ${problem.message} (the ${spec.schema} field of topic ${spec.name})`);
      }
    }
    const key = this.config.keyField ?? spec.key;
    const t: Target = {
      index: this.targets.length,
      topic: spec.name,
      schema: spec.schema,
      type,
      codec: codecFor(spec.schema) as AvroCodec<unknown>,
      key: key === undefined ? () => null : keyReader({ ...spec, key }),
      fields: new Set(fieldTypes.keys()),
      hasSource: fieldTypes.has("source"),
    };
    this.targets.push(t);
    return t;
  }

  /** Fields no line of this format carries must come from the config, or every line would be dead-lettered. */
  private checkEnrichment(): void {
    const c = this.config;
    const captured = new Set(
      c.pathTemplate !== undefined ? [...c.pathTemplate.matchAll(/\{(\w+)\}/g)].map((m) => m[1]) : [],
    );
    const given = (k: string) => k in c.fields || captured.has(k) || (k === "service" && c.service !== undefined);
    const spec = c.format;
    const lineHasService =
      spec.type === "json" || spec.type === "pino" || (spec.type === "text" && spec.pattern.includes("(?<service>"));
    if (!lineHasService && !given("service")) {
      throw new Error(
        `format ${spec.type} lines do not name their service: set service: <name> in the source config, or a pathTemplate with {service} (e.g. /var/log/{service}/*.log)`,
      );
    }
    if (spec.type === "combined") {
      for (const k of ["app", "system"]) {
        if (!given(k)) {
          throw new Error(
            `format combined: AccessLog needs "${k}", which an access log line does not have; set fields.${k} (e.g. fields: { app: live, system: gifting })`,
          );
        }
      }
    }
  }
}

function topicSpec(catalog: TopicCatalog, topic: string, what: string): TopicSpec {
  const spec = catalog.topics.find((t) => t.name === topic);
  if (spec === undefined) {
    throw new Error(
      `${what}: ${topic} is not in the topic catalog ${catalog.file} (known: ${catalog.topics.map((t) => t.name).join(", ")})`,
    );
  }
  return spec;
}

function positionOf(line: RawLine): LinePosition {
  return {
    source: line.source,
    file: line.file,
    fileId: line.fileId,
    offset: line.offset,
    end: line.end,
    seq: line.seq,
  };
}

function stringOrNull(v: unknown): string | null {
  return v === undefined || v === null ? null : String(v);
}

function invalidUtf8(bytes: Buffer): LineProblem {
  const at = firstInvalidUtf8(bytes);
  return new LineProblem(
    "invalid-utf8",
    `invalid UTF-8 at byte ${at} (${bytes.subarray(at, at + 4).toString("hex")}): the service must write UTF-8 text (not GBK or Latin-1)`,
  );
}

/** The offset of the first byte that does not belong to a valid UTF-8 sequence (RFC 3629). */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i] as number;
    if (c < 0x80) {
      i++;
      continue;
    }
    let n: number;
    let min: number;
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
      min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      min = 0x10000;
    } else return i;
    let cp = c & (0x3f >> n);
    for (let k = 1; k <= n; k++) {
      const cc = b[i + k];
      if (cc === undefined || (cc & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += n + 1;
  }
  return b.length;
}
