// The tasks a worker owns, as the group assigns them: opened on assignment (fencing the previous
// owner's producer first, then restoring: changelog-reader.ts), kept on a rejoin at their own
// positions, closed when revoked, dropped when their transaction fails, opened again when the
// group has given a fenced task back to this worker, or when the transaction failed on a
// coordinator that was moving (a broker failing over or coming back).
import type { Logger } from "pino";
import type { StreamApp } from "../dsl/app.ts";
import type { CompiledTopology, SubTopology } from "../dsl/compile.ts";
import { taskKey } from "../kafka/assigner.ts";
import {
  errorName,
  type GroupConsumer,
  isCoordinatorUnsettled,
  isFenced,
  isUnreachable,
  type StreamKafkaClient,
} from "../kafka/stream-client.ts";
import { type ChangelogReader, changelogsOf } from "./changelog-reader.ts";
import type { OwnedTask } from "./owned-task.ts";
import { RecordCollector } from "./record-collector.ts";
import { Task, type TaskIO } from "./task.ts";

export interface AssignedTasksContext {
  readonly app: StreamApp;
  readonly topology: CompiledTopology;
  readonly kafka: Pick<StreamKafkaClient, "transactionalProducer">;
  readonly consumer: Pick<GroupConsumer, "seek" | "pause">;
  readonly restorer: ChangelogReader;
  readonly log: Logger;
  readonly taskCounts: Map<number, number>;
  readonly sendBatch: number;
  ioFor(t: OwnedTask): TaskIO;
  /** The worker cannot go on: stop it (a supervisor restarts it from the last commit). */
  fail(e: unknown): void;
}

/**
 * Times in a row a task is opened again after its transaction failed on an unsettled coordinator
 * before the worker gives up. Each attempt already waits (the producer's creation and the offsets
 * are retried for minutes: stream/kafka/coordinator-retry.ts), so this many is an outage, not churn.
 */
export const MAX_REOPENS_IN_A_ROW = 10;

export class AssignedTasks {
  private readonly live = new Map<string, OwnedTask>();
  /** The tasks of the latest assignment, as the group announced it (before `assign` runs). */
  private latest = new Set<string>();
  /** Assignments received so far; and for each open task, how many there were when it was opened. */
  private assignments = 0;
  private readonly openedAt = new Map<string, number>();

  constructor(private readonly ctx: AssignedTasksContext) {}

  ids(): string[] {
    return [...this.live.keys()];
  }

  all(): IterableIterator<OwnedTask> {
    return this.live.values();
  }

  running(): OwnedTask[] {
    return [...this.live.values()].filter((t) => t.state === "running" && !t.closed);
  }

  /** The open task that reads this partition of this topic, if this worker owns it. */
  reading(topic: string, partition: number): OwnedTask | undefined {
    const role = this.ctx.topology.topicRoles.get(topic);
    const t = role ? this.live.get(taskKey({ sub: role.sub, partition })) : undefined;
    return t?.closed ? undefined : t;
  }

  private tasksOf(assignment: Record<string, number[]>): Set<string> {
    const wanted = new Set<string>();
    for (const [topic, partitions] of Object.entries(assignment)) {
      const role = this.ctx.topology.topicRoles.get(topic);
      if (role) for (const p of partitions) wanted.add(taskKey({ sub: role.sub, partition: p }));
    }
    return wanted;
  }

  /** The group's new assignment, noted at once; `assign` acts on it when the worker's lock allows. */
  received(assignment: Record<string, number[]>): void {
    this.latest = this.tasksOf(assignment);
    this.assignments++;
  }

  async assign(assignment: Record<string, number[]>): Promise<void> {
    const { topology, log } = this.ctx;
    const wanted = this.tasksOf(assignment);
    for (const [id, t] of this.live) {
      if (!wanted.has(id)) {
        this.live.delete(id);
        await this.close(t);
        log.info({ task: id }, "task revoked");
      }
    }
    const opening: Array<Promise<void>> = [];
    for (const id of wanted) {
      const existing = this.live.get(id);
      if (existing) {
        // A rejoin resets fetch positions to the committed offsets: continue from where the task is.
        this.resumePositions(existing);
        continue;
      }
      const [sub, partition] = id.split("_").map(Number) as [number, number];
      opening.push(this.open(topology.subtopologies[sub] as SubTopology, partition));
    }
    // Side by side: each waits for its transaction coordinator to fence the previous owner (which
    // completes that owner's open transaction), seconds each while a broker fails over; one after
    // another, a worker taking over a dead one's tasks started the last of them a minute late.
    const failed = (await Promise.allSettled(opening)).find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
    log.info({ tasks: this.ids() }, "assignment");
  }

