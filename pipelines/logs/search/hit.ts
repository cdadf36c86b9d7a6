// A log line as search returns it: the same shape for app and access lines, in names that do not
// depend on the store (the OpenAPI document describes it as LogHit). `id` is the document's _id, what
// `weir logs context <id>` takes. Every field a stored document holds is in the hit (hit.test.ts walks
// the documents' leaves), so `weir logs search --json` and the console's JSON view show the whole line.
import type { LogDocument } from "../documents.ts";

export interface LogHit {
  /** The document's _id: `<fileId>:<offset>` for a shipped line. */
  id: string;
  /** The daily index it is in. */
  index: string;
  /** Event time, ms since the epoch. */
  ts: number;
  /** Event time, ISO 8601 UTC. */
  time: string;
  service: string;
  host: string;
  level: string;
  /** `app` (what a service logged) or `access` (one request it served). */
  dataset: string;
  message: string;
  logger?: string;
  traceId?: string;
  spanId?: string;
  /** Access lines: the request. */
  method?: string;
  endpoint?: string;
  /** The URL's query string, without the '?' (PII masked). */
  urlQuery?: string;
  status?: number;
  latencyMs?: number;
  /** The request's id, as the service logged it. */
  requestId?: string;
  bytesIn?: number;
  bytesOut?: number;
  /** The page the request came from (PII masked). */
  referrer?: string;
  userAgent?: string;
  /** Access lines: the availability hierarchy above the service. */
  app?: string;
  system?: string;
  /** The service that called (access lines of internal calls). */
  caller?: string;
  uid?: string;
  deviceId?: string;
  roomId?: number;
  clientIp?: string;
  error?: { type?: string; code?: string; message?: string; stack?: string };
  attributes?: Record<string, string>;
  /** Where the line was read: the file's identity, the line's sequence number in it, path and offset. */
  source?: { fileId: string; seq: number; path?: string; offset?: number };
}

/** The part of a search response's hit that is read. */
export interface RawHit {
  _id?: string;
  _index: string;
  _source?: unknown;
}

/** A stored document as a LogHit. Fields a document lacks are left out, never null. */
export function toLogHit(raw: RawHit): LogHit {
  const d = (raw._source ?? {}) as Partial<LogDocument> & { "@timestamp"?: number | string };
  const stamp = d["@timestamp"];
  const ts = typeof stamp === "number" ? stamp : typeof stamp === "string" ? Date.parse(stamp) : Number.NaN;
  const hit: LogHit = {
    id: raw._id ?? "",
    index: raw._index,
    ts,
    time: Number.isFinite(ts) ? new Date(ts).toISOString() : "",
    service: d.service?.name ?? "",
    host: d.host?.name ?? "",
    level: d.log?.level ?? "",
    dataset: d.event?.dataset ?? "",
    message: d.message ?? "",
  };
  if (d.log?.logger !== undefined) hit.logger = d.log.logger;
  if (d.trace?.id !== undefined) hit.traceId = d.trace.id;
  if (d.span?.id !== undefined) hit.spanId = d.span.id;
  if (d.http) {
    hit.method = d.http.request?.method;
    hit.status = d.http.response?.status_code;
  }
  if (d.url?.path !== undefined) hit.endpoint = d.url.path;
  if (d.url?.query !== undefined) hit.urlQuery = d.url.query;
  if (d.event?.duration !== undefined) hit.latencyMs = d.event.duration / 1e6;
  if (d.http?.request?.id !== undefined) hit.requestId = d.http.request.id;
  if (d.http?.request?.body?.bytes !== undefined) hit.bytesIn = d.http.request.body.bytes;
  if (d.http?.response?.body?.bytes !== undefined) hit.bytesOut = d.http.response.body.bytes;
  if (d.http?.request?.referrer !== undefined) hit.referrer = d.http.request.referrer;
  if (d.user_agent?.original !== undefined) hit.userAgent = d.user_agent.original;
  if (d.weir?.app !== undefined) hit.app = d.weir.app;
  if (d.weir?.system !== undefined) hit.system = d.weir.system;
  if (d.weir?.caller !== undefined) hit.caller = d.weir.caller;
  if (d.user?.id !== undefined) hit.uid = d.user.id;
  if (d.device?.id !== undefined) hit.deviceId = d.device.id;
  if (d.weir?.room_id !== undefined) hit.roomId = d.weir.room_id;
  if (d.client?.ip !== undefined) hit.clientIp = d.client.ip;
  if (d.error) {
    const e: NonNullable<LogHit["error"]> = {};
    if (d.error.type !== undefined) e.type = d.error.type;
    if (d.error.code !== undefined) e.code = d.error.code;
    if (d.error.message !== undefined) e.message = d.error.message;
    if (d.error.stack_trace !== undefined) e.stack = d.error.stack_trace;
    hit.error = e;
  }
  if (d.attributes !== undefined) hit.attributes = d.attributes;
  const src = d.weir?.source;
  if (src) {
    hit.source = { fileId: src.file_id, seq: src.seq };
    if (d.log?.file?.path !== undefined) hit.source.path = d.log.file.path;
    if (d.log?.offset !== undefined) hit.source.offset = d.log.offset;
  }
  return hit;
}
