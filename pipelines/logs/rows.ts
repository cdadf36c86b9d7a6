// A log line as a row of the ClickHouse logs table (infra/clickhouse/002_logs.sql). The columns are
// the query language's (pipelines/logs/query/fields.ts); what a line does not have is left out of the
// JSON and takes the column's default ('' or 0), which keeps app rows short.
//
// The values match the Elasticsearch document of the same line (infra/elasticsearch/logs.ts): an
// access line's message and level are made the same way, so a query finds the same lines in both
// stores. rows.test.ts checks that against the document builder.
import { levelOfStatus } from "../../infra/elasticsearch/logs.ts";
import type { Rec } from "../../stream/types.ts";
import { type AccessLog, type AppLog, type LogLine, lineId } from "./lines.ts";

/** What JSONEachRow gets for one line; keys are column names. */
export interface LogRow {
  ts: number;
  ts_ms: number;
  dataset: "app" | "access";
  service: string;
  level: string;
  host: string;
  message: string;
  id: string;
  logger?: string;
  trace_id?: string;
  span_id?: string;
  error_type?: string;
  error_message?: string;
  error_stack?: string;
  error_code?: string;
  attr_keys?: string[];
  attr_values?: string[];
  app?: string;
  system?: string;
  endpoint?: string;
  method?: string;
  status?: number;
  latency_us?: number;
  bytes_in?: number;
  bytes_out?: number;
  uid?: number;
  device_id?: string;
  client_ip?: string;
  user_agent?: string;
  room_id?: number;
  caller?: string;
  source_file?: string;
  source_file_id?: string;
  source_offset?: number;
  source_seq?: number;
}

/** The sink's `toRow`. */
export function logRow(rec: Rec<LogLine>): LogRow {
  const line = rec.value;
  return line.dataset === "app" ? appLogRow(line.log, lineId(line)) : accessLogRow(line.log, lineId(line));
}

export function appLogRow(l: AppLog, id: string): LogRow {
  const row: LogRow = {
    ts: seconds(l.ts),
    ts_ms: l.ts,
    dataset: "app",
    service: l.service,
    level: l.level,
    host: l.host,
    message: l.message,
    id,
  };
  if (l.logger !== null) row.logger = l.logger;
  if (l.traceId !== null) row.trace_id = l.traceId;
  if (l.spanId !== null) row.span_id = l.spanId;
  const e = l.error;
  if (e !== null) {
    row.error_type = e.type;
    row.error_message = e.message;
    if (e.stack !== null) row.error_stack = e.stack;
  }
  const attributes = l.attributes;
  for (const _ in attributes) {
    row.attr_keys = Object.keys(attributes);
    row.attr_values = Object.values(attributes);
    break;
  }
  const s = l.source;
  if (s !== null) {
    row.source_file = s.file;
    row.source_file_id = s.fileId;
    row.source_offset = s.offset;
    row.source_seq = s.seq;
  }
  return row;
}

export function accessLogRow(l: AccessLog, id: string): LogRow {
  const row: LogRow = {
    ts: seconds(l.ts),
    ts_ms: l.ts,
    dataset: "access",
    service: l.service,
    level: levelOfStatus(l.status),
    host: l.host,
    message: accessMessage(l),
    id,
    app: l.app,
    system: l.system,
    endpoint: l.endpoint,
    method: l.method,
    status: l.status,
    latency_us: l.latencyUs,
    bytes_in: l.bytesIn,
    bytes_out: l.bytesOut,
    client_ip: l.clientIp,
  };
  if (l.errorCode !== null) row.error_code = l.errorCode;
  if (l.traceId !== null) row.trace_id = l.traceId;
  if (l.uid !== null) row.uid = l.uid;
  if (l.deviceId !== null) row.device_id = l.deviceId;
  if (l.userAgent !== null) row.user_agent = l.userAgent;
  if (l.roomId !== null) row.room_id = l.roomId;
  if (l.caller !== null) row.caller = l.caller;
  const s = l.source;
  if (s !== null) {
    row.source_file = s.file;
    row.source_file_id = s.fileId;
    row.source_offset = s.offset;
    row.source_seq = s.seq;
  }
  return row;
}

/** The message an access line is given in both stores: `POST /gift/send 500 in 12.3 ms`. */
export function accessMessage(l: AccessLog): string {
  return `${l.method} ${l.endpoint} ${l.status} in ${Math.round(l.latencyUs / 100) / 10} ms`;
}

// A DateTime column takes whole seconds: milliseconds would be read as a date in 2080 (docs/clickhouse.md).
function seconds(ms: number): number {
  return Math.floor(ms / 1000);
}
