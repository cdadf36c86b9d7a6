// The soak's plot, written by hand as SVG (no charting dependency): panels stacked over one time
// axis, each with its series as polylines, axes with round ticks, and a legend. Names are escaped:
// they come from process and group names.
import type { Point } from "./verdict.ts";

export interface Series {
  name: string;
  points: readonly Point[];
}

export interface Panel {
  title: string;
  /** Unit of the values as drawn, after `scale` (e.g. "MiB"). */
  unit: string;
  /** Values are divided by this before drawing (1048576 for bytes as MiB). */
  scale: number;
  series: readonly Series[];
  /** A vertical marker, e.g. the end of the warm-up, in seconds. */
  marks?: ReadonlyArray<{ t: number; label: string }>;
}

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"];
const WIDTH = 900;
const PANEL_HEIGHT = 260;
const MARGIN = { left: 70, right: 190, top: 34, bottom: 36 };

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Round tick values covering [0, max]: steps of 1, 2 or 5 times a power of ten, about `count` of them. */
export function ticks(max: number, count = 5): number[] {
  if (!(max > 0) || !Number.isFinite(max)) return [0, 1];
  const raw = max / count;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw) ?? 10 * pow) as number;
  const out: number[] = [];
  for (let v = 0; v < max + step * 0.999; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function label(v: number): string {
  if (v >= 1e6) return `${Number((v / 1e6).toPrecision(3))}M`;
  if (v >= 1e4) return `${Number((v / 1e3).toPrecision(3))}k`;
  return String(Number(v.toPrecision(4)));
}

/** The panels over a shared time axis from 0 to `endS` seconds (shown in minutes). */
export function plotSvg(title: string, panels: readonly Panel[], endS: number): string {
  const height = panels.length * (PANEL_HEIGHT + MARGIN.top + MARGIN.bottom) + 30;
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = PANEL_HEIGHT;
  const span = endS > 0 ? endS : 1;
  const timeTicks = ticks(span / 60, 10);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    `<text x="${WIDTH / 2}" y="20" text-anchor="middle" font-size="15">${escapeXml(title)}</text>`,
  ];
  panels.forEach((panel, i) => {
    const top = 30 + i * (PANEL_HEIGHT + MARGIN.top + MARGIN.bottom) + MARGIN.top;
    const left = MARGIN.left;
    let max = 0;
    for (const s of panel.series) for (const p of s.points) max = Math.max(max, p.v / panel.scale);
    const yTicks = ticks(max * 1.05);
    const yMax = yTicks.at(-1) as number;
    const x = (t: number) => left + (Math.min(Math.max(t, 0), span) / span) * plotW;
    const y = (v: number) => top + plotH - (v / yMax) * plotH;
    out.push(
      `<text x="${left}" y="${top - 10}" font-size="13">${escapeXml(panel.title)} (${escapeXml(panel.unit)})</text>`,
    );
    for (const v of yTicks) {
      out.push(
        `<line x1="${left}" x2="${left + plotW}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e5e5e5"/>`,
        `<text x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${label(v)}</text>`,
      );
    }
    for (const m of timeTicks) {
      const tx = x(m * 60);
      if (m * 60 > span * 1.0001) continue;
      out.push(
        `<line x1="${tx.toFixed(1)}" x2="${tx.toFixed(1)}" y1="${top + plotH}" y2="${top + plotH + 4}" stroke="#333"/>`,
        `<text x="${tx.toFixed(1)}" y="${top + plotH + 17}" text-anchor="middle">${label(m)}</text>`,
      );
    }
    out.push(
      `<text x="${left + plotW / 2}" y="${top + plotH + 31}" text-anchor="middle">minutes</text>`,
      `<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`,
    );
    for (const m of panel.marks ?? []) {
      const mx = x(m.t).toFixed(1);
      out.push(
        `<line x1="${mx}" x2="${mx}" y1="${top}" y2="${top + plotH}" stroke="#999" stroke-dasharray="4 3"/>`,
        // Near the right edge the label goes left of its line, clear of the legend.
        Number(mx) > left + plotW * 0.75
          ? `<text x="${Number(mx) - 3}" y="${top + 12}" fill="#666" text-anchor="end">${escapeXml(m.label)}</text>`
          : `<text x="${Number(mx) + 3}" y="${top + 12}" fill="#666">${escapeXml(m.label)}</text>`,
      );
    }
    panel.series.forEach((s, j) => {
      const color = PALETTE[j % PALETTE.length] as string;
      if (s.points.length > 0) {
        const d = s.points.map((p) => `${x(p.t).toFixed(1)},${y(p.v / panel.scale).toFixed(1)}`).join(" ");
        out.push(`<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${d}"/>`);
      }
      const ly = top + 8 + j * 18;
      out.push(
        `<line x1="${left + plotW + 12}" x2="${left + plotW + 32}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="3"/>`,
        `<text x="${left + plotW + 38}" y="${ly + 4}">${escapeXml(s.name)}</text>`,
      );
    });
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
