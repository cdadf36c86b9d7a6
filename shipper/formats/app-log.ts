// What every format does to finish an AppLog: event time from whatever the line holds, severity
// words and numbers, Java stack traces split into type, message and frames, and the defaults of
// enrichment (service, host, static attributes) where the line has none.
import type { AppLog, ErrorInfo, Level } from "../../schemas/types.generated.ts";
import type { LineContext } from "./format.ts";
import { levelFromName, levelFromPinoNumber } from "./levels.ts";
import { LineProblem, shown } from "./problem.ts";
import { parseTimestamp, type TimeZone } from "./timestamp.ts";

/** An AppLog whose service and host may still be unknown (null) until finishAppLog. */
export type AppLogDraft = Omit<AppLog, "service" | "host"> & { service: string | null; host: string | null };

/**
 * Epoch ms of a timestamp value: a number of milliseconds (a fraction is dropped), an ISO-8601 string
 * (local time in `zone` when it has no offset), or a string of epoch-ms digits.
 */
export function eventTime(v: unknown, key: string, zone: TimeZone): number {
  if (typeof v === "number") {
    if (Number.isSafeInteger(v)) return v;
    if (Number.isFinite(v) && Math.abs(v) < Number.MAX_SAFE_INTEGER) return Math.trunc(v);
  } else if (typeof v === "string") {
    const t = parseTimestamp(v, zone);
    if (!Number.isNaN(t)) return t;
    if (/^\d{10,16}$/.test(v)) return Number(v);
  } else if (v === undefined || v === null) {
    throw new LineProblem(
      "missing-field",
      `no timestamp: "${key}" is ${v === null ? "null" : "missing"} (every event needs its time)`,
    );
  }
  throw new LineProblem("wrong-type", `"${key}": expected a number (epoch ms) or an ISO-8601 string, got ${shown(v)}`);
}

/** The Level of a line's level value (word or pino number); INFO, counted, when it is not one. */
export function levelOf(v: unknown, ctx: LineContext): Level {
  if (v === undefined || v === null) return "INFO";
  const level = typeof v === "string" ? levelFromName(v) : typeof v === "number" ? levelFromPinoNumber(v) : undefined;
  if (level !== undefined) return level;
  ctx.counts.unknownLevels++;
  return "INFO";
}

/**
 * A Java stack trace as logback and log4j print it: `Type: message` on the first line (the message
 * may be absent), then the frames (`\tat ...`, `Caused by: ...`). The frames are the stack.
 */
export function javaError(text: string): ErrorInfo {
  const nl = text.indexOf("\n");
  const head = nl === -1 ? text : text.slice(0, nl);
  const stack = nl === -1 ? "" : text.slice(nl + 1);
  const colon = head.indexOf(": ");
  return {
    type: colon === -1 ? head.trim() : head.slice(0, colon),
    message: colon === -1 ? "" : head.slice(colon + 2),
    stack: stack === "" ? null : stack,
  };
}

/** A string for a field AppLog wants as text: numbers and booleans as their JSON text, objects as JSON. */
export function text(v: unknown): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v === "string") return v;
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

/** Fills service, host and static attributes from enrichment; a line without any service is dead-lettered. */
export function finishAppLog(draft: AppLogDraft, ctx: LineContext): AppLog {
  if (draft.service === null) {
    draft.service = ctx.file.service;
    if (draft.service === null) {
      throw new LineProblem(
        "missing-field",
        `"service": the line names no service and the source sets none; set service: <name> (or a {service} capture in pathTemplate) in the source config`,
      );
    }
  }
  if (draft.host === null) draft.host = ctx.file.host;
  const attrs = draft.attributes;
  for (const [k, v] of ctx.file.attributes) if (attrs[k] === undefined) attrs[k] = v;
  return draft as AppLog;
}
