import assert from "node:assert/strict";
import { test } from "node:test";
import type { PartitionList } from "../kafka/stream-client.ts";
import type { Sink } from "../sink.ts";
import { relieveBackpressure } from "./backpressure.ts";
import type { OwnedTask } from "./owned-task.ts";
import type { TaskOutputs } from "./task-outputs.ts";

function ownedTask(partition: number, state: OwnedTask["state"]): OwnedTask {
  return { state, task: { partition }, sub: { sources: [{ topic: "in" }] }, output: null } as unknown as OwnedTask;
}

function fakes(pending: number) {
  const calls: string[] = [];
  const sink = {
    highWater: 100,
    pending: () => pending,
    flush: async () => {
      calls.push(`flush at ${pending}`);
      pending = Math.max(0, pending - 60);
    },
  } as unknown as Sink;
  const outputs = {
    congestion: () => ({ slow: sink.pending() > sink.highWater ? [sink] : [], tooManySends: false }),
    shared: { drain: async () => void calls.push("drain") },
  } as unknown as TaskOutputs;
  const consumer = {
    pause: (p: PartitionList[]) => calls.push(`pause ${p.map((x) => x.partitions[0]).join(",")}`),
    resume: (p: PartitionList[]) => calls.push(`resume ${p.map((x) => x.partitions[0]).join(",")}`),
  };
  return { calls, outputs, consumer };
}

test("a sink over its high-water mark pauses every running source until it drains to half, then resumes those still owned", async () => {
  const { calls, outputs, consumer } = fakes(170);
  let heartbeats = 0;
  const tasks = [ownedTask(0, "running"), ownedTask(1, "running"), ownedTask(2, "restoring")];
  await relieveBackpressure(
    outputs,
    tasks,
    consumer,
    async () => void heartbeats++,
    (_topic, p) => p !== 1, // partition 1 was taken away meanwhile: it is not resumed
  );
  assert.deepEqual(calls, ["pause 0,1", "flush at 170", "flush at 110", "drain", "resume 0"]);
  assert.equal(heartbeats, 2, "a heartbeat after every flush keeps the membership");
});

test("below the high-water mark nothing is paused", async () => {
  const { calls, outputs, consumer } = fakes(100);
  await relieveBackpressure(
    outputs,
    [ownedTask(0, "running")],
    consumer,
    async () => {},
    () => true,
  );
  assert.deepEqual(calls, []);
});
