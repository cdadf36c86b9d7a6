// Timestamps as services write them: ISO-8601 with or without an offset ("2026-11-20T20:30:00.040+08:00",
// log4j's "2026-11-20 20:30:20.670" or "...20,670"), parsed by hand (Date.parse costs several times
// more, and accepts things that are not timestamps). A timestamp without an offset is local time in
// the format's `timezone`: fixed offsets are exact, IANA zones are resolved with Intl and cached per
// 15 minutes of local time (every DST rule changes on a quarter hour).
import { z } from "zod";

/** Turns a local wall-clock time (as if it were UTC, in ms) into the real UTC instant. */
export interface TimeZone {
  readonly name: string;
  toUtc(localAsUtc: number): number;
}

const UTC: TimeZone = { name: "UTC", toUtc: (t) => t };

/**
 * A zone by name: `UTC`, a fixed offset (`+08:00`, `-0530`), an IANA name (`Asia/Shanghai`), or
 * `local` (the shipper's own zone). Throws an Error saying what is accepted.
 */
export function timeZone(name: string): TimeZone {
  if (name === "UTC" || name === "Z" || name === "GMT") return UTC;
  const fixed = /^([+-])(\d{2}):?(\d{2})$/.exec(name);
  if (fixed) {
    const offset = (fixed[1] === "-" ? -1 : 1) * (Number(fixed[2]) * 60 + Number(fixed[3])) * 60_000;
    return { name, toUtc: (t) => t - offset };
  }
  const iana = name === "local" ? new Intl.DateTimeFormat().resolvedOptions().timeZone : name;
  let dtf: Intl.DateTimeFormat;
  try {
    dtf = new Intl.DateTimeFormat("en-US", {
      timeZone: iana,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
  } catch {
    throw new Error(
      `unknown time zone "${name}": use UTC, an offset such as +08:00, an IANA name such as Asia/Shanghai, or local`,
    );
  }
  return new IanaZone(name, dtf);
}

class IanaZone implements TimeZone {
  private readonly offsets = new Map<number, number>();

  constructor(
    readonly name: string,
    private readonly dtf: Intl.DateTimeFormat,
  ) {}

  toUtc(localAsUtc: number): number {
    const bucket = Math.floor(localAsUtc / 900_000);
    let offset = this.offsets.get(bucket);
    if (offset === undefined) {
      // Two steps find the offset in force at the local time, not at the same instant read as UTC.
      offset = this.offsetAt(localAsUtc - this.offsetAt(localAsUtc));
      if (this.offsets.size > 4096) this.offsets.clear();
      this.offsets.set(bucket, offset);
    }
    return localAsUtc - offset;
  }

  private offsetAt(utc: number): number {
    const at = Math.floor(utc / 1000) * 1000;
    const p: Record<string, number> = {};
    for (const part of this.dtf.formatToParts(at)) if (part.type !== "literal") p[part.type] = Number(part.value);
    return Date.UTC(p.year ?? 1970, (p.month ?? 1) - 1, p.day ?? 1, p.hour ?? 0, p.minute ?? 0, p.second ?? 0) - at;
  }
}

function digit(s: string, i: number): number {
  const c = s.charCodeAt(i) - 48;
  return c >= 0 && c <= 9 ? c : -100_000;
}

function two(s: string, i: number): number {
  return digit(s, i) * 10 + digit(s, i + 1);
}

/**
 * Epoch milliseconds of `YYYY-MM-DD[T ]HH:MM[:SS[.fff|,fff]][Z|±HH[:MM]]`; NaN when `s` is not one.
 * Digits past the millisecond are dropped (a timestamp is never rounded into the next second).
 */
export function parseTimestamp(s: string, zone: TimeZone): number {
  const n = s.length;
  if (n < 16 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45 || s.charCodeAt(13) !== 58) return Number.NaN;
  const sep = s.charCodeAt(10);
  if (sep !== 84 && sep !== 32 && sep !== 116) return Number.NaN; // T, space, t
  const year = two(s, 0) * 100 + two(s, 2);
  const month = two(s, 5);
  const day = two(s, 8);
  const hour = two(s, 11);
  const minute = two(s, 14);
  if (year < 0 || month < 1 || month > 12 || day < 1 || day > 31 || hour < 0 || hour > 23 || minute < 0 || minute > 59)
    return Number.NaN;
  let i = 16;
  let second = 0;
  let ms = 0;
  if (i < n && s.charCodeAt(i) === 58) {
    second = two(s, i + 1);
    if (second < 0 || second > 60) return Number.NaN;
    i += 3;
    const c = s.charCodeAt(i);
    if (c === 46 || c === 44) {
      i++;
      let digits = 0;
      for (; i < n; i++) {
        const d = digit(s, i);
        if (d < 0) break;
        if (digits < 3) ms = ms * 10 + d;
        digits++;
      }
      if (digits === 0) return Number.NaN;
      for (let k = digits; k < 3; k++) ms *= 10;
    }
  }
  const local = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  if (i === n) return zone.toUtc(local);
  const z = s.charCodeAt(i);
  if ((z === 90 || z === 122) && i + 1 === n) return local; // Z
  if (z !== 43 && z !== 45) return Number.NaN;
  const oh = two(s, i + 1);
  let om = 0;
  let j = i + 3;
  if (j < n && s.charCodeAt(j) === 58) j++;
  if (j < n) {
    om = two(s, j);
    j += 2;
  }
  if (j !== n || oh < 0 || oh > 23 || om < 0 || om > 59) return Number.NaN;
  const offset = (oh * 60 + om) * 60_000;
  return z === 43 ? local - offset : local + offset;
}

/** A `timezone` config value, checked when the config is loaded. */
export const TimeZoneName = z.string().superRefine((name, ctx) => {
  try {
    timeZone(name);
  } catch (e) {
    ctx.addIssue({ code: "custom", message: (e as Error).message });
  }
});
