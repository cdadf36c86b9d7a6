// Restores a task's stores from their changelog and table topics (Kafka Streams' StoreChangelogReader
// role) before the task reads its sources. The worker's own consumer reads them: each is sought to
// its earliest offset and read up to the last stable offset it had when the task was opened (after
// its producer fenced the previous owner, so no transaction of that owner is still open). Then the
// sources are sought to the group's committed offsets and the task runs; its changelogs stay paused
// until the task moves again. `/health` is 503 while any task restores.
import type { Logger } from "pino";
import type { GroupConsumer, StreamAdmin } from "../kafka/stream-client.ts";
import type { OwnedTask } from "./owned-task.ts";

export interface ChangelogReaderContext {
  readonly appId: string;
  readonly consumer: Pick<GroupConsumer, "seek" | "pause" | "resume">;
  readonly admin: Pick<StreamAdmin, "offsets" | "committed">;
  readonly log: Logger;
  readonly restoreSeconds: { observe(seconds: number): void };
}

/** The compacted topics a task's stores are written to (tables have their own topic, not one of these). */
export function changelogsOf(t: OwnedTask): string[] {
  return t.sub.stores.flatMap((s) => (s.changelog ? [s.changelog] : []));
}

export class ChangelogReader {
  constructor(private readonly ctx: ChangelogReaderContext) {}

  /** Starts restoring a task just opened; a task with nothing to read runs at once. */
  async begin(t: OwnedTask): Promise<void> {
    const { consumer, admin, log } = this.ctx;
    const partition = t.task.partition;
    const topics = [...changelogsOf(t), ...t.sub.tables.map((table) => table.topic)];
    // Pauses outlive assignments in kafkajs: a changelog paused when we last owned the task must fetch again.
    if (topics.length > 0) consumer.resume(topics.map((topic) => ({ topic, partitions: [partition] })));
    for (const topic of topics) {
      const off = (await admin.offsets(topic)).get(partition);
      if (!off || BigInt(off.high) <= BigInt(off.low)) continue;
      t.restore.targets.set(topic, BigInt(off.high));
      t.restore.applied.set(topic, BigInt(off.low));
      consumer.seek({ topic, partition, offset: off.low });
    }
    if (t.restore.targets.size === 0) await this.finish(t);
    else log.info({ task: t.task.id, changelogs: Object.fromEntries(t.restore.targets) }, "restoring");
  }

  /**
   * Where the restore of a topic stands: the offset after the last record applied, or undefined
   * when the topic is not being restored (or not sought yet: a fetch from elsewhere is not applied).
   */
  applied(t: OwnedTask, topic: string): bigint | undefined {
    return t.state === "restoring" ? t.restore.applied.get(topic) : undefined;
  }

  /** A fetch of a restoring topic was applied to its end (offsets may jump: compaction, transaction markers). */
  advance(t: OwnedTask, topic: string, lastOffset: string): void {
    const applied = this.applied(t, topic);
    if (applied === undefined) return;
    const next = BigInt(lastOffset) + 1n;
    if (next > applied) t.restore.applied.set(topic, next);
  }

  /** Finishes the task's restore once every topic is read to its target. */
  async progress(t: OwnedTask, topic: string): Promise<void> {
    const target = t.restore.targets.get(topic);
    const applied = t.restore.applied.get(topic);
    if (target === undefined || applied === undefined || applied < target) return;
    t.restore.targets.delete(topic);
    if (t.restore.targets.size === 0) await this.finish(t);
  }

  private async finish(t: OwnedTask): Promise<void> {
    if (t.closed || t.state === "running") return;
    const { consumer, admin, appId, log } = this.ctx;
    const { task } = t;
    task.restored();
    const topics = t.sub.sources.map((s) => s.topic);
    const committed = await admin.committed(appId, topics);
    const from: Record<string, string> = {};
    for (const topic of topics) {
      const ends = (await admin.offsets(topic)).get(task.partition);
      let offset = committed.get(`${topic}#${task.partition}`) ?? "-1";
      if (offset === "-1") offset = ends?.low ?? "0";
      from[topic] = offset;
      consumer.seek({ topic, partition: task.partition, offset });
      const input = task.inputs.get(topic);
      // Anything fetched from elsewhere meanwhile is skipped: the task starts exactly here.
      if (input) input.next = offset;
      // Read to its end, or a backlog: until a fetch says otherwise, the partition's silence means
      // nothing more is coming only in the first case (idle timeouts count only once caught up).
      // (A repartition topic has no such channel: its watermark comes from announcements.)
      task.tracker.setCaughtUp(`${topic}#${task.partition}`, BigInt(offset) >= BigInt(ends?.high ?? "0"));
    }
    const changelogs = changelogsOf(t);
    if (changelogs.length > 0) consumer.pause(changelogs.map((topic) => ({ topic, partitions: [task.partition] })));
    consumer.resume(topics.map((topic) => ({ topic, partitions: [task.partition] })));
    t.state = "running";
    const seconds = (Date.now() - t.restore.started) / 1000;
    this.ctx.restoreSeconds.observe(seconds);
    log.info(
      {
        task: task.id,
        seconds,
        entries: [...task.stores.values()].map((s) => s.size),
        from,
        watermark: task.watermark,
      },
      "task running",
    );
  }
}
