// `pino`: what Node services write with pino. level is a number (10 trace ... 60 fatal; custom
// levels fall in the decade below them, a string level from a formatter is read as a word), time is
// epoch ms (or an ISO string with pino's isoTime), msg the message, hostname the host, name the
// service, err the serialized error {type, message, stack}; every other key is an attribute.
import { z } from "zod";
import type { AppLog } from "../../schemas/types.generated.ts";
import { fieldAt, type LineContext, type LineFormat } from "./format.ts";
import { type JsonAppLogSpec, jsonAppLog, parseJsonObject, Role, roleTable } from "./json-object.ts";
import { TimeZoneName, timeZone } from "./timestamp.ts";

export const PinoFormatConfig = z.strictObject({
  type: z.literal("pino"),
  /** The zone of ISO timestamps written without an offset (pino's own are epoch ms or UTC). */
  timezone: TimeZoneName.default("UTC"),
});
export type PinoFormatConfig = z.output<typeof PinoFormatConfig>;

const ROLES = roleTable({
  level: Role.level,
  time: Role.ts,
  msg: Role.message,
  hostname: Role.host,
  name: Role.service,
  err: Role.error,
  traceId: Role.traceId,
  trace_id: Role.traceId,
  spanId: Role.spanId,
  span_id: Role.spanId,
  logger: Role.logger,
});

export function pinoFormat(config: PinoFormatConfig): LineFormat {
  const spec: JsonAppLogSpec = { roles: ROLES, tsKey: "time", zone: timeZone(config.timezone) };
  return {
    name: "pino",
    schemas: ["AppLog"],
    parse: parseJsonObject,
    field: fieldAt,
    appLog: (parsed: unknown, ctx: LineContext): AppLog => jsonAppLog(parsed as Record<string, unknown>, spec, ctx),
  };
}
