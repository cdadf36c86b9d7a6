// The logs' side of Elasticsearch: the index template (logs-settings.json, logs-mappings.json,
// logs-template.json) and how an AppLog or AccessLog record becomes a document of it, which index
// it goes to and its _id. The sink (sinks/elasticsearch) is generic; the logs pipeline hands it
// these functions.
//
// Field names follow ECS (@timestamp, log.level, service.name, trace.id, http.response.status_code,
// ...), so on-call queries read as they do in any Elastic setup. Fields ECS has no name for live
// under `weir.`; the free-form attributes of an app log line in `attributes`, a flattened field
// (one field in the mapping however many keys the lines carry). The mapping is closed
// (dynamic: false): a field that is not in it stays in _source but is not searchable, so a document
// builder must only write mapped fields (logs.test.ts checks it).
import { readFileSync } from "node:fs";
import type { AccessLog, AppLog } from "../../schemas/types.generated.ts";
import { DailyIndexNamer } from "../../sinks/elasticsearch/index-name.ts";
import type { ComponentTemplateBody, IndexTemplateBody, TemplateSet } from "../../sinks/elasticsearch/templates.ts";
import type { Rec } from "../../stream/types.ts";

/** Log indices are `logs-<service>-YYYY.MM.DD`. */
export const LOGS_INDEX_PREFIX = "logs";
/** The index template's name; its component templates are `<name>-settings` and `<name>-mappings`. */
export const LOGS_TEMPLATE_NAME = "weir-logs";

function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(new URL(file, import.meta.url), "utf8")) as T;
}

export interface LogsTemplateOptions {
  /** Index names start with `<prefix>-`; the template applies to `<prefix>-*`. Default `logs`. */
  prefix?: string;
  /** Template name. Default `weir-logs`. */
  name?: string;
  /** Replicas per shard. Default 0 (the local stack is one node); 1 on a real cluster. */
  replicas?: number;
  /** Primary shards per daily index. Default 1: a day of one service's logs is small. */
  shards?: number;
}

/** The logs' component and index templates, as `installTemplates` takes them. */
export function logsTemplates(options: LogsTemplateOptions = {}): TemplateSet {
  const prefix = options.prefix ?? LOGS_INDEX_PREFIX;
  const name = options.name ?? LOGS_TEMPLATE_NAME;
  // Checks the prefix the way index names will use it.
  new DailyIndexNamer(prefix);
  const settings = readJson<ComponentTemplateBody>("./logs-settings.json");
  const mappings = readJson<ComponentTemplateBody>("./logs-mappings.json");
  const template = readJson<IndexTemplateBody>("./logs-template.json");
  const index = (settings.template.settings as { index: Record<string, unknown> }).index;
  if (options.replicas !== undefined) index.number_of_replicas = options.replicas;
  if (options.shards !== undefined) index.number_of_shards = options.shards;
  const components = [
    { name: `${name}-settings`, body: settings },
    { name: `${name}-mappings`, body: mappings },
  ];
  return {
    components,
    indexTemplates: [
      {
        name,
        body: { ...template, index_patterns: [`${prefix}-*`], composed_of: components.map((c) => c.name) },
      },
    ],
  };
}

/** A log document as the template maps it; absent fields are left out, not null. */
export interface LogDocument {
  "@timestamp": number;
  message: string;
  event: { dataset: "app" | "access"; duration?: number };
  log: { level: string; logger?: string; file?: { path: string }; offset?: number };
  service: { name: string };
  host: { name: string };
  trace?: { id: string };
  span?: { id: string };
  error?: { type?: string; code?: string; message?: string; stack_trace?: string };
  http?: {
    request: { id: string; method: string; body: { bytes: number } };
    response: { status_code: number; body: { bytes: number } };
  };
  url?: { path: string };
  client?: { ip: string };
  user?: { id: string };
  user_agent?: { original: string };
  device?: { id: string };
  attributes?: Record<string, string>;
  weir?: {
    app?: string;
    system?: string;
    caller?: string;
    room_id?: number;
    source?: { file_id: string; seq: number };
  };
}

