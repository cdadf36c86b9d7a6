// Backpressure: while a sink holds more than its high-water mark, or the producers have too many
// sends in flight, every source partition of the worker is paused (not only the task that wrote the
// most: the sinks are shared), until the sink has drained to half its mark and the sends settled.
// The consumer's heartbeat keeps the membership meanwhile, so a slow store never costs a rebalance.
import type { GroupConsumer, PartitionList } from "../kafka/stream-client.ts";
import type { OwnedTask } from "./owned-task.ts";
import type { TaskOutputs } from "./task-outputs.ts";

/** How long one flush is awaited before the heartbeat is sent again. */
const FLUSH_SLICE_MS = 1000;

export async function relieveBackpressure(
  outputs: TaskOutputs,
  tasks: Iterable<OwnedTask>,
  consumer: Pick<GroupConsumer, "pause" | "resume">,
  heartbeat: () => Promise<void>,
  stillOwned: (topic: string, partition: number) => boolean,
): Promise<void> {
  const owned = [...tasks];
  const { slow, tooManySends } = outputs.congestion(owned);
  if (slow.length === 0 && !tooManySends) return;
  const paused: PartitionList[] = owned
    .filter((t) => t.state === "running")
    .flatMap((t) => t.sub.sources.map((s) => ({ topic: s.topic, partitions: [t.task.partition] })));
  consumer.pause(paused);
  try {
    for (const sink of slow) {
      while (sink.pending() > sink.highWater / 2) {
        await Promise.race([sink.flush(), new Promise((r) => setTimeout(r, FLUSH_SLICE_MS))]);
        await heartbeat();
      }
    }
    await outputs.shared.drain();
    for (const t of owned) await t.output?.drain();
  } finally {
    consumer.resume(paused.filter((p) => stillOwned(p.topic, p.partitions[0] as number)));
  }
}
