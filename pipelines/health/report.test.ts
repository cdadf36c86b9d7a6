import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { HealthQueryError } from "./health-reader.ts";
import {
  availabilityOf,
  budgetFigures,
  equivalentDowntimeS,
  isBadMinute,
  latencyCompliance,
  type NodeReport,
  nodeReport,
  parseDay,
  previousUtcDay,
  worstEndpoints,
} from "./report.ts";
import { AVAILABILITY_LEVELS } from "./slo.ts";
import { endpoint, figures, SLO } from "./testdata/report.ts";

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
