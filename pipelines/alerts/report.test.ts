import assert from "node:assert/strict";
import { test } from "node:test";
import type { AlertEpisode } from "../health/health-reader.ts";
import { type AlertAction, boardAlert } from "./board.ts";
import { alertReport, median } from "./report.ts";

const T0 = Date.parse("2026-11-21T09:00:00Z");

function episode(id: string, startS: number, endS: number | null, service = "gift-svc"): AlertEpisode {
  const iso = (s: number) => new Date(T0 + s * 1000).toISOString().replace(/\.000Z$/, "Z");
  return {
    id,
    rule: "availability-1m-5s",
    kind: "BURN_RATE",
    severity: "PAGE",
    level: "SERVICE",
    app: "live",
    system: "gifting",
    service,
    endpoint: "",
    target: service,
    start: iso(startS),
    end: endS === null ? null : iso(endS),
    durationS: endS === null ? null : endS - startS,
    observed: 12,
    threshold: 10,
    objective: 0.995,
    message: "burning",
    runbook: "https://rb.example",
  };
}

const act = (alertId: string, atS: number, action: AlertAction["action"], actor = "ann"): AlertAction => ({
  alertId,
  at: T0 + atS * 1000,
  action,
  actor,
  note: "",
  service: "gift-svc",
  id: `${alertId}-${atS}-${action}`,
});

test("status and timeline: firing, then acknowledged, then resolved by hand; cleared by the pipeline", () => {
  const e = episode("a", 0, null);
  assert.equal(boardAlert(e, "gifting", []).status, "firing");
  const acked = boardAlert(e, "gifting", [act("a", 30, "ACK"), act("a", 5, "NOTIFIED", "phone")]);
  assert.equal(acked.status, "acknowledged");
  assert.deepEqual(
    acked.timeline.map((t) => t.what),
    ["fired", "notified", "acknowledged"],
  );
  assert.equal(boardAlert(e, "gifting", [act("a", 30, "ACK"), act("a", 90, "RESOLVE")]).status, "resolved");
  const cleared = boardAlert(episode("b", 0, 120), "gifting", []);
  assert.equal(cleared.status, "resolved");
  assert.deepEqual(
    cleared.timeline.map((t) => t.what),
    ["fired", "cleared"],
  );
});

test("the report: time to acknowledge and to resolve (the first of cleared and resolved by hand), medians and worst, per scene", () => {
  const alerts = [
    boardAlert(episode("a", 0, 300), "gifting", [act("a", 60, "ACK"), act("a", 200, "RESOLVE", "bob")]),
    boardAlert(episode("b", 100, 400), "gifting", [act("b", 130, "ACK")]),
    boardAlert(episode("c", 200, null, "room-svc"), "live-rooms", []),
    boardAlert(episode("d", -4000, 10), "gifting", []),
  ];
  const r = alertReport(alerts, T0, T0 + 3600_000);
  assert.equal(r.totals.alerts, 3, "d started before the period");
  assert.deepEqual(
    r.alerts.map((a) => [a.id, a.timeToAcknowledgeS, a.acknowledgedBy, a.timeToResolveS, a.resolvedBy]),
    [
      ["a", 60, "ann", 200, "bob"],
      ["b", 30, "ann", 300, "pipeline"],
      ["c", null, null, null, null],
    ],
  );
  assert.equal(r.totals.medianTimeToAcknowledgeS, 45);
  assert.equal(r.totals.maxTimeToResolveS, 300);
  assert.deepEqual(
    r.byScene.map((s) => [s.scene, s.alerts, s.acknowledged]),
    [
      ["gifting", 2, 2],
      ["live-rooms", 1, 0],
    ],
  );
  assert.equal(median([]), null);
  assert.equal(median([3, 1, 2]), 2);
});
