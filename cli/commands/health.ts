// weir health report | top | show: the health pipeline's figures in ClickHouse, for people on call.

import { Command } from "commander";
import { clientEndpoints } from "../../infra/stack/config.ts";
import { StackError } from "../../infra/stack/prerequisites.ts";
import {
  formatAvailability,
  formatBurn,
  formatCount,
  formatDuration,
  formatLatencyUs,
  formatRate,
  formatShare,
  formatTarget,
} from "../../pipelines/health/format.ts";
import type { AlertEpisode } from "../../pipelines/health/health-reader.ts";
import {
  HealthQueryError,
  parseSince,
  type ServiceHealth,
  type ShowResult,
  show,
  top,
} from "../../pipelines/health/queries.ts";
import { buildDailyReport, parseDay, previousUtcDay } from "../../pipelines/health/report.ts";
import { writeReportFiles } from "../../pipelines/health/report-files.ts";
import { renderDailyReportMarkdown } from "../../pipelines/health/report-markdown.ts";
import { SloConfig } from "../../pipelines/health/slo.ts";
import type { ClickHouseAuth } from "../../sinks/credentials.ts";
import { UsageError } from "../errors.ts";

interface ConnectionOptions {
  url?: string;
  database: string;
  config?: string;
  json?: boolean;
}

const NO_DATA_HINT =
  "start the health pipeline with `weir run health` (fed by `weir simulate --to kafka` or `weir ship`), or name another database with --database";

export function healthCommand(): Command {
  const health = new Command("health").description(
    "the health pipeline's figures in ClickHouse: daily availability report, worst services, one service's series",
  );

  withConnection(
    health
      .command("report")
      .description("the daily availability report of one UTC day, per app, system, service and endpoint")
      .option("--day <YYYY-MM-DD>", "the UTC day (default: yesterday)")
      .option("--out <dir>", "also write health-YYYY-MM-DD.md and .json into this directory"),
  ).action(async (opts: ConnectionOptions & { day?: string; out?: string }) => {
    const day = opts.day ?? previousUtcDay(new Date());
    const report = await cli(async () => {
      parseDay(day);
      return buildDailyReport({ day, ...connection(opts), slo: loadSlo(opts) });
    });
    if (!report.hasData) {
      throw new UsageError(`no health metrics for ${day} in database ${report.source.database}`, NO_DATA_HINT);
    }
    if (opts.out) {
      const { markdownPath, jsonPath } = await writeReportFiles(report, opts.out);
      console.error(`wrote ${markdownPath} and ${jsonPath}`);
    }
    console.log(opts.json ? JSON.stringify(report, null, 2) : renderDailyReportMarkdown(report));
  });

  withConnection(
    health
      .command("top")
      .description("the services doing worst now: burn rate, errors, p99, slow share, firing alerts")
      .option("--since <period>", "how far back: 90s, 15m, 1h, 2d", "15m"),
  ).action(async (opts: ConnectionOptions & { since: string }) => {
    const result = await cli(() => top({ since: parseSince(opts.since), ...connection(opts), slo: loadSlo(opts) }));
    if (result.services.length === 0) {
      throw new UsageError(
        `no health metrics in the last ${opts.since} (${result.from} to ${result.to}) in database ${opts.database}`,
        NO_DATA_HINT,
      );
    }
    if (opts.json) {
      console.log(JSON.stringify(result, null, 2));
      return;
    }
    const c = colours();
    console.log(
      c.dim(
        `last ${opts.since}, ${result.from} to ${result.to}, from ${formatDuration(result.resolutionMs / 1000)} rows; worst first`,
      ),
    );
    printAligned(
      ["SERVICE", "SYSTEM", "REQUESTS", "QPS", "ERRORS", "AVAILABILITY", "TARGET", "BURN", "P99", "SLOW", "ALERTS"],
      result.services.map((s) => topRow(s, c)),
      new Set([2, 3, 4, 5, 6, 7, 8, 9, 10]),
      c,
    );
  });

  withConnection(
    health
      .command("show")
      .description("one service's (or endpoint's) QPS, errors and p99 over a period, as sparklines, and its alerts")
      .argument("<service>", "the service")
      .option("--endpoint <endpoint>", "one endpoint of the service, e.g. /room/list")
      .option("--since <period>", "how far back: 90s, 15m, 1h, 2d", "1h"),
  ).action(async (service: string, opts: ConnectionOptions & { since: string; endpoint?: string }) => {
    const labels = 9 + 2 * 10; // the label column and the min/max columns around the sparkline
    const columns = process.stdout.isTTY ? (process.stdout.columns ?? 0) : 0;
    const maxPoints = columns > 0 ? Math.max(20, Math.min(120, columns - labels - 2)) : 120;
    const result = await cli(() =>
      show({
        service,
        endpoint: opts.endpoint,
        since: parseSince(opts.since),
        maxPoints,
        ...connection(opts),
        slo: loadSlo(opts),
      }),
    );
    if (!result.hasData) {
      throw new UsageError(
        `no health metrics for ${result.name} in the last ${opts.since} (${result.from} to ${result.to}) in database ${opts.database}`,
        NO_DATA_HINT,
      );
    }
    if (opts.json) {
      console.log(JSON.stringify(result, null, 2));
      return;
    }
    for (const line of renderShow(result, opts.since, colours())) console.log(line);
  });

  return health;
}

