// What `weir logs` prints for people: one line per log line, aligned, levels coloured, each message
// on one line cut to the terminal's width, and the id `weir logs context` takes at the end. Pure
// functions of the results (the CLI passes the width and whether to colour), so tests read them.
import type { LogHit } from "./hit.ts";
import type { ContextResult, HistogramResult, TraceResult } from "./search.ts";

export interface Colours {
  bold(s: string): string;
  dim(s: string): string;
  red(s: string): string;
  yellow(s: string): string;
  green(s: string): string;
  cyan(s: string): string;
}

/** ANSI colours, or none: the CLI turns them on for a terminal without NO_COLOR. */
export function colours(enabled: boolean): Colours {
  const wrap = (open: number, close: number) => (s: string) => (enabled ? `\u001b[${open}m${s}\u001b[${close}m` : s);
  return {
    bold: wrap(1, 22),
    dim: wrap(2, 22),
    red: wrap(31, 39),
    yellow: wrap(33, 39),
    green: wrap(32, 39),
    cyan: wrap(36, 39),
  };
}

export interface LineFormat {
  /** Times in UTC instead of local time. */
  utc: boolean;
  /** Columns of the terminal; undefined: messages are not cut (output to a file or a pipe). */
  width?: number;
  colours: Colours;
}

const two = (n: number) => (n < 10 ? `0${n}` : String(n));
const three = (n: number) => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : String(n));

/** `2026-11-20 12:30:01.250` in local time or UTC; without the date when `date` is false. */
export function formatTime(ts: number, utc: boolean, date = true): string {
  if (!Number.isFinite(ts)) return "????-??-?? ??:??:??.???".slice(date ? 0 : 11);
  const d = new Date(ts);
  const [y, mo, day, h, mi, s, ms] = utc
    ? [
        d.getUTCFullYear(),
        d.getUTCMonth() + 1,
        d.getUTCDate(),
        d.getUTCHours(),
        d.getUTCMinutes(),
        d.getUTCSeconds(),
        d.getUTCMilliseconds(),
      ]
    : [
        d.getFullYear(),
        d.getMonth() + 1,
        d.getDate(),
        d.getHours(),
        d.getMinutes(),
        d.getSeconds(),
        d.getMilliseconds(),
      ];
  const time = `${two(h)}:${two(mi)}:${two(s)}.${three(ms)}`;
  return date ? `${y}-${two(mo)}-${two(day)} ${time}` : time;
}

/** The level, five wide, coloured by how bad it is. */
export function formatLevel(level: string, c: Colours): string {
  const text = level.padEnd(5);
  switch (level) {
    case "FATAL":
    case "ERROR":
      return c.red(c.bold(text));
    case "WARN":
      return c.yellow(text);
    case "INFO":
      return c.green(text);
    default:
      return c.dim(text);
  }
}

/** A message on one line: line breaks and tabs as spaces, runs of them as one. */
export function oneLine(s: string): string {
  return s.replace(/\s*[\r\n]+\s*/g, " ⏎ ").replace(/\t/g, " ");
}

/** Cuts `s` to `width` characters, the last one an ellipsis when something was cut. */
export function cut(s: string, width: number): string {
  if (width <= 0) return "";
  const chars = Array.from(s);
  return chars.length <= width ? s : `${chars.slice(0, width - 1).join("")}…`;
}

/** The columns of a message line, given the service column's width. */
function hitLine(h: LogHit, serviceWidth: number, f: LineFormat, prefix = ""): string {
  const c = f.colours;
  const head = `${prefix}${formatTime(h.ts, f.utc)}  ${formatLevel(h.level, c)}  ${h.service.padEnd(serviceWidth)}  `;
  const headWidth = prefix.length + 23 + 2 + 5 + 2 + serviceWidth + 2;
  const tail = `  ${h.id}`;
  let message = oneLine(h.message);
  if (f.width !== undefined) {
    const room = f.width - headWidth - tail.length;
    // A terminal too narrow for the columns gets them whole and wraps: a cut to nothing helps no one.
    if (room >= 10) message = cut(message, room);
  }
  return `${head}${message}${c.dim(tail)}`;
}

/** Search hits, one line each: time, level, service, message, id. */
export function formatHits(hits: readonly LogHit[], f: LineFormat): string[] {
  const serviceWidth = Math.max(0, ...hits.map((h) => h.service.length));
  return hits.map((h) => hitLine(h, serviceWidth, f));
}

/** For a service, the depth of its call from the trace's first service, from the access lines' callers. */
export function callDepths(lines: readonly LogHit[]): Map<string, number> {
  const callerOf = new Map<string, string>();
  for (const l of lines) if (l.caller !== undefined && !callerOf.has(l.service)) callerOf.set(l.service, l.caller);
  const depths = new Map<string, number>();
  const depth = (service: string, seen: Set<string>): number => {
    const known = depths.get(service);
    if (known !== undefined) return known;
    const caller = callerOf.get(service);
    const d = caller === undefined || seen.has(caller) ? 0 : 1 + depth(caller, seen.add(service));
    depths.set(service, d);
    return d;
  };
  for (const l of lines) depth(l.service, new Set());
  return depths;
}

