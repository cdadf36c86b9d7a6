// How figures read on the page: shares to 4 decimals rounded down (99.9999% stays visible, nothing is
// overstated), durations, times in the browser's zone.

export function pct(x: number | null | undefined, digits = 4): string {
  if (x === null || x === undefined) return "–";
  const f = 10 ** digits;
  return `${(Math.floor(x * 100 * f) / f).toFixed(digits).replace(/\.?0+$/, "")}%`;
}

export function burn(x: number | null | undefined): string {
  return x === null || x === undefined ? "–" : `${x < 10 ? x.toFixed(2) : x.toFixed(0)}x`;
}

export function num(x: number | null | undefined): string {
  return x === null || x === undefined ? "–" : x.toLocaleString("en-US", { maximumFractionDigits: 2 });
}

export function micros(us: number | null | undefined): string {
  if (us === null || us === undefined) return "–";
  if (us >= 1_000_000) return `${(us / 1_000_000).toFixed(2)} s`;
  if (us >= 1000) return `${(us / 1000).toFixed(us >= 100_000 ? 0 : 1)} ms`;
  return `${Math.round(us)} µs`;
}

export function seconds(s: number | null | undefined): string {
  if (s === null || s === undefined) return "–";
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${Math.round(s % 60)}s`;
  return `${Math.floor(s / 3600)}h ${Math.round((s % 3600) / 60)}m`;
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/** 2026-11-21 09:50:51.004 in the browser's time zone. */
export function time(ms: number, withMs = true): string {
  const d = new Date(ms);
  const s = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return withMs ? `${s}.${pad(d.getMilliseconds(), 3)}` : s;
}

export function clock(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function ago(iso: string, now = Date.now()): string {
  const s = Math.max(0, (now - Date.parse(iso)) / 1000);
  return `${seconds(s)} ago`;
}