function withConnection(c: Command): Command {
  return c
    .option("--url <url>", "ClickHouse HTTP URL (default: WEIR_CLICKHOUSE_URL, else the local stack)")
    .option("--database <name>", "the database holding health_metrics and health_alerts", "weir")
    .option("--config <slo.yaml>", "the SLO file (default: pipelines/health/slo.yaml)")
    .option("--json", "print JSON");
}

function connection(opts: ConnectionOptions): {
  clickhouseUrl: string;
  clickhouseAuth?: ClickHouseAuth;
  database: string;
} {
  const endpoints = clientEndpoints();
  // A --url of its own gets the environment's credentials only (WEIR_CLICKHOUSE_USER), never the local stack's.
  const auth = opts.url
    ? clientEndpoints({ ...process.env, WEIR_CLICKHOUSE_URL: opts.url }).clickhouseAuth
    : endpoints.clickhouseAuth;
  return {
    clickhouseUrl: opts.url ?? endpoints.clickhouseUrl,
    ...(auth ? { clickhouseAuth: auth } : {}),
    database: opts.database,
  };
}

function loadSlo(opts: ConnectionOptions): SloConfig {
  return opts.config ? SloConfig.load(opts.config) : SloConfig.load();
}

/** Runs a query, turning what the user can act on into the CLI's one-line errors. */
async function cli<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (!(e instanceof HealthQueryError)) throw e;
    if (e.kind === "unreachable") throw new StackError(e.message, e.hint);
    throw new UsageError(e.message, e.hint);
  }
}

// --- terminal output ----------------------------------------------------------------------------------

export interface Colours {
  bold(s: string): string;
  dim(s: string): string;
  red(s: string): string;
  yellow(s: string): string;
  green(s: string): string;
}

/** ANSI colours when stdout is a terminal and NO_COLOR is unset (https://no-color.org). */
export function colours(enabled = !!process.stdout.isTTY && !process.env.NO_COLOR): Colours {
  const wrap = (open: number, close: number) => (s: string) => (enabled ? `\u001b[${open}m${s}\u001b[${close}m` : s);
  return { bold: wrap(1, 22), dim: wrap(2, 22), red: wrap(31, 39), yellow: wrap(33, 39), green: wrap(32, 39) };
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escapes are what it removes
const ANSI = /\u001b\[[0-9;]*m/g;

/** Width of a string on screen: ANSI escapes take none. */
export function visibleLength(s: string): number {
  return s.replace(ANSI, "").length;
}

function pad(s: string, width: number, right: boolean): string {
  const fill = " ".repeat(Math.max(0, width - visibleLength(s)));
  return right ? fill + s : s + fill;
}

/** Like printTable, with numbers right-aligned and coloured cells measured by what shows. */
function printAligned(header: string[], rows: string[][], right: ReadonlySet<number>, c: Colours): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => visibleLength(r[i] ?? ""))));
  const line = (r: string[]) =>
    r
      .map((cellText, i) => pad(cellText, widths[i] ?? 0, right.has(i)))
      .join("  ")
      .trimEnd();
  console.log(c.bold(line(header)));
  for (const r of rows) console.log(line(r));
}

function topRow(s: ServiceHealth, c: Colours): string[] {
  const burning = s.burnRate !== null && s.burnRate >= 1;
  const slowMissed = s.slowShare !== null && 1 - s.slowShare < s.latencyTarget;
  return [
    s.service,
    s.system,
    formatCount(s.requests),
    formatRate(s.qps),
    s.errors > 0 ? c.red(formatCount(s.errors)) : "0",
    burning ? c.red(formatAvailability(s.availability)) : formatAvailability(s.availability),
    formatTarget(s.target),
    burning ? c.red(formatBurn(s.burnRate)) : c.green(formatBurn(s.burnRate)),
    formatLatencyUs(s.p99Us),
    slowMissed ? c.yellow(formatShare(s.slowShare, 2)) : formatShare(s.slowShare, 2),
    s.alertsFiring > 0
      ? c.red(`${s.alertsFiring} firing`)
      : s.alertsInPeriod > 0
        ? `${s.alertsInPeriod} resolved`
        : "-",
  ];
}

export const SPARK_BLOCKS = "▁▂▃▄▅▆▇█";

/** One character per value, ▁ at the series' minimum to █ at its maximum; a gap where a value is null. */
export function sparkline(values: ReadonlyArray<number | null>): string {
  const present = values.filter((v): v is number => v !== null && Number.isFinite(v));
  if (present.length === 0) return " ".repeat(values.length);
  const min = Math.min(...present);
  const max = Math.max(...present);
  return values
    .map((v) => {
      if (v === null || !Number.isFinite(v)) return " ";
      if (max === min) return max === 0 ? SPARK_BLOCKS[0] : SPARK_BLOCKS[3];
      return SPARK_BLOCKS[Math.round(((v - min) / (max - min)) * (SPARK_BLOCKS.length - 1))];
    })
    .join("");
}

