// The contract every line format implements. A format parses the text of a line (or of a merged
// multi-line event) and maps it onto the target topic's schema; the decoder (decoder.ts) does the
// rest: UTF-8 and size checks before, routing, enrichment, Avro encoding and keys after.
import type { AppLog, SchemaName, ShipSource } from "../../schemas/types.generated.ts";
import type { RawLine } from "../types.ts";
import type { DeadLetterReason } from "./problem.ts";

export const FORMAT_NAMES = ["json", "pino", "logback", "text", "combined", "raw"] as const;
export type FormatName = (typeof FORMAT_NAMES)[number];

export interface DecoderCounts {
  /** Lines (or merged events) that became events. */
  events: number;
  /** Lines that became dead letters, by reason. */
  deadLetters: Record<DeadLetterReason, number>;
  /** Events whose level was not recognised and was read as INFO. */
  unknownLevels: number;
  /** Lines that began with NUL bytes (a hole left by copytruncate) that were skipped before parsing. */
  nulPrefixes: number;
}

/** What enrichment gives every line of one file: computed once per file path, not per line. */
export interface FileDefaults {
  /** The config's `service`, else `fields.service`, else a `{service}` capture of the path template. */
  service: string | null;
  /** The config's `host`, else `fields.host`, else the shipper's host. */
  host: string;
  /** AppLog attributes from `fields` and the other path captures; the line's own attributes win. */
  attributes: readonly (readonly [string, string])[];
}

/** What a format needs to know about the line it maps, besides its text. Reused from line to line. */
export interface LineContext {
  line: RawLine;
  /** `<fileId>:<offset>`: stable when a line is shipped twice. AppLog's id; the id of combined lines. */
  id: string;
  source: ShipSource;
  file: FileDefaults;
  /** When the line was decoded: the time of formats without one (raw). */
  now: number;
  counts: DecoderCounts;
}

export interface LineFormat {
  readonly name: FormatName;
  /** The schemas this format can map a line onto. */
  readonly schemas: readonly SchemaName[];
  /** Parses the text. Throws a LineProblem for a line that is not of this format. */
  parse(text: string): unknown;
  /** A field of a parsed line, by dotted path (already split): what `route.field` reads. */
  field(parsed: unknown, path: readonly string[]): unknown;
  /** The AppLog of a parsed line (id, source, service, host and static attributes filled in). */
  appLog?(parsed: unknown, ctx: LineContext): AppLog;
  /**
   * The record of a parsed line for another schema, its field names the schema's; `ts` already in
   * epoch ms. The decoder fills host, service, static fields and source, and the encoder checks the rest.
   */
  record?(parsed: unknown, schema: SchemaName, ctx: LineContext): Record<string, unknown>;
}

/** Reads a dotted path (already split) from parsed JSON. */
export function fieldAt(value: unknown, path: readonly string[]): unknown {
  let v = value;
  for (const p of path) {
    if (typeof v !== "object" || v === null) return undefined;
    v = (v as Record<string, unknown>)[p];
  }
  return v;
}
