import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { formatAvailability, formatDuration, formatLatencyUs, formatShare, formatTarget } from "./format.ts";
import { HealthQueryError } from "./health-reader.ts";
import {
  availabilityOf,
  budgetFigures,
  type DailyReport,
  equivalentDowntimeS,
  isBadMinute,
  latencyCompliance,
  type NodeReport,
  nodeReport,
  parseDay,
  previousUtcDay,
  renderDailyReportMarkdown,
  worstEndpoints,
} from "./report.ts";
import { AVAILABILITY_LEVELS, type HealthNode, SloConfig } from "./slo.ts";

const SLO = SloConfig.parse(`
defaults:
  availability: 99.9%
  latency: { threshold: 100ms, target: 99% }
  runbook: https://runbooks.test/{service}
services:
  pay-svc:
    availability: 99%
    endpoints:
      /wallet/debit: { availability: 99.5% }
`);

const endpoint = (service: string, name: string): HealthNode => ({
  level: "ENDPOINT",
  app: "live",
  system: "s",
  service,
  endpoint: name,
});

const figures = (requests: number, errors: number, extra: Partial<Parameters<typeof nodeReport>[2]> = {}) => ({
  requests,
  errors,
  slow: 0,
  minutes: 1440,
  badMinutes: 0,
  p50Us: 1000,
  p99Us: 2000,
  p999Us: 3000,
  ...extra,
});

describe("availability math", () => {
  test("availability is 1 - errors/requests, and no figure without requests", () => {
    assert.equal(availabilityOf(1000, 1), 0.999);
    assert.equal(availabilityOf(5, 0), 1);
    assert.equal(availabilityOf(0, 0), null);
  });

  test("equivalent downtime is (1 - availability) x 24 h: each level's allowance per day", () => {
    assert.equal(equivalentDowntimeS(1), 0);
    assert.equal(equivalentDowntimeS(null), null);
    for (const level of AVAILABILITY_LEVELS) {
      const d = equivalentDowntimeS(level.target) as number;
      assert.ok(Math.abs(d - level.downtimePerDayS) < 1e-6, `${level.name}: ${d}`);
    }
    assert.ok(Math.abs((equivalentDowntimeS(0.999) as number) - 86.4) < 1e-9);
  });

  test("a bad minute falls below the target; exactly on it is met; a minute without requests never is", () => {
    assert.equal(isBadMinute(200, 2, 0.995), true); // 99%
    assert.equal(isBadMinute(200, 1, 0.995), false); // 99.5% exactly, despite 1 - 1/200 rounding
    assert.equal(isBadMinute(1000, 1, 0.999), false);
    assert.equal(isBadMinute(1000, 2, 0.999), true);
    assert.equal(isBadMinute(0, 0, 0.999), false);
  });

  test("error budget: allowed = (1 - target) x requests; what is left may go negative", () => {
    const b = budgetFigures(0.999, 60_000, 50);
    assert.ok(Math.abs(b.allowed - 60) < 1e-9);
    assert.ok(Math.abs((b.consumed as number) - 50 / 60) < 1e-9);
    assert.ok(Math.abs((b.left as number) - 1 / 6) < 1e-9);
    const over = budgetFigures(0.999, 2000, 3);
    assert.ok(Math.abs((over.left as number) - -0.5) < 1e-9);
    assert.deepEqual(budgetFigures(0.999, 0, 0), { allowed: 0, consumed: null, left: null });
  });

  test("latency compliance is the share of requests faster than the objective", () => {
    assert.equal(latencyCompliance(1000, 10), 0.99);
    assert.equal(latencyCompliance(0, 0), null);
  });
});

describe("days", () => {
  test("parseDay gives the UTC day's [start, end)", () => {
    assert.deepEqual(parseDay("2026-03-14"), { start: Date.UTC(2026, 2, 14), end: Date.UTC(2026, 2, 15) });
    assert.deepEqual(parseDay("2024-02-29").start, Date.UTC(2024, 1, 29));
  });

  test("parseDay refuses what is not a calendar day", () => {
    for (const bad of ["2026-02-30", "2026-13-01", "2026-3-14", "14/03/2026", "yesterday", ""]) {
      assert.throws(
        () => parseDay(bad),
        (e: unknown) => e instanceof HealthQueryError && e.kind === "bad-argument" && /YYYY-MM-DD/.test(e.hint ?? ""),
        bad,
      );
    }
  });

  test("previousUtcDay is the day before now's UTC day, across months and years", () => {
    assert.equal(previousUtcDay(new Date("2026-03-01T00:05:00Z")), "2026-02-28");
    assert.equal(previousUtcDay(new Date("2027-01-01T23:59:59Z")), "2026-12-31");
    // 00:30 in UTC+2 is still the previous day in UTC: the UTC day decides.
    assert.equal(previousUtcDay(new Date("2026-03-15T00:30:00+02:00")), "2026-03-13");
  });
});

