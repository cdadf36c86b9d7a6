import assert from "node:assert/strict";
import { test } from "node:test";
import { distribute } from "./assigner.ts";

const tasks = ["0_0", "0_1", "0_2", "0_3", "0_4", "0_5", "1_0", "1_1", "1_2"];

test("distribute: balanced within one task", () => {
  const plan = distribute(tasks, [
    { id: "a", owned: [] },
    { id: "b", owned: [] },
  ]);
  const sizes = [...plan.values()].map((t) => t.length).sort();
  assert.deepEqual(sizes, [4, 5]);
  assert.equal(new Set([...plan.values()].flat()).size, tasks.length);
});

test("distribute: sticky — members keep what they owned when balance allows", () => {
  const before = distribute(tasks, [
    { id: "a", owned: [] },
    { id: "b", owned: [] },
  ]);
  const again = distribute(tasks, [
    { id: "a", owned: before.get("a") ?? [] },
    { id: "b", owned: before.get("b") ?? [] },
  ]);
  assert.deepEqual(again, before);
  // A third member joins: the others give up only what balance needs.
  const three = distribute(tasks, [
    { id: "a", owned: before.get("a") ?? [] },
    { id: "b", owned: before.get("b") ?? [] },
    { id: "c", owned: [] },
  ]);
  assert.deepEqual(
    [...three.values()].map((t) => t.length),
    [3, 3, 3],
  );
  for (const t of three.get("a") ?? []) assert.ok(before.get("a")?.includes(t));
  // A member leaves: the survivor keeps its tasks and takes the rest.
  const one = distribute(tasks, [{ id: "b", owned: before.get("b") ?? [] }]);
  assert.equal(one.get("b")?.length, tasks.length);
});

test("distribute: a task claimed by two members (a stale claim) goes to one", () => {
  const plan = distribute(
    ["0_0", "0_1"],
    [
      { id: "a", owned: ["0_0", "0_1"] },
      { id: "b", owned: ["0_0"] },
    ],
  );
  assert.deepEqual(plan.get("a"), ["0_0"]);
  assert.deepEqual(plan.get("b"), ["0_1"]);
});
