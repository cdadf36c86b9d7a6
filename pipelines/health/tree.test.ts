import assert from "node:assert/strict";
import { test } from "node:test";
import { assemble, type TreeNode } from "./tree.ts";

function node(level: TreeNode["level"], system: string, service: string, endpoint: string): TreeNode {
  const name =
    level === "APP"
      ? "live"
      : level === "SYSTEM"
        ? `live/${system}`
        : level === "SERVICE"
          ? service
          : `${service} ${endpoint}`;
  return {
    level,
    app: "live",
    system,
    service,
    endpoint,
    name,
    requests: 1,
    errors: 0,
    slow: 0,
    qps: 1,
    availability: 1,
    levelReached: "strong",
    target: 0.999,
    targetLevel: "higher",
    budgetLeft: 1,
    burnRate: 0,
    alertsFiring: 0,
    runbook: "",
    children: [],
  };
}

test("assemble: app > system > service > endpoint, children by name; without parents (a scoped token) services are roots", () => {
  const roots = assemble([
    node("ENDPOINT", "gifting", "gift-svc", "/gift/send"),
    node("SERVICE", "gifting", "gift-svc", ""),
    node("SYSTEM", "gifting", "", ""),
    node("APP", "", "", ""),
    node("SERVICE", "gifting", "pay-svc", ""),
    node("SYSTEM", "room", "", ""),
  ]);
  assert.deepEqual(
    roots.map((r) => r.name),
    ["live"],
  );
  const live = roots[0] as TreeNode;
  assert.deepEqual(
    live.children.map((c) => c.name),
    ["live/gifting", "live/room"],
  );
  assert.deepEqual(
    live.children[0]?.children.map((c) => c.name),
    ["gift-svc", "pay-svc"],
  );
  assert.deepEqual(
    live.children[0]?.children[0]?.children.map((c) => c.name),
    ["gift-svc /gift/send"],
  );
  const scoped = assemble([
    node("ENDPOINT", "gifting", "gift-svc", "/gift/send"),
    node("SERVICE", "gifting", "gift-svc", ""),
  ]);
  assert.deepEqual(
    scoped.map((r) => r.name),
    ["gift-svc"],
  );
  assert.equal(scoped[0]?.children.length, 1);
});
