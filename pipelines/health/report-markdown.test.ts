import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type DailyReport, nodeReport, worstEndpoints } from "./report.ts";
import { renderDailyReportMarkdown } from "./report-markdown.ts";
import { AVAILABILITY_LEVELS } from "./slo.ts";
import { endpoint, figures, SLO } from "./testdata/report.ts";

describe("Markdown", () => {
  const node = nodeReport(endpoint("room-svc", "/room/a|b"), SLO, figures(60_000, 50, { badMinutes: 1 }));
  const app = nodeReport(
    { level: "APP", app: "live", system: "", service: "", endpoint: "" },
    SLO,
    figures(60_000, 50),
  );
  const report: DailyReport = {
    day: "2026-03-14",
    from: "2026-03-14T00:00:00Z",
    to: "2026-03-15T00:00:00Z",
    generatedAt: "2026-03-15T00:05:00Z",
    source: { database: "weir", table: "health_metrics", resolution: "1m", slo: "slo.yaml" },
    hasData: true,
    app: [app],
    systems: [],
    services: [],
    endpoints: [node],
    worstEndpoints: worstEndpoints([node]),
    alerts: {
      episodes: 1,
      byRule: [{ rule: "availability-2m-10s", severity: "PAGE", count: 1 }],
      list: [
        {
          id: "x",
          rule: "availability-2m-10s",
          kind: "BURN_RATE",
          severity: "PAGE",
          level: "SERVICE",
          app: "live",
          system: "s",
          service: "room-svc",
          endpoint: "",
          target: "room-svc",
          start: "2026-03-14T10:07:05Z",
          end: null,
          durationS: null,
          observed: 20,
          threshold: 14.4,
          objective: 0.999,
          message: "error budget burning",
          runbook: "https://runbooks.test/room-svc",
        },
      ],
    },
    availabilityLevels: AVAILABILITY_LEVELS.map((l) => ({ ...l })),
    unreadableSketches: 0,
  };

  test("a summary line, tables per level, worst endpoints, alerts and the levels' allowances", () => {
    const md = renderDailyReportMarkdown(report);
    assert.match(md, /^# Health report for 2026-03-14 \(UTC\)\n/);
    assert.match(md, /\*\*live\*\*: availability 99\.9166% \(higher\) against a target of 99\.9% \(higher\): met\./);
    assert.match(md, /## Endpoints\n\n\| node \| requests \|/);
    // A `|` in a name must not split the table's cell.
    assert.match(
      md,
      /\| `room-svc \/room\/a\\\|b` \| 60,000 \| 50 \| 99\.9166% \| higher \| 99\.9% \(higher\) \| yes \| 1m 12s \| 1 \| 16\.7% \|/,
    );
    assert.match(md, /## Worst endpoints\n\n\| # \| endpoint/);
    assert.match(md, /\| 2026-03-14T10:07:05Z \| still firing \| – \| availability-2m-10s \| page \| `room-svc` \|/);
    assert.match(md, /\| higher \| 99\.9% \| 1m 26s \| 8h 46m \|/);
    assert.doesNotMatch(md, /## Systems/); // no rows, no table
  });

  test("a day without data says so", () => {
    const md = renderDailyReportMarkdown({ ...report, hasData: false, app: [], endpoints: [], worstEndpoints: [] });
    assert.match(md, /\*\*No health metrics for this day\.\*\*/);
    assert.doesNotMatch(md, /## Endpoints/);
  });
});
