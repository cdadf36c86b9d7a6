// The time window of a search, as on-call types it: `--since 15m`, or `--from`/`--to` as ISO times,
// epoch milliseconds, `now`, `now-1h` or a period meaning "that long ago" (`--from 2h --to 1h`).
import { SearchError } from "./errors.ts";

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const PERIOD = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/;
const PERIOD_HINT = "a number and a unit: 90s, 15m, 2h, 7d (units: ms, s, m, h, d, w)";

/** A period such as `15m` in milliseconds. */
export function parsePeriod(text: string, what = "period"): number {
  const m = PERIOD.exec(text.trim());
  if (!m) throw new SearchError("bad-request", `${what} ${JSON.stringify(text)} is not a period`, PERIOD_HINT);
  const ms = Math.round(Number(m[1]) * (UNIT_MS[m[2] as string] as number));
  if (ms <= 0)
    throw new SearchError("bad-request", `${what} ${JSON.stringify(text)} is not longer than zero`, PERIOD_HINT);
  return ms;
}

/** A period as the shortest text that says it: 900000 -> `15m`, 5400000 -> `90m`. */
export function formatPeriod(ms: number): string {
  for (const unit of ["w", "d", "h", "m", "s"] as const) {
    const size = UNIT_MS[unit] as number;
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

const TIME_HINT =
  "an ISO time (2026-11-20T12:30:00Z, 2026-11-20 20:30:00+08:00), epoch milliseconds, now, now-15m, or a period ago (15m)";

/** A point in time, ms since the epoch. A time without a zone is local time, as JavaScript reads it. */
export function parseTime(text: string, now: number, what = "time"): number {
  const t = text.trim();
  if (t === "now") return now;
  const relative = /^now-(.+)$/.exec(t);
  if (relative) return now - parsePeriod(relative[1] as string, what);
  if (PERIOD.test(t)) return now - parsePeriod(t, what);
  if (/^\d{10,}$/.test(t)) return Number(t);
  // Date.parse takes "2026-11-20 12:30" too, but only with a T is a zone-less ISO time certain to be local.
  const ms = Date.parse(/^\d{4}-\d{2}-\d{2} \d/.test(t) ? t.replace(" ", "T") : t);
  if (!Number.isFinite(ms))
    throw new SearchError("bad-request", `${what} ${JSON.stringify(text)} is not a time`, TIME_HINT);
  return ms;
}

export interface TimeWindow {
  /** ms since the epoch, inclusive. */
  from: number;
  /** ms since the epoch, inclusive. */
  to: number;
}

export interface WindowInput {
  since?: string;
  from?: string;
  to?: string;
}

/**
 * The window a request names: `since` (up to now), or `from` (default: `defaultSince` before `to`)
 * and `to` (default: now). `since` with `from` is refused: which one would win?
 */
export function resolveWindow(input: WindowInput, defaultSinceMs: number, now: number): TimeWindow {
  if (input.since !== undefined && input.from !== undefined) {
    throw new SearchError(
      "bad-request",
      "both since and from are given",
      "give --since for the last N, or --from (and --to)",
    );
  }
  const to = input.to !== undefined ? parseTime(input.to, now, "to") : now;
  const from =
    input.from !== undefined
      ? parseTime(input.from, now, "from")
      : to - (input.since !== undefined ? parsePeriod(input.since, "since") : defaultSinceMs);
  if (from > to) {
    throw new SearchError(
      "bad-request",
      `the window ends before it starts (${new Date(from).toISOString()} > ${new Date(to).toISOString()})`,
      "give --from earlier than --to",
    );
  }
  return { from, to };
}
