// The shipper's formats: what the agent imports. See README.md in this folder.
export { CombinedFormatConfig } from "./combined.ts";
export {
  type EnrichConfig,
  enrichConfigShape,
  type FormatConfig,
  FormatSpec,
  formatConfigShape,
  LineDecoderConfig,
  type LineDecoderConfigInput,
  type RouteConfig,
  RouteSpec,
  refineRoute,
  routeConfigShape,
} from "./config.ts";
export {
  createLineDecoder,
  DEFAULT_DLQ_TOPIC,
  DLQ_RAW_LIMIT,
  type LineDecoder,
  type LineDecoderContext,
} from "./decoder.ts";
export { type DecoderCounts, FORMAT_NAMES, type FormatName } from "./format.ts";
export { JsonFormatConfig } from "./json.ts";
export { LogbackFormatConfig } from "./logback.ts";
export { MultilineConfig, type MultilineConfigInput, MultilineMerger } from "./multiline.ts";
export { PinoFormatConfig } from "./pino.ts";
export { DEAD_LETTER_REASONS, type DeadLetterReason } from "./problem.ts";
export { RawFormatConfig } from "./raw.ts";
export { TEXT_EVENT_START, TEXT_PATTERN, TextFormatConfig } from "./text.ts";
