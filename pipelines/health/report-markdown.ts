// The daily availability report (report.ts) as Markdown for people: a summary line per app, a table
// per level of the hierarchy, the worst endpoints, the day's alerts and what each availability level
// allows. A value that holds a `|` or a line break cannot split a table's cell.
import {
  formatAvailability,
  formatCount,
  formatDuration,
  formatLatencyUs,
  formatShare,
  formatTarget,
} from "./format.ts";
import type { DailyReport, NodeReport } from "./report.ts";

/** Escapes a value for a Markdown table cell. */
function cell(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\|/g, "\\|").replace(/\n/g, " ");
}

function table(header: string[], rows: string[][], rightAligned: ReadonlySet<number> = new Set()): string[] {
  return [
    `| ${header.map(cell).join(" | ")} |`,
    `|${header.map((_, i) => (rightAligned.has(i) ? "---:" : "---")).join("|")}|`,
    ...rows.map((r) => `| ${r.map(cell).join(" | ")} |`),
  ];
}

function levelCell(r: NodeReport): string {
  return r.levelReached ?? (r.availability === null ? "–" : "below weak");
}

function nodeTable(nodes: readonly NodeReport[]): string[] {
  return table(
    [
      "node",
      "requests",
      "errors",
      "availability",
      "level",
      "target",
      "met",
      "downtime",
      "bad min",
      "budget left",
      "latency ok",
      "p50",
      "p99",
      "p99.9",
    ],
    nodes.map((r) => [
      `\`${r.name}\``,
      formatCount(r.requests),
      formatCount(r.errors),
      formatAvailability(r.availability),
      levelCell(r),
      `${formatTarget(r.target)} (${r.targetLevel ?? "below weak"})`,
      r.targetMet === null ? "–" : r.targetMet ? "yes" : "**no**",
      formatDuration(r.downtime.equivalentS),
      String(r.downtime.badMinutes),
      formatShare(r.errorBudget.left),
      `${formatShare(r.latency.compliance, 2)} / ${formatTarget(r.latency.target)} < ${formatLatencyUs(r.latency.thresholdUs)}${r.latency.met === false ? " **missed**" : ""}`,
      formatLatencyUs(r.latency.p50Us),
      formatLatencyUs(r.latency.p99Us),
      formatLatencyUs(r.latency.p999Us),
    ]),
    new Set([1, 2, 3, 7, 8, 9, 11, 12, 13]),
  );
}

export function renderDailyReportMarkdown(r: DailyReport): string {
  const out: string[] = [`# Health report for ${r.day} (UTC)`, ""];
  out.push(
    `From ${r.from} to ${r.to}. Figures from the 1-minute rows of \`${r.source.database}.${r.source.table}\`; ` +
      `objectives from \`${r.source.slo}\`. Generated ${r.generatedAt}.`,
    "",
  );
  if (!r.hasData) {
    out.push(
      "**No health metrics for this day.** The health pipeline did not write any 1-minute rows for it " +
        "(was `weir run health` running?), or retention has dropped them.",
      "",
    );
  }
  for (const app of r.app) {
    out.push(
      `**${app.name}**: availability ${formatAvailability(app.availability)} (${levelCell(app)}) against a target of ` +
        `${formatTarget(app.target)} (${app.targetLevel ?? "below weak"}): ${app.targetMet ? "met" : "**missed**"}. ` +
        `${formatCount(app.requests)} requests, ${formatCount(app.errors)} errors; equivalent downtime ` +
        `${formatDuration(app.downtime.equivalentS)}, ${app.downtime.badMinutes} bad minute${app.downtime.badMinutes === 1 ? "" : "s"}, ` +
        `error budget left ${formatShare(app.errorBudget.left)}.`,
      "",
    );
  }
  if (r.hasData) {
    out.push(
      "Columns: _downtime_ is the equivalent downtime, (1 - availability) x 24 h; _bad min_ counts the minutes whose own " +
        "availability fell below the target; _budget left_ is the share of the error budget, (1 - target) x requests, " +
        "not spent (negative when overspent); _latency ok_ is the share of requests faster than the objective, " +
        "against its target. Quantiles come from merged DDSketches (relative error at most 1%).",
      "",
    );
    for (const [title, nodes] of [
      ["App", r.app],
      ["Systems", r.systems],
      ["Services", r.services],
      ["Endpoints", r.endpoints],
    ] as const) {
      if (nodes.length === 0) continue;
      out.push(`## ${title}`, "", ...nodeTable(nodes), "");
    }
    out.push("## Worst endpoints", "");
    if (r.worstEndpoints.length === 0) out.push("No endpoint had an error.", "");
    else {
      out.push(
        ...table(
          ["#", "endpoint", "requests", "errors", "availability", "target", "budget used", "budget left", "bad min"],
          r.worstEndpoints.map((e, i) => [
            String(i + 1),
            `\`${e.name}\``,
            formatCount(e.requests),
            formatCount(e.errors),
            formatAvailability(e.availability),
            formatTarget(e.target),
            formatShare(e.budgetConsumed),
            formatShare(e.budgetLeft),
            String(e.badMinutes),
          ]),
          new Set([0, 2, 3, 4, 6, 7, 8]),
        ),
        "",
      );
    }
  }
  out.push("## Alerts", "");
  if (r.alerts.episodes === 0) out.push("No alert fired.", "");
  else {
    out.push(
      `${r.alerts.episodes} episode${r.alerts.episodes === 1 ? "" : "s"} firing during the day.`,
      "",
      ...table(
        ["rule", "severity", "episodes"],
        r.alerts.byRule.map((b) => [b.rule, b.severity.toLowerCase(), String(b.count)]),
        new Set([2]),
      ),
      "",
      ...table(
        ["start", "end", "duration", "rule", "severity", "target", "observed", "threshold", "message"],
        r.alerts.list.map((e) => [
          e.start,
          e.end ?? "still firing",
          formatDuration(e.durationS),
          e.rule,
          e.severity.toLowerCase(),
          `\`${e.target}\``,
          String(Number(e.observed.toPrecision(4))),
          String(Number(e.threshold.toPrecision(4))),
          e.runbook ? `${e.message} ([runbook](${e.runbook}))` : e.message,
        ]),
      ),
      "",
    );
  }
  out.push(
    "## Availability levels",
    "",
    ...table(
      ["level", "availability", "downtime per day", "downtime per year"],
      r.availabilityLevels.map((l) => [
        l.name,
        formatTarget(l.target),
        formatDuration(l.downtimePerDayS),
        formatDuration(l.downtimePerYearS),
      ]),
      new Set([1, 2, 3]),
    ),
    "",
  );
  if (r.unreadableSketches > 0) {
    out.push(`_${r.unreadableSketches} latency sketches could not be decoded and are left out of the quantiles._`, "");
  }
  return out.join("\n");
}
