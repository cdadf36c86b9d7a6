// `raw`: the line is the message, for logs with no structure to parse (or none worth parsing). The
// event time is when the shipper read the line, the level is the configured one, service and host
// come from enrichment. A merged multi-line event keeps its newlines.
import { z } from "zod";
import type { AppLog } from "../../schemas/types.generated.ts";
import { finishAppLog } from "./app-log.ts";
import type { LineContext, LineFormat } from "./format.ts";

export const RawFormatConfig = z.strictObject({
  type: z.literal("raw"),
  level: z.enum(["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]).default("INFO"),
});
export type RawFormatConfig = z.output<typeof RawFormatConfig>;

export function rawFormat(config: RawFormatConfig): LineFormat {
  return {
    name: "raw",
    schemas: ["AppLog"],
    parse: (text: string) => text,
    field: () => undefined,
    appLog(parsed: unknown, ctx: LineContext): AppLog {
      return finishAppLog(
        {
          id: ctx.id,
          ts: ctx.now,
          service: null,
          host: null,
          level: config.level,
          message: parsed as string,
          logger: null,
          traceId: null,
          spanId: null,
          error: null,
          attributes: {},
          source: ctx.source,
        },
        ctx,
      );
    },
  };
}
