// What flows from the logs topology to its sinks: a masked app or access log record, tagged with the
// topic kind it came from, so that one Elasticsearch sink and one ClickHouse sink serve both topics
// (one bulk stream, one INSERT stream, fewer parts) without guessing a record's type from its fields.
import type { AccessLog, AppLog } from "../../schemas/types.generated.ts";

export type { AccessLog, AppLog };

export type LogLine = { dataset: "app"; log: AppLog } | { dataset: "access"; log: AccessLog };

/**
 * The line's id in both stores (Elasticsearch _id, ClickHouse `id`): an app line's `id`
 * (`<fileId>:<offset>` when shipped); for an access line where it was read, else
 * `req:<service>:<request id>`, since a request id is unique only within its service.
 */
export function lineId(line: LogLine): string {
  return line.dataset === "app" ? appLogId(line.log) : accessLogId(line.log);
}

/** An app line's id: its `id`, `<fileId>:<offset>` for a shipped line, the same however often it is shipped. */
export function appLogId(l: AppLog): string {
  return l.id;
}

/**
 * An access line's id: where it was read (`<fileId>:<offset>`) when shipped from a file, else the
 * service and request id (`req:<service>:<id>`, unique per request and service).
 */
export function accessLogId(l: AccessLog): string {
  return l.source !== null ? `${l.source.fileId}:${l.source.offset}` : `req:${l.service}:${l.id}`;
}

/**
 * An access line's level, the same in both stores: a 5xx answer is an ERROR line, everything else
 * INFO, so "a service's errors" finds app and access lines alike.
 */
export function levelOfStatus(status: number): "ERROR" | "INFO" {
  return status >= 500 ? "ERROR" : "INFO";
}
