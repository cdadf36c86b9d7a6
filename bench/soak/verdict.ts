// The soak's two rules over its samples, as pure functions so that they are tested without a stack:
// resident memory bounded (the last third of the steady run peaks no higher than the first third,
// within a tolerance), and consumer lag not growing (a least-squares line through the steady
// samples rises by less than a few seconds of the input over the run).

/** One observation of a series: seconds since the soak started, and the value. */
export interface Point {
  t: number;
  v: number;
}

export interface Line {
  slope: number;
  intercept: number;
}

/** The least-squares line through the points; slope 0 for fewer than two distinct times. */
export function leastSquares(points: readonly Point[]): Line {
  const n = points.length;
  if (n === 0) return { slope: 0, intercept: 0 };
  let st = 0;
  let sv = 0;
  for (const p of points) {
    st += p.t;
    sv += p.v;
  }
  const mt = st / n;
  const mv = sv / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.t - mt) * (p.v - mv);
    den += (p.t - mt) ** 2;
  }
  const slope = den === 0 ? 0 : num / den;
  return { slope, intercept: mv - slope * mt };
}

/** The points from `warmupS` on: what the rules judge (start-up, JIT and first state fill excluded). */
export function steady(points: readonly Point[], warmupS: number): Point[] {
  return points.filter((p) => p.t >= warmupS);
}

/** The warm-up a run of `runS` seconds gets: a fifth of it, at most 5 minutes. */
export function warmupFor(runS: number): number {
  return Math.min(runS / 5, 300);
}

export interface RssVerdict {
  /** Peak RSS (bytes) of the first and last thirds of the steady samples. */
  firstMax: number;
  lastMax: number;
  /** lastMax / firstMax - 1. */
  growth: number;
  ok: boolean;
  why: string;
}

/**
 * Bounded when the last third's peak is at most `tolerance` (a share) above the first third's.
 * Peaks, not means: a garbage-collected heap saws up and down, and only a rising ceiling is a leak.
 * Needs at least three steady samples.
 */
export function rssVerdict(points: readonly Point[], warmupS: number, tolerance: number): RssVerdict {
  const s = steady(points, warmupS).filter((p) => p.v > 0);
  if (s.length < 3) {
    return { firstMax: 0, lastMax: 0, growth: 0, ok: false, why: `${s.length} steady samples: too few to judge` };
  }
  const third = Math.floor(s.length / 3);
  const peak = (xs: Point[]) => xs.reduce((m, p) => Math.max(m, p.v), 0);
  const firstMax = peak(s.slice(0, third));
  const lastMax = peak(s.slice(s.length - third));
  const growth = lastMax / firstMax - 1;
  const ok = growth <= tolerance;
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  return {
    firstMax,
    lastMax,
    growth,
    ok,
    why: `last third's peak ${pct(growth)} ${growth >= 0 ? "above" : "below"} the first third's (limit ${pct(tolerance)})`,
  };
}

export interface LagVerdict {
  /** Records per second the fitted line rises. */
  slope: number;
  /** What the line rises over the steady span, in records. */
  rise: number;
  /** The most it may rise: `inputSeconds` of the group's input, at least `floor` records. */
  limit: number;
  ok: boolean;
  why: string;
}

/**
 * Not growing when the least-squares line through the steady samples rises, over their span, by less
 * than `inputSeconds` seconds of the group's input (`inputRate` records/s), and never less than
 * `floor` records: a worker commits every second or so, so its lag saws between 0 and a commit's
 * worth, and a short run must not read that saw as a trend.
 */
export function lagVerdict(
  points: readonly Point[],
  warmupS: number,
  inputRate: number,
  opts: { inputSeconds: number; floor: number },
): LagVerdict {
  const s = steady(points, warmupS);
  const limit = Math.max(opts.floor, opts.inputSeconds * inputRate);
  if (s.length < 3) {
    return { slope: 0, rise: 0, limit, ok: false, why: `${s.length} steady samples: too few to judge` };
  }
  const { slope } = leastSquares(s);
  const span = (s.at(-1) as Point).t - (s[0] as Point).t;
  const rise = slope * span;
  const ok = rise < limit;
  return {
    slope,
    rise,
    limit,
    ok,
    why: `the fitted line ${rise >= 0 ? "rises" : "falls"} ${Math.abs(Math.round(rise))} records over ${Math.round(span)} s (limit ${Math.round(limit)}: ${opts.inputSeconds} s of ${Math.round(inputRate)} records/s, at least ${opts.floor})`,
  };
}
