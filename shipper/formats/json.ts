// `json`: JSON lines, the default format. For AppLog, weir's own JSON (what Go services write:
// ts, level, service, host, message, logger, traceId, spanId, error, attributes); `fields` maps other
// JSON shapes onto it (e.g. `fields: { ts: timestamp, message: msg }`). For AccessLog, CoinTxn,
// BehaviorEvent and DeviceReport the line's field names are the schema's.
import { z } from "zod";
import type { AppLog, SchemaName } from "../../schemas/types.generated.ts";
import { eventTime } from "./app-log.ts";
import { fieldAt, type LineContext, type LineFormat } from "./format.ts";
import { type JsonAppLogSpec, jsonAppLog, parseJsonObject, Role, roleTable } from "./json-object.ts";
import { TimeZoneName, timeZone } from "./timestamp.ts";

const lineKey = z.string().min(1).optional();

export const JsonFormatConfig = z.strictObject({
  type: z.literal("json"),
  /** The zone of ISO timestamps written without an offset. */
  timezone: TimeZoneName.default("UTC"),
  /** Which key of the line holds each AppLog field, when it is not weir's name for it. */
  fields: z
    .strictObject({
      ts: lineKey,
      level: lineKey,
      message: lineKey,
      logger: lineKey,
      traceId: lineKey,
      spanId: lineKey,
      error: lineKey,
      service: lineKey,
      host: lineKey,
      attributes: lineKey,
    })
    .default({}),
});
export type JsonFormatConfig = z.output<typeof JsonFormatConfig>;

/** The schemas whose JSON lines carry their own field names, besides AppLog. */
export const JSON_SCHEMAS: readonly SchemaName[] = ["AppLog", "AccessLog", "CoinTxn", "BehaviorEvent", "DeviceReport"];

export function jsonFormat(config: JsonFormatConfig): LineFormat {
  const f = config.fields;
  const roles: Record<string, Role> = {};
  const role = (key: string | undefined, fallback: string[], r: Role) => {
    for (const k of key !== undefined ? [key] : fallback) roles[k] = r;
  };
  role(f.ts, ["ts"], Role.ts);
  role(f.level, ["level"], Role.level);
  role(f.message, ["message"], Role.message);
  role(f.logger, ["logger"], Role.logger);
  role(f.traceId, ["traceId", "trace_id"], Role.traceId);
  role(f.spanId, ["spanId", "span_id"], Role.spanId);
  role(f.error, ["error"], Role.error);
  role(f.service, ["service"], Role.service);
  role(f.host, ["host"], Role.host);
  role(f.attributes, ["attributes"], Role.attributes);
  const zone = timeZone(config.timezone);
  const spec: JsonAppLogSpec = { roles: roleTable(roles), tsKey: f.ts ?? "ts", zone };
  return {
    name: "json",
    schemas: JSON_SCHEMAS,
    parse: parseJsonObject,
    field: fieldAt,
    appLog: (parsed: unknown, ctx: LineContext): AppLog => jsonAppLog(parsed as Record<string, unknown>, spec, ctx),
    record: (parsed: unknown): Record<string, unknown> => {
      const obj = parsed as Record<string, unknown>;
      if (!Number.isSafeInteger(obj.ts)) obj.ts = eventTime(obj.ts, "ts", zone);
      return obj;
    },
  };
}