export interface SparkRow {
  label: string;
  values: ReadonlyArray<number | null>;
  format: (v: number) => string;
  colour?: (s: string) => string;
}

/**
 * Sparklines one under the other: label, minimum, line, maximum, in aligned columns. `offset` is the
 * column where the lines start (for an axis under them).
 */
export function sparklineBlock(rows: readonly SparkRow[]): { lines: string[]; offset: number } {
  const cells = rows.map((r) => {
    const present = r.values.filter((v): v is number => v !== null && Number.isFinite(v));
    return {
      label: r.label,
      min: present.length > 0 ? r.format(Math.min(...present)) : "-",
      max: present.length > 0 ? r.format(Math.max(...present)) : "-",
      line: (r.colour ?? ((s: string) => s))(sparkline(r.values)),
    };
  });
  const labelW = Math.max(...cells.map((c) => c.label.length));
  const minW = Math.max(3, ...cells.map((c) => c.min.length));
  return {
    lines: cells.map((c) => `${c.label.padEnd(labelW)}  ${c.min.padStart(minW)} ${c.line} ${c.max}`),
    offset: labelW + 2 + minW + 1,
  };
}

/** A time axis as wide as a sparkline: the first bucket's time at the left, the last one's at the right. */
export function timeAxis(first: string, last: string, width: number): string {
  if (width < first.length + last.length + 1) return first;
  return first + " ".repeat(width - first.length - last.length) + last;
}

function timeLabel(t: number, periodMs: number): string {
  const iso = new Date(t).toISOString();
  return periodMs <= 86_400_000 ? iso.slice(11, 19) : `${iso.slice(5, 10)} ${iso.slice(11, 16)}`;
}

export function renderShow(r: ShowResult, since: string, c: Colours): string[] {
  const o = r.objectives;
  const t = r.totals;
  const burning = t.burnRate !== null && t.burnRate >= 1;
  const latencyMissed = t.slowShare !== null && 1 - t.slowShare < o.latencyTarget;
  const where =
    r.node.level === "ENDPOINT" ? `${r.node.app}/${r.node.system}/${r.node.service}` : `${r.node.app}/${r.node.system}`;
  const out = [
    `${c.bold(r.name)}  ${c.dim(where)}`,
    c.dim(
      `last ${since}: ${r.from} to ${r.to}, ${formatDuration(r.bucketMs / 1000)} buckets of ${formatDuration(r.resolutionMs / 1000)} rows`,
    ),
    `requests ${formatCount(t.requests)} (${formatRate(t.qps)})  errors ${t.errors > 0 ? c.red(formatCount(t.errors)) : "0"}  ` +
      `availability ${(burning ? c.red : c.green)(formatAvailability(t.availability))} ` +
      `(target ${formatTarget(o.availability)}, burn ${formatBurn(t.burnRate)})`,
    `latency p50 ${formatLatencyUs(t.p50Us)}  p99 ${formatLatencyUs(t.p99Us)}  p99.9 ${formatLatencyUs(t.p999Us)}  ` +
      `slow ${(latencyMissed ? c.yellow : (s: string) => s)(formatShare(t.slowShare, 2))} ` +
      `(objective: ${formatTarget(o.latencyTarget)} under ${formatLatencyUs(o.latencyThresholdUs)})`,
    "",
  ];
  const block = sparklineBlock([
    { label: "QPS", values: r.series.map((p) => p.qps), format: (v) => formatRate(v) },
    {
      label: "errors",
      values: r.series.map((p) => (p.windows > 0 ? p.errors : null)),
      format: (v) => formatCount(v),
      colour: t.errors > 0 ? c.red : undefined,
    },
    { label: "p99", values: r.series.map((p) => p.p99Us), format: (v) => formatLatencyUs(v), colour: c.yellow },
  ]);
  out.push(...block.lines);
  const first = timeLabel(r.series[0]?.startMs ?? 0, r.periodMs);
  const last = timeLabel(r.series.at(-1)?.startMs ?? 0, r.periodMs);
  out.push(c.dim(" ".repeat(block.offset) + timeAxis(first, last, r.series.length)));
  out.push("");
  if (r.alerts.length === 0) out.push(c.dim("no alert in the period"));
  else {
    out.push(c.bold(`alerts in the period (${r.alerts.length}):`));
    for (const a of r.alerts) out.push(`  ${alertLine(a, r.periodMs, c)}`);
  }
  return out;
}

function alertLine(a: AlertEpisode, periodMs: number, c: Colours): string {
  const start = timeLabel(Date.parse(a.start), periodMs);
  const end = a.end ? timeLabel(Date.parse(a.end), periodMs) : c.red("firing");
  const duration = a.durationS !== null ? ` (${formatDuration(a.durationS)})` : "";
  return `${start} -> ${end}${duration}  ${a.severity.toLowerCase()}  ${a.rule}  ${a.target}: ${a.message}`;
}
