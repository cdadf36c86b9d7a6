// How health figures read in the daily report's Markdown and in `weir health`: percentages with
// enough digits to tell 99.99% from 99.999%, latencies in the unit that fits, durations in h/m/s.

const DASH = "–";

/** An availability: 4 decimals, so a six-nines level is visible ("99.9999%"); exactly 1 is "100%". */
export function formatAvailability(a: number | null): string {
  if (a === null) return DASH;
  if (a >= 1) return "100%";
  // Rounded down (a report never overstates availability), with slack for 0.999 * 1e6 = 998999.99...
  return `${(Math.floor(a * 1e6 + 1e-6) / 1e4).toFixed(4)}%`;
}

/** A target such as 0.999 as "99.9%" (no trailing zeros). */
export function formatTarget(t: number): string {
  return `${Number((t * 100).toFixed(6))}%`;
}

/** A share with `digits` decimals ("16.7%"); may be negative (a budget overspent). */
export function formatShare(s: number | null, digits = 1): string {
  if (s === null || !Number.isFinite(s)) return DASH;
  return `${(s * 100).toFixed(digits)}%`;
}

export function formatCount(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

/** A rate per second with 3 significant digits at most 1 decimal place below 100 ("12.5/s"). */
export function formatRate(perSecond: number | null): string {
  if (perSecond === null) return DASH;
  if (perSecond >= 100) return `${formatCount(perSecond)}/s`;
  return `${Number(perSecond.toFixed(perSecond >= 10 ? 1 : 2))}/s`;
}

/** A latency in microseconds as µs, ms or s with 3 significant digits. */
export function formatLatencyUs(us: number | null): string {
  if (us === null || !Number.isFinite(us)) return DASH;
  if (us < 1000) return `${Math.round(us)}µs`;
  if (us < 1_000_000) return `${Number((us / 1000).toPrecision(3))}ms`;
  return `${Number((us / 1_000_000).toPrecision(3))}s`;
}

/** A duration in seconds: "0s", "8.6s", "14m 24s", "2h 24m", "3d 4h". */
export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return DASH;
  if (seconds < 0) return `-${formatDuration(-seconds)}`;
  if (seconds === 0) return "0s";
  if (seconds < 10) return `${Number(seconds.toFixed(seconds < 1 ? 2 : 1))}s`;
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 ? ` ${s % 60}s` : ""}`;
  if (s < 86_400) {
    const m = Math.round(s / 60);
    return `${Math.floor(m / 60)}h${m % 60 ? ` ${m % 60}m` : ""}`;
  }
  const h = Math.round(s / 3600);
  return `${Math.floor(h / 24)}d${h % 24 ? ` ${h % 24}h` : ""}`;
}

/** A burn rate: how many times faster than sustainable the error budget goes ("14.4x"). */
export function formatBurn(b: number | null): string {
  if (b === null || !Number.isFinite(b)) return DASH;
  return `${Number(b.toFixed(b >= 10 ? 0 : b >= 1 ? 1 : 2))}x`;
}