/** An app log line as a document. */
export function appLogDocument(l: AppLog): LogDocument {
  const s = l.source;
  const doc: LogDocument = {
    "@timestamp": l.ts,
    message: l.message,
    event: { dataset: "app" },
    log:
      s === null
        ? { level: l.level, ...(l.logger !== null ? { logger: l.logger } : {}) }
        : {
            level: l.level,
            ...(l.logger !== null ? { logger: l.logger } : {}),
            file: { path: s.file },
            offset: s.offset,
          },
    service: { name: l.service },
    host: { name: l.host },
  };
  if (l.traceId !== null) doc.trace = { id: l.traceId };
  if (l.spanId !== null) doc.span = { id: l.spanId };
  if (l.error !== null) {
    doc.error =
      l.error.stack !== null
        ? { type: l.error.type, message: l.error.message, stack_trace: l.error.stack }
        : { type: l.error.type, message: l.error.message };
  }
  for (const _ in l.attributes) {
    doc.attributes = l.attributes;
    break;
  }
  if (s !== null) doc.weir = { source: { file_id: s.fileId, seq: s.seq } };
  return doc;
}

/**
 * An access log line as a document. It has no message of its own: one is made (`POST /gift/send 500
 * in 12.3 ms`) so that full-text search and a list of hits read like the app lines around them; a 5xx
 * answer is an ERROR line, everything else INFO, so "a service's errors" finds both kinds.
 */
export function accessLogDocument(l: AccessLog): LogDocument {
  const s = l.source;
  const doc: LogDocument = {
    "@timestamp": l.ts,
    message: `${l.method} ${l.endpoint} ${l.status} in ${Math.round(l.latencyUs / 100) / 10} ms`,
    event: { dataset: "access", duration: l.latencyUs * 1000 },
    log:
      s === null
        ? { level: levelOfStatus(l.status) }
        : { level: levelOfStatus(l.status), file: { path: s.file }, offset: s.offset },
    service: { name: l.service },
    host: { name: l.host },
    http: {
      request: { id: l.id, method: l.method, body: { bytes: l.bytesIn } },
      response: { status_code: l.status, body: { bytes: l.bytesOut } },
    },
    url: { path: l.endpoint },
    client: { ip: l.clientIp },
  };
  if (l.traceId !== null) doc.trace = { id: l.traceId };
  if (l.errorCode !== null) doc.error = { code: l.errorCode };
  if (l.uid !== null) doc.user = { id: String(l.uid) };
  if (l.userAgent !== null) doc.user_agent = { original: l.userAgent };
  if (l.deviceId !== null) doc.device = { id: l.deviceId };
  const weir: NonNullable<LogDocument["weir"]> = { app: l.app, system: l.system };
  if (l.caller !== null) weir.caller = l.caller;
  if (l.roomId !== null) weir.room_id = l.roomId;
  if (s !== null) weir.source = { file_id: s.fileId, seq: s.seq };
  doc.weir = weir;
  return doc;
}

// --- the same documents as JSON text ----------------------------------------------------------------
//
// Most of the sink's own time went to JSON.stringify: a 735-byte access document as an object,
// stringified and copied into a buffer, took 3.6 to 8 µs on the (shared) development machine, the
// text below 2.2 to 3.6 µs (medians about 5.4 and 3.3). So the mappings hand the sink these strings. They must stay equal to the objects above: logs.test.ts parses
// them back and compares, for shipped and unshipped lines and for text that needs escaping.

/** Strings JSON can carry between plain quotes: no quote, backslash, control character or surrogate. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what must be escaped
const PLAIN = /^[^"\\\u0000-\u001f\u2028\u2029\ud800-\udfff]*$/;

function str(s: string): string {
  return PLAIN.test(s) ? `"${s}"` : JSON.stringify(s);
}

/** appLogDocument(l) as JSON text. */
export function appLogJson(l: AppLog): string {
  const s = l.source;
  let o = `{"@timestamp":${l.ts},"message":${str(l.message)},"event":{"dataset":"app"},"log":{"level":${str(l.level)}`;
  if (l.logger !== null) o += `,"logger":${str(l.logger)}`;
  if (s !== null) o += `,"file":{"path":${str(s.file)}},"offset":${s.offset}`;
  o += `},"service":{"name":${str(l.service)}},"host":{"name":${str(l.host)}}`;
  if (l.traceId !== null) o += `,"trace":{"id":${str(l.traceId)}}`;
  if (l.spanId !== null) o += `,"span":{"id":${str(l.spanId)}}`;
  const e = l.error;
  if (e !== null) {
    o += `,"error":{"type":${str(e.type)},"message":${str(e.message)}`;
    o += e.stack !== null ? `,"stack_trace":${str(e.stack)}}` : "}";
  }
  let first = true;
  for (const k in l.attributes) {
    o += `${first ? ',"attributes":{' : ","}${str(k)}:${str(l.attributes[k] as string)}`;
    first = false;
  }
  if (!first) o += "}";
  if (s !== null) o += `,"weir":{"source":{"file_id":${str(s.fileId)},"seq":${s.seq}}}`;
  return `${o}}`;
}

