// The JSON side shared by the json, pino and logback formats: parsing a line into an object, and
// mapping an object onto AppLog through a table of which key plays which part. One pass over the
// object's keys with a table lookup per key: no per-format code on the hot path.
import type { AppLog, ErrorInfo } from "../../schemas/types.generated.ts";
import { type AppLogDraft, eventTime, finishAppLog, javaError, levelOf, text } from "./app-log.ts";
import { addAttribute } from "./attributes.ts";
import type { LineContext } from "./format.ts";
import { LineProblem, shown } from "./problem.ts";
import type { TimeZone } from "./timestamp.ts";

/**
 * Where `text` first nests JSON objects and arrays deeper than `max` levels (its index), or -1.
 * Brackets inside strings do not count. One pass and no recursion, so a line of any depth costs
 * only its length; it runs before JSON.parse, whose result every later step walks.
 */
export function jsonTooDeepAt(text: string, max: number): number {
  if (fewBrackets(text, max)) return -1;
  let depth = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // A string: to its closing quote, the one not escaped by an odd run of backslashes.
      for (;;) {
        const q = text.indexOf('"', i + 1);
        if (q < 0) return -1; // unterminated: JSON.parse says so
        let slashes = 0;
        for (let b = q - 1; b > i && text.charCodeAt(b) === 0x5c; b--) slashes++;
        i = q;
        if (slashes % 2 === 0) break;
      }
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return i;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return -1;
}

/**
 * At most `max` opening brackets in all: no nesting can be deeper. Two native searches, far cheaper
 * than the exact walk, which only lines with many brackets need.
 */
function fewBrackets(text: string, max: number): boolean {
  let n = 0;
  for (let i = text.indexOf("{"); i >= 0; i = text.indexOf("{", i + 1)) if (++n > max) return false;
  for (let i = text.indexOf("["); i >= 0; i = text.indexOf("[", i + 1)) if (++n > max) return false;
  return true;
}

/** Throws a `too-deep` LineProblem when `text` nests JSON deeper than `max`. */
export function checkJsonDepth(text: string, max: number): void {
  const at = jsonTooDeepAt(text, max);
  if (at >= 0) {
    throw new LineProblem(
      "too-deep",
      `JSON nested deeper than ${max} levels (the source's maxJsonDepth) at character ${at}: a log line should not nest that deep; the line is kept here as it was`,
    );
  }
}

export function parseJsonObject(line: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (e) {
    const start = line.trimStart();
    if (start === "") throw new LineProblem("malformed-json", "an empty line: JSON lines hold one object per line");
    const hint = start.startsWith("{")
      ? " (a line cut short: the writer crashed or the file was truncated mid-line?)"
      : `; the line starts ${shown(start.slice(0, 30))}: if this file is not JSON lines, set the source's format (text, combined, raw)`;
    throw new LineProblem("malformed-json", `not valid JSON: ${(e as Error).message}${hint}`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new LineProblem("malformed-json", `expected a JSON object per line, got ${shown(v)}`);
  }
  return v as Record<string, unknown>;
}

/** The part a line's key plays in an AppLog. */
export const Role = {
  ts: 1,
  level: 2,
  message: 3,
  logger: 4,
  traceId: 5,
  spanId: 6,
  /** An error object {type, message, stack}; its other keys become `<key>.<name>` attributes. */
  error: 7,
  service: 8,
  host: 9,
  /** An object whose entries are attributes as they are (weir JSON's `attributes`). */
  attributes: 10,
  /** The thread name: attribute `thread`. */
  thread: 11,
  /** logback's numeric level: 50000 and above is FATAL (log4j's FATAL arrives as level ERROR). */
  levelValue: 12,
  /** A Java stack trace as one string: `Type: message\n\tat ...`. */
  stackTrace: 13,
  /** Encoder metadata that says nothing about the event (logback's @version). */
  drop: 14,
} as const;
export type Role = (typeof Role)[keyof typeof Role];

export function roleTable(entries: Record<string, Role>): Record<string, Role> {
  return Object.assign(Object.create(null) as Record<string, Role>, entries);
}

export interface JsonAppLogSpec {
  roles: Record<string, Role>;
  /** The key that holds the time, for messages. */
  tsKey: string;
  zone: TimeZone;
}

export function jsonAppLog(obj: Record<string, unknown>, spec: JsonAppLogSpec, ctx: LineContext): AppLog {
  const roles = spec.roles;
  const attributes: Record<string, string> = {};
  let ts: unknown;
  let level: unknown;
  let levelValue: unknown;
  let message: unknown;
  let logger: unknown;
  let traceId: unknown;
  let spanId: unknown;
  let service: unknown;
  let host: unknown;
  let error: ErrorInfo | null = null;
  for (const k in obj) {
    const v = obj[k];
    switch (roles[k]) {
      case Role.ts:
        ts = v;
        break;
      case Role.level:
        level = v;
        break;
      case Role.message:
        message = v;
        break;
      case Role.logger:
        logger = v;
        break;
      case Role.traceId:
        traceId = v;
        break;
      case Role.spanId:
        spanId = v;
        break;
      case Role.service:
        service = v;
        break;
      case Role.host:
        host = v;
        break;
      case Role.error:
        error = errorInfo(v, k, attributes) ?? error;
        break;
      case Role.stackTrace:
        if (typeof v === "string") error = javaError(v);
        else addAttribute(attributes, k, v);
        break;
      case Role.thread:
        addAttribute(attributes, "thread", v);
        break;
      case Role.attributes:
        if (typeof v === "object" && v !== null && !Array.isArray(v)) {
          for (const a in v as Record<string, unknown>) addAttribute(attributes, a, (v as Record<string, unknown>)[a]);
        } else addAttribute(attributes, k, v);
        break;
      case Role.levelValue:
        levelValue = v;
        break;
      case Role.drop:
        break;
      default:
        addAttribute(attributes, k, v);
    }
  }
  let lvl = levelOf(level, ctx);
  if (typeof levelValue === "number" && levelValue >= 50_000) lvl = "FATAL";
  const draft: AppLogDraft = {
    id: ctx.id,
    ts: eventTime(ts, spec.tsKey, spec.zone),
    service: text(service),
    host: text(host),
    level: lvl,
    message: text(message) ?? "",
    logger: text(logger),
    traceId: text(traceId),
    spanId: text(spanId),
    error,
    attributes,
    source: ctx.source,
  };
  return finishAppLog(draft, ctx);
}

/** An error value: pino's serialized `err`, weir JSON's `error`, or a bare message string. */
function errorInfo(v: unknown, key: string, attributes: Record<string, string>): ErrorInfo | null {
  if (v === undefined || v === null) return null;
  if (typeof v === "string") return { type: "Error", message: v, stack: null };
  if (typeof v !== "object" || Array.isArray(v)) {
    addAttribute(attributes, key, v);
    return null;
  }
  const o = v as Record<string, unknown>;
  let type: string | null = null;
  let name: string | null = null;
  let message = "";
  let stack: string | null = null;
  for (const k in o) {
    const x = o[k];
    if (k === "type" && typeof x === "string") type = x;
    else if (k === "message" && typeof x === "string") message = x;
    else if (k === "stack" && typeof x === "string") stack = x;
    else if (k === "name" && typeof x === "string") name = x;
    else addAttribute(attributes, `${key}.${k}`, x);
  }
  if (type !== null && name !== null) attributes[`${key}.name`] = name;
  return { type: type ?? name ?? "Error", message, stack };
}