/** What a trace line says: an access line's request and answer, an app line's message (cut to `room`). */
function traceText(l: LogHit, c: Colours, room: number | undefined): string {
  if (l.dataset === "access") {
    const status = l.status ?? 0;
    const text = `${l.method ?? ""} ${l.endpoint ?? ""} ${status}`;
    const coloured = status >= 500 ? c.red(text) : status >= 400 ? c.yellow(text) : text;
    const latency = l.latencyMs !== undefined ? ` ${formatMs(l.latencyMs)}` : "";
    return `${coloured}${latency}${l.error?.code ? ` ${l.error.code}` : ""}`;
  }
  const type = l.error?.type ? ` ${l.error.type}` : "";
  let message = oneLine(l.message);
  if (room !== undefined && room - type.length >= 10) message = cut(message, room - type.length);
  return `${message}${type ? c.red(type) : ""}`;
}

export function formatMs(ms: number): string {
  if (ms >= 1000) return `${(ms / 1000).toFixed(ms >= 10_000 ? 1 : 2)} s`;
  return `${ms >= 10 ? Math.round(ms) : ms.toFixed(1)} ms`;
}

/**
 * A trace: a summary, then every line oldest first with its time since the trace began; services
 * indented by how deep in the call chain they are (the access lines' callers), so it reads as a tree.
 */
export function formatTrace(t: TraceResult, f: LineFormat): string[] {
  const c = f.colours;
  if (t.lines.length === 0) return [];
  const first = t.lines[0] as LogHit;
  const last = t.lines[t.lines.length - 1] as LogHit;
  const errors = t.lines.filter((l) => l.level === "ERROR" || l.level === "FATAL").length;
  const out = [
    c.bold(`trace ${t.traceId}`) +
      c.dim(
        `  ${t.lines.length} lines${t.truncated ? " (more not shown)" : ""}, ${t.services.length} services, ` +
          `${formatMs(last.ts - first.ts)} from ${formatTime(first.ts, f.utc)}${f.utc ? " UTC" : ""}`,
      ) +
      (errors > 0 ? `  ${c.red(`${errors} error${errors === 1 ? "" : "s"}`)}` : ""),
  ];
  const depths = callDepths(t.lines);
  const width = Math.max(...t.lines.map((l) => 2 * (depths.get(l.service) ?? 0) + l.service.length));
  for (const l of t.lines) {
    const indent = "  ".repeat(depths.get(l.service) ?? 0);
    const offset = `+${formatMs(l.ts - first.ts)}`.padStart(10);
    const head = `${offset}  ${formatTime(l.ts, f.utc, false)}  ${(indent + l.service).padEnd(width)}  ${formatLevel(l.level, c)}  `;
    const headWidth = 10 + 2 + 12 + 2 + width + 2 + 5 + 2;
    const idTail = `  ${l.id}`;
    const text = traceText(l, c, f.width !== undefined ? f.width - headWidth - idTail.length : undefined);
    out.push(`${head}${text}${c.dim(idTail)}`);
  }
  return out;
}

/** The lines around a hit, in file order, the hit marked with `>` and its seq numbers shown. */
export function formatContext(r: ContextResult, f: LineFormat): string[] {
  const c = f.colours;
  const seqWidth = Math.max(...r.lines.map((l) => String(l.source?.seq ?? "").length));
  const out = [c.dim(`${r.hit.service} ${r.hit.source?.path ?? r.hit.source?.fileId ?? ""}`)];
  for (const l of r.lines) {
    const isHit = l.id === r.hit.id;
    const seq = String(l.source?.seq ?? "").padStart(seqWidth);
    const marker = isHit ? c.bold(">") : " ";
    const head = `${marker} ${c.dim(seq)}  ${formatTime(l.ts, f.utc)}  ${formatLevel(l.level, c)}  `;
    const headWidth = 2 + seqWidth + 2 + 23 + 2 + 5 + 2;
    let message = oneLine(l.message);
    if (f.width !== undefined && f.width - headWidth >= 10) message = cut(message, f.width - headWidth);
    out.push(`${head}${isHit ? c.bold(message) : message}`);
  }
  return out;
}

const EIGHTHS = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];

/** A bar of `value` out of `max` in `width` cells, in eighths of a cell. */
export function bar(value: number, max: number, width: number): string {
  if (max <= 0 || value <= 0 || width <= 0) return "";
  const eighths = Math.max(1, Math.round((value / max) * width * 8));
  return "█".repeat(Math.floor(eighths / 8)) + (EIGHTHS[eighths % 8] as string);
}

/** The start of a bucket as its label: the date only for whole days, seconds only when the interval has them. */
export function bucketLabel(start: number, intervalMs: number, utc: boolean): string {
  const full = formatTime(start, utc);
  if (intervalMs % 86_400_000 === 0) return full.slice(0, 10);
  if (intervalMs % 60_000 === 0) return full.slice(0, 16);
  if (intervalMs % 1000 === 0) return full.slice(0, 19);
  return full;
}

/** A histogram as one bar per bucket, with its count; empty buckets show as a count of 0. */
export function formatHistogram(h: HistogramResult, f: LineFormat): string[] {
  const c = f.colours;
  const labels = h.buckets.map((b) => bucketLabel(b.start, h.intervalMs, f.utc));
  const counts = h.buckets.map((b) => b.count.toLocaleString("en-US"));
  const labelWidth = Math.max(0, ...labels.map((l) => l.length));
  const countWidth = Math.max(0, ...counts.map((n) => n.length));
  const max = Math.max(0, ...h.buckets.map((b) => b.count));
  const barWidth = Math.max(10, (f.width ?? 100) - labelWidth - countWidth - 4);
  return h.buckets.map(
    (b, i) =>
      `${labels[i]?.padEnd(labelWidth)}  ${(counts[i] ?? "").padStart(countWidth)}  ${c.cyan(bar(b.count, max, barWidth))}`,
  );
}
