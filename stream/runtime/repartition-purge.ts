// Purging repartition topics (Kafka Streams' purge of repartition records): they are created with
// retention.ms -1 (internal-topics.ts), because their records carry event times and a time-based
// retention would delete an old backlog before the next sub-topology reads it. What a checkpoint
// has committed has been read for good, so the worker deletes it (DeleteRecords up to the committed
// offsets), at most every `intervalMs`. A purge runs beside processing, never in the checkpoint: a
// failure is logged and counted, and the offsets are tried again at the next purge.
import type { Logger } from "pino";
import type { StreamAdmin, TopicPartitionOffset } from "../kafka/stream-client.ts";

/** Kafka Streams' repartition.purge.interval.ms default. */
export const DEFAULT_PURGE_INTERVAL_MS = 30_000;

export interface RepartitionPurgeContext {
  readonly admin: Pick<StreamAdmin, "deleteRecords">;
  /** The topology's repartition topics: nothing else is ever purged. */
  readonly repartitionTopics: ReadonlySet<string>;
  /** At most one purge per this many ms; 0 or less: never. */
  readonly intervalMs: number;
  readonly log: Pick<Logger, "debug" | "warn">;
  readonly purges: { inc(labels: { result: "ok" | "failed" }): void };
}

export class RepartitionPurge {
  /** The highest committed offset per repartition partition, not yet purged. */
  private readonly pending = new Map<string, { topic: string; partition: number; offset: bigint }>();
  private lastPurge: number;
  private inFlight: Promise<void> | null = null;

  constructor(
    private readonly ctx: RepartitionPurgeContext,
    now = Date.now(),
  ) {
    this.lastPurge = now;
  }

  /** A checkpoint has committed these offsets (the next record to read of each partition). */
  committed(offsets: TopicPartitionOffset[], now = Date.now()): void {
    if (this.ctx.intervalMs <= 0) return;
    for (const o of offsets) {
      if (!this.ctx.repartitionTopics.has(o.topic)) continue;
      this.remember(o.topic, o.partition, BigInt(o.offset));
    }
    if (this.inFlight || this.pending.size === 0 || now - this.lastPurge < this.ctx.intervalMs) return;
    this.lastPurge = now;
    const due = [...this.pending.values()];
    this.pending.clear();
    this.inFlight = this.purge(due).finally(() => {
      this.inFlight = null;
    });
  }

  /** Resolves when the purge under way, if any, has ended (it never rejects). */
  settled(): Promise<void> {
    return this.inFlight ?? Promise.resolve();
  }

  private remember(topic: string, partition: number, offset: bigint): void {
    if (offset <= 0n) return;
    const key = `${topic}#${partition}`;
    const had = this.pending.get(key);
    if (!had || had.offset < offset) this.pending.set(key, { topic, partition, offset });
  }

  private async purge(due: Array<{ topic: string; partition: number; offset: bigint }>): Promise<void> {
    const byTopic = new Map<string, typeof due>();
    for (const d of due) byTopic.set(d.topic, [...(byTopic.get(d.topic) ?? []), d]);
    for (const [topic, parts] of byTopic) {
      const partitions = parts.map((p) => ({ partition: p.partition, offset: String(p.offset) }));
      try {
        await this.ctx.admin.deleteRecords(topic, partitions);
        this.ctx.purges.inc({ result: "ok" });
        this.ctx.log.debug({ topic, partitions }, "purged committed repartition records");
      } catch (e) {
        this.ctx.purges.inc({ result: "failed" });
        this.ctx.log.warn(
          { topic, partitions, err: (e as Error).message },
          `purge of repartition topic ${topic} failed; tried again at the next purge`,
        );
        for (const p of parts) this.remember(p.topic, p.partition, p.offset);
      }
    }
  }
}
