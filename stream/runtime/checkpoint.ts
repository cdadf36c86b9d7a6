// The checkpoint, in the order Kafka Streams and Quix Streams keep (Quix's checkpointing/checkpoint.py):
// no input is committed as processed before every place its effects went has acknowledged them.
//
//   0. Snapshot each running task, synchronously: its changelog records and its input positions.
//      The offsets committed below cover exactly the records whose effects the next steps flush.
//   1. Flush the external sinks. What a sink refused for good becomes a dead letter.
//   2. Wait for Kafka to acknowledge the records sent outside transactions (stateless tasks'
//      outputs, dead letters, step 1's included).
//   3. Per task with a transaction: its outputs, its changelog records and its input offsets,
//      committed together. A fenced or aborted transaction drops the task (`taskFailed`).
//   4. The other tasks' offsets, committed through the group. A group that is rebalancing refuses
//      them: the next checkpoint commits them, or the tasks' next owners replay into idempotent sinks.
//
// The worker runs it under its lock: no record is read meanwhile, however long a sink takes.
import type { Logger } from "pino";
import { type GroupConsumer, isRebalance, type TopicPartitionOffset } from "../kafka/stream-client.ts";
import { type Sink, SinkFailedError } from "../sink.ts";
import { encodeSinkDeadLetter } from "./dead-letters.ts";
import { heartbeating } from "./keep-membership.ts";
import type { OwnedTask } from "./owned-task.ts";
import type { RecordCollector } from "./record-collector.ts";
import type { Task } from "./task.ts";

/** How often a checkpoint waiting for its sinks says so. */
export const SINK_WAIT_LOG_MS = 10_000;

/** What a checkpoint reads and writes of a task (an `OwnedTask` has it). */
export interface CheckpointedTask extends Pick<OwnedTask, "producer" | "output" | "dirty" | "committedAt"> {
  readonly task: Pick<Task, "id" | "partition" | "snapshot">;
}

export interface CheckpointContext<T extends CheckpointedTask> {
  readonly appId: string;
  readonly dlqTopic: string;
  readonly log: Logger;
  /** The external sinks the tasks write to. */
  readonly sinks: ReadonlySet<Sink>;
  /** Records sent outside the tasks' transactions. */
  readonly shared: RecordCollector;
  readonly consumer: Pick<GroupConsumer, "commitOffsets">;
  /** A heartbeat while the sinks and the transactions are waited for, so the group keeps this member; never throws. */
  keepMembership(): Promise<void>;
  /** A task's transaction failed; `timedOut`: it had been open longer than the broker keeps one. */
  taskFailed(t: T, e: unknown, timedOut: boolean): Promise<void>;
  readonly commitSeconds: { observe(seconds: number): void };
}

export class Checkpoint<T extends CheckpointedTask> {
  constructor(private readonly ctx: CheckpointContext<T>) {}

  /**
   * Commits the given tasks' progress and returns the offsets committed (those of failed
   * transactions and of a refused group commit left out); rejects when a sink's flush or a send
   * outside transactions failed.
   */
  async commit(tasks: T[]): Promise<TopicPartitionOffset[]> {
    const started = Date.now();
    // Step 0. Snapshot the tasks.
    const snapshots = tasks.map((t) => ({ t, snap: t.task.snapshot() }));
    // Step 1. Flush the external sinks; dead-letter what they refused.
    await this.flushSinks();
    this.deadLetterRefused();
    // Step 2. Records outside transactions acknowledged.
    await this.flushShared();
    // Step 3. Each transactional task: outputs, changelog and offsets in its transaction.
    const committed: TopicPartitionOffset[] = [];
    // A coordinator failing over holds them (retried, or the task opened again): the member heartbeats meanwhile.
    const plain = await heartbeating(this.commitTransactions(snapshots, committed), () => this.ctx.keepMembership());
    // Step 4. The other tasks' offsets through the group.
    if (await this.commitOffsets(plain, started)) committed.push(...plain);
    this.ctx.commitSeconds.observe((Date.now() - started) / 1000);
    return committed;
  }

