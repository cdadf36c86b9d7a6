// Why a line became a dead letter instead of an event. Parsers throw a LineProblem (a plain object,
// not an Error: bad lines are routine, and capturing a stack trace for each would cost more than the
// parse); the decoder turns it into a DeadLetter entry for the DLQ topic.

export const DEAD_LETTER_REASONS = [
  /** Not valid JSON, or JSON that is not an object (json, pino, logback). */
  "malformed-json",
  /** A field has a value of the wrong type for the target schema; the message names the field. */
  "wrong-type",
  /** A field the target schema requires is absent (no timestamp, no service, ...). */
  "missing-field",
  /** The bytes are not valid UTF-8. */
  "invalid-utf8",
  /** The line was cut by the source (longer than its maxLineBytes) or is larger than maxEventBytes. */
  "oversized",
  /** A text or combined line the pattern does not match. */
  "unparsable",
  /** Only NUL bytes: a hole in the file (copytruncate while the writer kept its offset, or a crash). */
  "binary",
  /** Routed by a field whose value names no topic, and the route has no default. */
  "unroutable",
  /** JSON nested deeper than the source's maxJsonDepth (objects and arrays). */
  "too-deep",
  /** A bug in weir: the decoder threw unexpectedly. Dead-lettered rather than crashing the shipper on one line. */
  "decoder-error",
] as const;

export type DeadLetterReason = (typeof DEAD_LETTER_REASONS)[number];

export class LineProblem {
  constructor(
    readonly reason: DeadLetterReason,
    readonly message: string,
  ) {}
}

/** A value as a short JSON excerpt for messages: `"yesterday"`, `false`, `{"a":1...`. */
export function shown(value: unknown): string {
  if (value === undefined) return "nothing";
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