  private async open(sub: SubTopology, partition: number, reopened = 0): Promise<void> {
    const { app, topology, consumer, kafka } = this.ctx;
    const now = Date.now();
    const t: OwnedTask = {
      task: undefined as unknown as Task, // below: the task's IO needs this record
      sub,
      state: "restoring",
      producer: null,
      output: null,
      dirty: false,
      restore: { targets: new Map(), applied: new Map(), started: now },
      lastAnnounce: 0,
      committedAt: now,
      reopened,
      closed: false,
    };
    const upstreamTasks = (up: number) => this.ctx.taskCounts.get(up) ?? 1;
    t.task = new Task(topology, sub, partition, this.ctx.ioFor(t), upstreamTasks, app.onError);
    consumer.pause(sub.sources.map((s) => ({ topic: s.topic, partitions: [partition] })));
    this.live.set(t.task.id, t);
    this.openedAt.set(t.task.id, this.assignments);
    const transactional =
      app.guarantee === "exactly-once" || sub.stores.some((s) => s.changelog !== null) || sub.repartitions.length > 0;
    // Fence first: an older owner's open transaction is aborted before we read the changelog's end.
    if (transactional) {
      t.producer = await kafka.transactionalProducer(`${app.appId}-${t.task.id}`);
      t.output = new RecordCollector(t.producer, this.ctx.sendBatch);
    }
    await this.ctx.restorer.begin(t);
  }

  private resumePositions(t: OwnedTask): void {
    const { consumer } = this.ctx;
    if (t.state !== "running") {
      // kafkajs restarts a consumer that crashed (a join refused while a coordinator loads) as a new
      // one that has forgotten its pauses: a restoring task's sources would be fetched, and fetched
      // again, until the restore ends. They wait for it.
      consumer.pause(t.sub.sources.map((s) => ({ topic: s.topic, partitions: [t.task.partition] })));
      return;
    }
    for (const input of t.task.inputs.values()) {
      if (input.role === "source" && input.next !== null) {
        consumer.seek({ topic: input.topic, partition: t.task.partition, offset: input.next });
      }
    }
    const changelogs = changelogsOf(t);
    if (changelogs.length > 0) consumer.pause(changelogs.map((topic) => ({ topic, partitions: [t.task.partition] })));
  }

  private async close(t: OwnedTask): Promise<void> {
    t.closed = true;
    t.task.close();
    this.openedAt.delete(t.task.id);
    await t.output?.drain();
    await t.producer?.close().catch(() => {});
  }

  async closeAll(): Promise<void> {
    for (const t of this.live.values()) await this.close(t);
    this.live.clear();
  }

  /**
   * A transaction failed: fenced (another member owns the task now), or the broker gave up, or the
   * transaction outlived its timeout while the sinks were flushed (the broker aborted it and bumped
   * the epoch, which also reads as fenced, but the task is still ours), or a coordinator was not
   * settled past the retries (moving to another broker, loading, or unreachable).
   */
  async lost(t: OwnedTask, e: unknown, timedOut: boolean): Promise<void> {
    const id = t.task.id;
    const openedAt = this.openedAt.get(id) ?? 0;
    const timeout = (t.producer?.transactionTimeoutMs ?? 0) / 1000;
    // Whether the transaction committed is not known (EndTxn refused, or sent and not answered), and
    // the task's state holds records whose offsets may not be committed. A new producer settles it:
    // it completes a commit the coordinator had begun, or aborts the transaction; the task reopened
    // restores from the changelogs and reads from the committed offsets, so each record counts once
    // either way (the sinks take the replay as the idempotent rewrite they take after a crash).
    const unsettled = !timedOut && !isFenced(e) && (isCoordinatorUnsettled(e) || isUnreachable(e));
    const inARow = t.committedAt > t.restore.started ? 1 : t.reopened + 1;
    this.ctx.log.warn(
      { task: id, err: e },
      timedOut
        ? `checkpoint of task ${id} failed (${errorName(e)}) more than the transaction timeout (${timeout} s) after its last commit: the broker aborted it; starting over from that commit`
        : unsettled
          ? `checkpoint of task ${id} failed (${errorName(e)}): its coordinator is not settled; opening the task again from its last commit (${inARow} in a row)`
          : `checkpoint of task ${id} failed (${errorName(e)}); dropping it, its next owner replays`,
    );
    this.live.delete(id);
    await this.close(t);
    if (unsettled) {
      if (inARow > MAX_REOPENS_IN_A_ROW) return this.ctx.fail(e);
      // Revoked meanwhile: its next owner's producer settles the transaction.
      if (!this.latest.has(id)) return;
      // A producer that cannot be made (the budget spent) leaves the task without one: the worker stops.
      await this.open(t.sub, t.task.partition, inARow).catch((err) => this.ctx.fail(err));
      return;
    }
    // Not a move: rejoin so the group hands the task out again, starting from the last commit.
    if (timedOut || !isFenced(e)) return this.ctx.fail(e);
    // Fenced, yet the group's latest assignment, newer than the task, gives it to this worker: an
    // owner in between (while this worker was out of the group) fenced it and has handed it back.
    // Nobody else will open it, so open it here, restoring from the changelogs.
    if (this.latest.has(id) && openedAt < this.assignments) {
      this.ctx.log.info({ task: id }, `task ${id} is assigned here again: opening it again`);
      await this.open(t.sub, t.task.partition).catch((err) => this.ctx.fail(err));
    }
  }
}
