// The logs pipeline's topology:
//
//   logs.app    (AppLog)    --check id and time, mask PII--+--> Elasticsearch: <prefix>-<service>-YYYY.MM.DD, _id = the line's id
//   logs.access (AccessLog) --check id and time, mask PII--+--> ClickHouse: the logs table
//
// Stateless: each partition of each topic is a task that masks its records in place and hands them to
// both sinks. Nothing leaves the process unmasked: the masking step is the first one, and both sinks
// come after it. Offsets are committed only after both sinks acknowledged every record before them;
// a crash replays the records since the last commit, which both stores absorb (create with the same
// _id: 409; ReplacingMergeTree: merged away). The input topics are keyed by service, so one service's
// lines stay in order within a partition.
//
// A record that cannot be decoded, or has no id or a time before 1970, goes to the DLQ topic with its
// reason (the runtime's); a document Elasticsearch refuses comes back from the sink and goes there too.
import { schemaRegistry } from "../../schemas/registry.ts";
import { StreamApp } from "../../stream/dsl/app.ts";
import type { Sink } from "../../stream/sink.ts";
import type { Duration } from "../../stream/types.ts";
import type { AccessLog, AppLog, LogLine } from "./lines.ts";
import { compileMasker, type PiiMasker, type RecordSchema } from "./pii/masker.ts";

export interface LogsTopologyOptions {
  /** Masks every record before any sink sees it. */
  masker: PiiMasker;
  /** Where masked lines go: the Elasticsearch and ClickHouse sinks (collecting sinks in tests). */
  sinks: ReadonlyArray<Sink<LogLine>>;
  appId?: string;
  appTopic?: string;
  accessTopic?: string;
  dlqTopic?: string;
  commitInterval?: Duration;
}

export const LOGS_DEFAULTS = {
  appId: "weir-logs",
  appTopic: "logs.app",
  accessTopic: "logs.access",
  dlqTopic: "dlq.logs",
  commitInterval: 5000,
} as const;

/** Ids and times the stores can take; throwing sends the record to the DLQ (user-code-error) with the message. */
function checkStorable(id: string, ts: number, what: string): void {
  if (id === "") {
    throw new Error(`${what} has an empty id: without one it cannot be stored idempotently (set id on the producer)`);
  }
  // ClickHouse's DateTime starts in 1970; a negative time would wrap to 2106.
  if (ts < 0) throw new Error(`${what} ${id} has event time ${ts}, before 1970: no daily index or partition for it`);
}

export function buildLogsApp(options: LogsTopologyOptions): StreamApp {
  const o = { ...LOGS_DEFAULTS, ...options };
  if (o.sinks.length === 0) throw new Error("the logs topology needs at least one sink");
  const app = new StreamApp({
    appId: o.appId,
    dlqTopic: o.dlqTopic,
    // Stateless, with idempotent sinks: at-least-once delivery is exactly-once in the stores.
    guarantee: "at-least-once",
    commitInterval: o.commitInterval,
  });
  const registry = schemaRegistry();
  const maskApp = compileMasker<AppLog>(registry.current("AppLog").schema as unknown as RecordSchema, o.masker);
  const maskAccess = compileMasker<AccessLog>(
    registry.current("AccessLog").schema as unknown as RecordSchema,
    o.masker,
  );

  const apps = app.stream<"AppLog">(o.appTopic, { schema: "AppLog" }).map((l): LogLine => {
    checkStorable(l.id, l.ts, "app log line");
    return { dataset: "app", log: maskApp(l) };
  });
  const access = app.stream<"AccessLog">(o.accessTopic, { schema: "AccessLog" }).map((l): LogLine => {
    checkStorable(l.id, l.ts, "access log line");
    return { dataset: "access", log: maskAccess(l) };
  });
  for (const sink of o.sinks) {
    apps.to(sink);
    access.to(sink);
  }
  return app;
}
