// What flows from the logs topology to its sinks: a masked app or access log record, tagged with the
// topic kind it came from, so that one Elasticsearch sink and one ClickHouse sink serve both topics
// (one bulk stream, one INSERT stream, fewer parts) without guessing a record's type from its fields.
import { accessLogId, appLogId } from "../../infra/elasticsearch/logs.ts";
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
