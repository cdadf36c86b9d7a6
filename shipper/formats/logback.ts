// `logback`: logstash-logback-encoder's JSON, what Java services write. @timestamp is ISO-8601 with
// an offset, level the level word (level_value 50000 and above, which log4j's FATAL becomes, reads as
// FATAL), logger_name the logger, thread_name attribute `thread`, stack_trace the error (`Type:
// message` then the frames), HOSTNAME the host when the encoder includes the context; @version is
// dropped; MDC keys and every other key are attributes.
import { z } from "zod";
import type { AppLog } from "../../schemas/types.generated.ts";
import { fieldAt, type LineContext, type LineFormat } from "./format.ts";
import { type JsonAppLogSpec, jsonAppLog, parseJsonObject, Role, roleTable } from "./json-object.ts";
import { TimeZoneName, timeZone } from "./timestamp.ts";

export const LogbackFormatConfig = z.strictObject({
  type: z.literal("logback"),
  /** The zone of timestamps written without an offset (a custom timestampPattern). */
  timezone: TimeZoneName.default("UTC"),
});
export type LogbackFormatConfig = z.output<typeof LogbackFormatConfig>;

const ROLES = roleTable({
  "@timestamp": Role.ts,
  "@version": Role.drop,
  message: Role.message,
  logger_name: Role.logger,
  thread_name: Role.thread,
  level: Role.level,
  level_value: Role.levelValue,
  stack_trace: Role.stackTrace,
  HOSTNAME: Role.host,
  traceId: Role.traceId,
  trace_id: Role.traceId,
  spanId: Role.spanId,
  span_id: Role.spanId,
});

export function logbackFormat(config: LogbackFormatConfig): LineFormat {
  const spec: JsonAppLogSpec = { roles: ROLES, tsKey: "@timestamp", zone: timeZone(config.timezone) };
  return {
    name: "logback",
    schemas: ["AppLog"],
    parse: parseJsonObject,
    field: fieldAt,
    appLog: (parsed: unknown, ctx: LineContext): AppLog => jsonAppLog(parsed as Record<string, unknown>, spec, ctx),
  };
}
