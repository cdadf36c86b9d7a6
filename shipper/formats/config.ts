// The configuration of how a source's lines become events: its format, where they go (a topic, or a
// route by field) and what is added to them. Each part is a shape the agent's source config spreads
// into its own schema; LineDecoderConfig is the three together.
//
//   format: pino                       # or { type: text, timezone: Asia/Shanghai }; default json
//   topic: logs.app                    # or route: { field: kind, topics: { access: logs.access }, default: logs.app }
//   keyField: traceId                  # default: the catalog's key of the topic
//   service: pay-svc                   # or pathTemplate: /var/log/{service}/*.log
//   host: pay-svc-1                    # default: the shipper's host name
//   fields: { env: prod }              # AppLog attributes; for other schemas, fields of the same name
import { z } from "zod";
import { CombinedFormatConfig } from "./combined.ts";
import { FORMAT_NAMES, type FormatName } from "./format.ts";
import { JsonFormatConfig } from "./json.ts";
import { LogbackFormatConfig } from "./logback.ts";
import { compilePathTemplate } from "./path-template.ts";
import { PinoFormatConfig } from "./pino.ts";
import { RawFormatConfig } from "./raw.ts";
import { TextFormatConfig } from "./text.ts";

const FORMAT_CHOICES = `one of ${FORMAT_NAMES.join(", ")}, or { type: <one of them>, ...its options }`;

const FormatByType = z.discriminatedUnion(
  "type",
  [JsonFormatConfig, PinoFormatConfig, LogbackFormatConfig, TextFormatConfig, CombinedFormatConfig, RawFormatConfig],
  { error: FORMAT_CHOICES },
);

/** A format by name (its defaults) or with options: `pino`, `{ type: text, timezone: Asia/Shanghai }`. */
export const FormatSpec = z.preprocess(
  (v) => (typeof v === "string" ? { type: v } : v),
  FormatByType,
) as unknown as z.ZodType<z.output<typeof FormatByType>, FormatName | z.input<typeof FormatByType>>;
export type FormatSpec = z.output<typeof FormatSpec>;

export const formatConfigShape = {
  format: FormatSpec.default({ type: "json", timezone: "UTC", fields: {} }),
  /**
   * Events larger than this are dead-lettered as oversized: Kafka's default message.max.bytes is
   * 1 MiB for a whole record batch, so a bigger record would be refused by the broker anyway.
   */
  maxEventBytes: z.number().int().min(1024).default(1_000_000),
  /**
   * JSON lines (json, pino, logback) nested deeper than this (objects and arrays, the line's own
   * object being level 1) are dead-lettered as too-deep before they are parsed: nothing a line holds
   * can then overflow a walk of it. 64 is far more than any log carries.
   */
  maxJsonDepth: z.number().int().min(2).max(1000).default(64),
};

const topicName = z.string().regex(/^[a-zA-Z0-9._-]{1,249}$/, "a Kafka topic name from schemas/topics.yaml");

export const RouteSpec = z.strictObject({
  /** Dotted path of the line's field that picks the topic, e.g. kind. */
  field: z.string().min(1),
  /** Field value -> topic. */
  topics: z.record(z.string(), topicName).refine((t) => Object.keys(t).length > 0, "name at least one value: topic"),
  /** Where lines go whose value is absent or not listed; without it they are dead-lettered (unroutable). */
  default: topicName.optional(),
});
export type RouteSpec = z.output<typeof RouteSpec>;

export const routeConfigShape = {
  /** Every line goes to this topic... */
  topic: topicName.optional(),
  /** ...or to the topic its field names. */
  route: RouteSpec.optional(),
  /** Dotted path of the record field whose value is the Kafka key; default: the catalog's key of the topic. */
  keyField: z.string().min(1).optional(),
};

export const enrichConfigShape = {
  /** The events' host when the line names none; default: the shipper's host name. */
  host: z.string().min(1).optional(),
  /** The events' service when the line names none. */
  service: z.string().min(1).optional(),
  /** Values read from the file's path, e.g. /var/log/{service}/*.log; {service} and {host} fill those fields, others are like `fields`. */
  pathTemplate: z
    .string()
    .superRefine((t, ctx) => {
      try {
        compilePathTemplate(t);
      } catch (e) {
        ctx.addIssue({ code: "custom", message: (e as Error).message });
      }
    })
    .optional(),
  /** Static values: AppLog attributes; for other schemas, the fields of the same name. The line's own values win. */
  fields: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
};

/** A topic or a route, not both, not neither: for the agent's superRefine of its source schema. */
export function refineRoute(cfg: { topic?: string | undefined; route?: unknown }, ctx: z.RefinementCtx): void {
  if ((cfg.topic === undefined) === (cfg.route === undefined)) {
    ctx.addIssue({
      code: "custom",
      path: cfg.topic === undefined ? ["topic"] : ["route"],
      message:
        cfg.topic === undefined
          ? "name the topic the lines go to (topic: logs.app), or route them by a field (route: { field, topics, default })"
          : "set topic or route, not both",
    });
  }
}

/** The three together. Not strict: the agent's source config, with its own keys besides, parses as it is. */
export const LineDecoderConfig = z
  .object({ ...formatConfigShape, ...routeConfigShape, ...enrichConfigShape })
  .superRefine(refineRoute);
export type LineDecoderConfig = z.output<typeof LineDecoderConfig>;
export type LineDecoderConfigInput = z.input<typeof LineDecoderConfig>;

export type FormatConfig = Pick<LineDecoderConfig, keyof typeof formatConfigShape>;
export type RouteConfig = Pick<LineDecoderConfig, keyof typeof routeConfigShape>;
export type EnrichConfig = Pick<LineDecoderConfig, keyof typeof enrichConfigShape>;