  /**
   * Every sink's flush at once. A store that is down holds the checkpoint as long as it is down; the
   * member keeps heartbeating so the group does not drop it after sessionTimeout, and the log names
   * the sinks still waited for every SINK_WAIT_LOG_MS.
   */
  private async flushSinks(): Promise<void> {
    const { sinks, log } = this.ctx;
    if (sinks.size === 0) return;
    const started = Date.now();
    const waiting = new Set(sinks);
    let settled = false;
    const all = Promise.all(
      [...sinks].map((sink) =>
        sink.flush().then(
          () => {
            waiting.delete(sink);
          },
          (e: unknown) => {
            throw new SinkFailedError(sink.name, e);
          },
        ),
      ),
    ).finally(() => {
      settled = true;
    });
    all.catch(() => {}); // awaited below
    let logged = started;
    while (!settled) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([all.catch(() => {}), new Promise((r) => (timer = setTimeout(r, 1000)))]);
      clearTimeout(timer);
      if (settled) break;
      await this.ctx.keepMembership();
      if (Date.now() - logged >= SINK_WAIT_LOG_MS) {
        logged = Date.now();
        log.warn(
          { sinks: [...waiting].map((s) => s.name), waitedMs: logged - started },
          "checkpoint waiting for sinks to acknowledge; sources stay paused until they do",
        );
      }
    }
    await all;
    if (Date.now() - started >= SINK_WAIT_LOG_MS) {
      log.info({ waitedMs: Date.now() - started }, "sinks acknowledged; checkpoint goes on");
    }
  }

  private deadLetterRefused(): void {
    const { appId, dlqTopic, sinks, shared } = this.ctx;
    for (const sink of sinks) {
      for (const r of sink.takeRejected?.() ?? []) {
        const refused = { reason: r.reason, message: r.message, value: r.rec.value };
        const { key, value } = encodeSinkDeadLetter(appId, sink.name, refused, Date.now());
        shared.add({ topic: dlqTopic, partition: null, key, value, ts: Date.now() });
      }
    }
  }

  private async flushShared(): Promise<void> {
    const { shared } = this.ctx;
    shared.send();
    await shared.drain();
    const failure = shared.takeFailure();
    if (failure) throw failure;
  }

  /** Step 3, adding what it commits to `committed`; returns the offsets of the tasks without a transaction, for step 4. */
  private async commitTransactions(
    snapshots: Array<{ t: T; snap: ReturnType<Task["snapshot"]> }>,
    committed: TopicPartitionOffset[],
  ): Promise<TopicPartitionOffset[]> {
    const plain: TopicPartitionOffset[] = [];
    await Promise.all(
      snapshots.map(async ({ t, snap }) => {
        const partition = t.task.partition;
        const offsets = snap.offsets.map((o) => ({ topic: o.topic, partition, offset: o.offset }));
        if (!t.producer) {
          plain.push(...offsets);
          return;
        }
        if (!t.dirty && snap.changelog.length === 0) {
          t.committedAt = Date.now(); // nothing sent since the last commit: no transaction is open
          return;
        }
        t.output?.send();
        await t.output?.drain();
        try {
          const failure = t.output?.takeFailure();
          if (failure) throw failure;
          await t.producer.send(
            snap.changelog.map((c) => ({ topic: c.topic, partition, key: c.key, value: c.value, ts: Date.now() })),
          );
          await t.producer.commit(this.ctx.appId, offsets);
          committed.push(...offsets);
          this.ctx.log.debug({ task: t.task.id, offsets, changelog: snap.changelog.length }, "committed");
          t.dirty = false;
          t.committedAt = Date.now();
        } catch (e) {
          await this.ctx.taskFailed(t, e, Date.now() - t.committedAt >= t.producer.transactionTimeoutMs);
        }
      }),
    );
    return plain;
  }

  /** Step 4; false when a rebalancing group refused the offsets. */
  private async commitOffsets(offsets: TopicPartitionOffset[], started: number): Promise<boolean> {
    if (offsets.length === 0) return true;
    try {
      await this.ctx.consumer.commitOffsets(offsets);
      return true;
    } catch (e) {
      if (!isRebalance(e)) throw e;
      // The group moved on while the sinks were flushed (a long store outage, a member joining):
      // these offsets are committed by the next checkpoint, or the tasks' next owners replay them
      // into idempotent sinks. Either way nothing is lost, and the member rejoins on its own.
      this.ctx.log.warn(
        { err: (e as Error).message, waitedMs: Date.now() - started },
        "offset commit refused by a rebalancing group; the next checkpoint commits them",
      );
      return false;
    }
  }
}
