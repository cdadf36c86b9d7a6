// The width of a histogram's bars. Chosen from the window unless given: a round interval (1m, 5m,
// 1h, ...) that gives at most about `target` bars, so a terminal line per bar stays readable and the
// bucket boundaries fall on times a person reads easily.
import { SearchError } from "./errors.ts";
import { SearchLimitError } from "./limits.ts";
import { formatPeriod, parsePeriod } from "./time.ts";

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

/** Intervals a histogram chooses from, shortest first. */
export const ROUND_INTERVALS_MS: readonly number[] = [
  S,
  2 * S,
  5 * S,
  10 * S,
  15 * S,
  30 * S,
  M,
  2 * M,
  5 * M,
  10 * M,
  15 * M,
  30 * M,
  H,
  2 * H,
  3 * H,
  6 * H,
  12 * H,
  D,
  2 * D,
  7 * D,
  30 * D,
];

/** Bars a histogram aims for when no interval is given. */
export const DEFAULT_BARS = 60;
/** More buckets than this is a mistake (1s over a day), and Elasticsearch refuses past 65,536. */
export const MAX_BUCKETS = 10_000;

/** The shortest round interval that cuts a window of `windowMs` into at most `target` buckets. */
export function chooseInterval(windowMs: number, target = DEFAULT_BARS): number {
  const bars = Math.max(1, Math.floor(target));
  for (const interval of ROUND_INTERVALS_MS) if (Math.ceil(windowMs / interval) <= bars) return interval;
  return ROUND_INTERVALS_MS[ROUND_INTERVALS_MS.length - 1] as number;
}

/** Buckets of `intervalMs` a window touches, counting the partial ones at both ends (buckets start at multiples of the interval). */
export function bucketCount(from: number, to: number, intervalMs: number): number {
  return Math.floor(to / intervalMs) - Math.floor(from / intervalMs) + 1;
}

/** An interval typed as `--interval 1m`: whole milliseconds, checked against the window. */
export function parseInterval(text: string, from: number, to: number, maxBuckets = MAX_BUCKETS): number {
  const ms = parsePeriod(text, "interval");
  const n = bucketCount(from, to, ms);
  if (n > maxBuckets) {
    throw new SearchLimitError(
      "maxBuckets",
      n,
      maxBuckets,
      `interval ${text} cuts the window into ${n} buckets, over the limit of ${maxBuckets} (maxBuckets)`,
      `use a longer interval, e.g. ${formatPeriod(chooseInterval(to - from, 1000))}, or leave --interval out to have one chosen`,
    );
  }
  return ms;
}

/** A histogram's interval: the one asked for (checked), else one chosen for the window. */
export function histogramInterval(
  from: number,
  to: number,
  intervalMs?: number,
  bars = DEFAULT_BARS,
  maxBuckets = MAX_BUCKETS,
): number {
  if (!Number.isInteger(bars) || bars < 1 || bars > maxBuckets) {
    throw new SearchError("bad-request", `bars ${bars} is not a whole number from 1 to ${maxBuckets}`);
  }
  const ms = intervalMs ?? chooseInterval(to - from, bars);
  if (!Number.isInteger(ms) || ms < 1) {
    throw new SearchError("bad-request", `interval ${ms} ms is not a whole number of milliseconds`);
  }
  const n = bucketCount(from, to, ms);
  if (n > maxBuckets) {
    throw new SearchLimitError(
      "maxBuckets",
      n,
      maxBuckets,
      `an interval of ${ms} ms cuts the window into ${n} buckets, over the limit of ${maxBuckets} (maxBuckets)`,
      "use a longer interval or a shorter window",
    );
  }
  return ms;
}

/** Every bucket start of a window, oldest first: multiples of the interval since the epoch, as Elasticsearch aligns them. */
export function bucketStarts(from: number, to: number, intervalMs: number): number[] {
  const starts: number[] = [];
  for (let t = Math.floor(from / intervalMs) * intervalMs; t <= to; t += intervalMs) starts.push(t);
  return starts;
}

/** The interval as Elasticsearch's fixed_interval takes it: the largest unit that divides it. */
export function esFixedInterval(ms: number): string {
  for (const [unit, size] of [
    ["d", D],
    ["h", H],
    ["m", M],
    ["s", S],
  ] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