describe("node reports", () => {
  test("level reached, the target and its level, from the node's own objectives", () => {
    const r = nodeReport(endpoint("pay-svc", "/wallet/debit"), SLO, figures(2000, 3, { slow: 20, badMinutes: 1 }));
    assert.equal(r.name, "pay-svc /wallet/debit");
    assert.equal(r.availability, 0.9985);
    assert.equal(r.levelReached, "basic");
    assert.ok(Math.abs(r.target - 0.995) < 1e-12);
    assert.equal(r.targetLevel, "basic");
    assert.equal(r.targetMet, true);
    assert.equal(r.downtime.badMinutes, 1);
    assert.ok(Math.abs((r.downtime.equivalentS as number) - 129.6) < 1e-6);
    assert.equal(r.latency.compliance, 0.99);
    assert.equal(r.latency.met, true);
    assert.equal(r.latency.thresholdUs, 100_000);
    assert.equal(r.runbook, "https://runbooks.test/pay-svc");
  });

  test("below 90% no level is reached; without requests no figure at all", () => {
    const low = nodeReport(endpoint("room-svc", "/x"), SLO, figures(100, 20));
    assert.equal(low.levelReached, null);
    assert.equal(low.targetMet, false);
    const idle = nodeReport(endpoint("room-svc", "/y"), SLO, figures(0, 0));
    assert.equal(idle.availability, null);
    assert.equal(idle.levelReached, null);
    assert.equal(idle.targetMet, null);
    assert.equal(idle.errorBudget.left, null);
  });

  test("six nines reach strong; 100% too", () => {
    assert.equal(nodeReport(endpoint("a", "/a"), SLO, figures(1_000_000, 1)).levelReached, "strong");
    assert.equal(nodeReport(endpoint("a", "/a"), SLO, figures(1_000_000, 2)).levelReached, "very high");
    assert.equal(nodeReport(endpoint("a", "/a"), SLO, figures(10, 0)).levelReached, "strong");
  });

  test("worst endpoints: most budget consumed first, then lowest availability; none without errors; at most 10", () => {
    const nodes: NodeReport[] = [
      nodeReport(endpoint("a", "/clean"), SLO, figures(1000, 0)),
      nodeReport(endpoint("a", "/half"), SLO, figures(1000, 0.5)), // half the budget of 1
      nodeReport(endpoint("a", "/double"), SLO, figures(1000, 2)),
      nodeReport(endpoint("a", "/double-small"), SLO, figures(500, 1)), // same consumption, same availability
      nodeReport(endpoint("pay-svc", "/wallet/debit"), SLO, figures(1000, 5)), // 99.5%: exactly its budget
    ];
    assert.deepEqual(
      worstEndpoints(nodes).map((e) => e.name),
      ["a /double", "a /double-small", "pay-svc /wallet/debit", "a /half"],
    );
    const many = Array.from({ length: 15 }, (_, i) => nodeReport(endpoint("a", `/e${i}`), SLO, figures(1000, i + 1)));
    const worst = worstEndpoints(many);
    assert.equal(worst.length, 10);
    assert.equal(worst[0]?.name, "a /e14");
    assert.ok(Math.abs((worst[0]?.budgetConsumed as number) - 15) < 1e-9);
  });
});

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

describe("formats", () => {
  test("availability never rounds up, and shows six nines", () => {
    assert.equal(formatAvailability(0.999), "99.9000%");
    assert.equal(formatAvailability(0.9999996), "99.9999%");
    assert.equal(formatAvailability(0.99999999), "99.9999%");
    assert.equal(formatAvailability(1), "100%");
    assert.equal(formatAvailability(null), "–");
    assert.equal(formatTarget(0.9990000000000001), "99.9%");
    assert.equal(formatTarget(0.99999), "99.999%");
    assert.equal(formatShare(-0.5), "-50.0%");
  });

  test("durations and latencies in the unit that fits", () => {
    assert.equal(formatDuration(0), "0s");
    assert.equal(formatDuration(0.0864), "0.09s");
    assert.equal(formatDuration(8.64), "8.6s");
    assert.equal(formatDuration(72), "1m 12s");
    assert.equal(formatDuration(864), "14m 24s");
    assert.equal(formatDuration(8640), "2h 24m");
    assert.equal(formatDuration(31_536), "8h 46m");
    assert.equal(formatDuration(3_153_600), "36d 12h");
    assert.equal(formatLatencyUs(850), "850µs");
    assert.equal(formatLatencyUs(149_350), "149ms");
    assert.equal(formatLatencyUs(1_234_567), "1.23s");
    assert.equal(formatLatencyUs(null), "–");
  });
});