/** accessLogDocument(l) as JSON text. */
export function accessLogJson(l: AccessLog): string {
  const s = l.source;
  let o = `{"@timestamp":${l.ts},"message":${str(`${l.method} ${l.endpoint} ${l.status} in ${Math.round(l.latencyUs / 100) / 10} ms`)},"event":{"dataset":"access","duration":${l.latencyUs * 1000}},"log":{"level":"${levelOfStatus(l.status)}"`;
  if (s !== null) o += `,"file":{"path":${str(s.file)}},"offset":${s.offset}`;
  o += `},"service":{"name":${str(l.service)}},"host":{"name":${str(l.host)}},"http":{"request":{"id":${str(l.id)},"method":${str(l.method)},"body":{"bytes":${l.bytesIn}}},"response":{"status_code":${l.status},"body":{"bytes":${l.bytesOut}}}},"url":{"path":${str(l.endpoint)}},"client":{"ip":${str(l.clientIp)}}`;
  if (l.traceId !== null) o += `,"trace":{"id":${str(l.traceId)}}`;
  if (l.errorCode !== null) o += `,"error":{"code":${str(l.errorCode)}}`;
  if (l.uid !== null) o += `,"user":{"id":"${l.uid}"}`;
  if (l.userAgent !== null) o += `,"user_agent":{"original":${str(l.userAgent)}}`;
  if (l.deviceId !== null) o += `,"device":{"id":${str(l.deviceId)}}`;
  o += `,"weir":{"app":${str(l.app)},"system":${str(l.system)}`;
  if (l.caller !== null) o += `,"caller":${str(l.caller)}`;
  if (l.roomId !== null) o += `,"room_id":${l.roomId}`;
  if (s !== null) o += `,"source":{"file_id":${str(s.fileId)},"seq":${s.seq}}`;
  return `${o}}}`;
}

export function levelOfStatus(status: number): "ERROR" | "INFO" {
  return status >= 500 ? "ERROR" : "INFO";
}

/** An app line's _id: its `id`, `<fileId>:<offset>` for a shipped line, the same however often it is shipped. */
export function appLogId(l: AppLog): string {
  return l.id;
}

/**
 * An access line's _id: where it was read (`<fileId>:<offset>`) when shipped from a file, else the
 * service and request id (`req:<service>:<id>`, unique per request and service).
 */
export function accessLogId(l: AccessLog): string {
  return l.source !== null ? `${l.source.fileId}:${l.source.offset}` : `req:${l.service}:${l.id}`;
}

/** What an ElasticsearchSink needs to know of a log record: its document (as JSON text), index and _id. */
export interface LogMapping<V> {
  toDocument: (rec: Rec<V>) => string;
  index: (rec: Rec<V>) => string;
  id: (rec: Rec<V>) => string;
}

/** What an ElasticsearchSink of app log records needs: document, daily index per service, _id. */
export function appLogMapping(prefix = LOGS_INDEX_PREFIX): LogMapping<AppLog> {
  const namer = new DailyIndexNamer(prefix);
  return {
    toDocument: (rec: Rec<AppLog>) => appLogJson(rec.value),
    index: (rec: Rec<AppLog>) => namer.name(rec.value.service, rec.value.ts),
    id: (rec: Rec<AppLog>) => appLogId(rec.value),
  };
}

/** What an ElasticsearchSink of access log records needs: document, daily index per service, _id. */
export function accessLogMapping(prefix = LOGS_INDEX_PREFIX): LogMapping<AccessLog> {
  const namer = new DailyIndexNamer(prefix);
  return {
    toDocument: (rec: Rec<AccessLog>) => accessLogJson(rec.value),
    index: (rec: Rec<AccessLog>) => namer.name(rec.value.service, rec.value.ts),
    id: (rec: Rec<AccessLog>) => accessLogId(rec.value),
  };
}
