// A log line as an Elasticsearch document of the logs template (template.ts): the document
// builders for AppLog and AccessLog records, the same documents as JSON text, and what the sink
// needs to write them: the daily index per service (`<prefix>-<service>-YYYY.MM.DD`) and the line's
// id as _id (lines.ts). The sink (sinks/elasticsearch) is generic; the pipeline hands it these
// functions. It writes `create` actions, so a replayed line is answered 409 and counted as a
// duplicate, never indexed twice.
//
// Field names follow ECS (@timestamp, log.level, service.name, trace.id, http.response.status_code,
// ...), so on-call queries read as they do in any Elastic setup. Fields ECS has no name for live
// under `weir.`; the free-form attributes of an app log line in `attributes`, a flattened field
// (one field in the mapping however many keys the lines carry). The mapping is closed
// (dynamic: false): a builder must only write mapped fields (documents.test.ts checks it).
import type { AccessLog, AppLog } from "../../schemas/types.generated.ts";
import { DailyIndexNamer } from "../../sinks/elasticsearch/index-name.ts";
import type { Rec } from "../../stream/types.ts";
import { accessLogId, appLogId, type LogLine, levelOfStatus, lineId } from "./lines.ts";
import { LOGS_INDEX_PREFIX } from "./template.ts";

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
    request: { id: string; method: string; body: { bytes: number }; referrer?: string };
    response: { status_code: number; body: { bytes: number } };
  };
  url?: { path: string; query?: string };
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
    url: l.urlQuery !== null ? { path: l.endpoint, query: l.urlQuery } : { path: l.endpoint },
    client: { ip: l.clientIp },
  };
  if (l.referrer !== null) (doc.http as NonNullable<LogDocument["http"]>).request.referrer = l.referrer;
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
// text below 2.2 to 3.6 µs (medians about 5.4 and 3.3). So the mappings hand the sink these strings. They must stay equal to the objects above: documents.test.ts parses
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
  o += `},"service":{"name":${str(l.service)}},"host":{"name":${str(l.host)}},"http":{"request":{"id":${str(l.id)},"method":${str(l.method)},"body":{"bytes":${l.bytesIn}}${l.referrer !== null ? `,"referrer":${str(l.referrer)}` : ""}},"response":{"status_code":${l.status},"body":{"bytes":${l.bytesOut}}}},"url":{"path":${str(l.endpoint)}${l.urlQuery !== null ? `,"query":${str(l.urlQuery)}` : ""}},"client":{"ip":${str(l.clientIp)}}`;
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

/** The document as an object (what the sink indexes is its JSON text, `logLineMapping`'s). */
export function logDocument(line: LogLine): LogDocument {
  return line.dataset === "app" ? appLogDocument(line.log) : accessLogDocument(line.log);
}

/**
 * What the pipeline's ElasticsearchSink needs for a line: the document as JSON text (built directly,
 * cheaper than JSON.stringify of the object), its daily index and its _id.
 */
export function logLineMapping(prefix: string): LogMapping<LogLine> {
  const namer = new DailyIndexNamer(prefix);
  return {
    toDocument: (rec: Rec<LogLine>) => {
      const line = rec.value;
      return line.dataset === "app" ? appLogJson(line.log) : accessLogJson(line.log);
    },
    index: (rec: Rec<LogLine>) => namer.name(rec.value.log.service, rec.value.log.ts),
    id: (rec: Rec<LogLine>) => lineId(rec.value),
  };
}
