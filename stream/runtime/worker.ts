// Runs a topology against Kafka as one member of the consumer group `appId`. Several workers (in
// one or many processes and machines) share the tasks; the group assigns whole tasks (see
// kafka/assigner.ts). The checkpoint order is Kafka Streams' and Quix's: flush external sinks, then
// the changelogs, then the offsets. A task that holds state or writes a repartition topic
// checkpoints through a Kafka transaction of its own (transactional id = app + task), so its
// changelog records and its source offsets commit together, and a crash after the sinks flushed
// but before the commit replays input against state that does not include it: no count doubles.
import { createHash } from "node:crypto";
import type { Server } from "node:http";
import pino, { type Logger } from "pino";
import type { StreamApp } from "../dsl/app.ts";
import { type CompiledTopology, compile, planPartitions, type SubTopology } from "../dsl/compile.ts";
import { taskAssigner, taskKey } from "../kafka/assigner.ts";
import {
  type EachBatchPayload,
  type KafkaAdmin,
  KafkaClient,
  type OutRecord,
  type PlainProducer,
  TASK_TRANSACTION_TIMEOUT_MS,
  type TransactionalProducer,
} from "../kafka/client.ts";
import type { Sink } from "../sink.ts";
import { encodeDeadLetter } from "./dead-letters.ts";
import { serveObservability, WorkerMetrics, type WorkerView } from "./observability.ts";
import { RecordFailure, Task, type TaskIO } from "./task.ts";

export interface WorkerOptions {
  brokers: string[];
  /** Names this process in logs and client ids. */
  instanceId?: string;
  logger?: Logger;
  /** Port for /metrics and /health; 0 picks one; null serves nothing. Default null. */
  metricsPort?: number | null;
  sessionTimeout?: number;
  /** Records buffered per task before they are sent. */
  sendBatch?: number;
}

interface LiveTask {
  task: Task;
  sub: SubTopology;
  state: "restoring" | "running";
  producer: TransactionalProducer | null;
  out: OutRecord[];
  sends: Array<Promise<void>>;
  sendError: unknown;
  dirty: boolean;
  /** Changelog/table topic -> offset it must be read up to (the last stable offset when the task was opened). */
  restoreTargets: Map<string, bigint>;
  /** Changelog/table topic -> the offset after the last record applied since the restore's seek. */
  restoreApplied: Map<string, bigint>;
  restoreStarted: number;
  lastAnnounce: number;
  /** When the task's last transaction committed (or it opened): its open one began after that. */
  committedAt: number;
  closed: boolean;
}

/** How often a checkpoint waiting for its sinks says so. */
const SINK_WAIT_LOG_MS = 10_000;

const REBALANCE_ERRORS =
  /^(REBALANCE_IN_PROGRESS|UNKNOWN_MEMBER_ID|ILLEGAL_GENERATION|NOT_COORDINATOR(_FOR_GROUP)?|COORDINATOR_NOT_AVAILABLE)$/;

/**
 * Errors of a group that is rebalancing or has dropped this member: a rejoin follows, not a failure.
 * kafkajs wraps an error it does not retry (UNKNOWN_MEMBER_ID) in one of its own, so the causes count.
 */
function isRebalance(e: unknown): boolean {
  for (let c = e as { type?: string; cause?: unknown } | undefined, depth = 0; c && depth < 5; depth++) {
    if (typeof c.type === "string" && REBALANCE_ERRORS.test(c.type)) return true;
    c = c.cause as typeof c;
  }
  return false;
}

class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => {});
    return next;
  }
}

export class StreamWorker implements WorkerView {
  readonly appId: string;
  readonly topology: CompiledTopology;
  readonly log: Logger;
  readonly metrics: WorkerMetrics;
  private readonly client: KafkaClient;
  private admin!: KafkaAdmin;
  private shared!: PlainProducer;
  private consumer!: ReturnType<KafkaClient["consumer"]>;
  private readonly live = new Map<string, LiveTask>();
  private readonly partitionCounts = new Map<string, number>();
  private taskCounts = new Map<number, number>();
  private readonly lock = new Mutex();
  private sharedOut: OutRecord[] = [];
  private sharedSends: Array<Promise<void>> = [];
  private sharedError: unknown = null;
  private readonly sinks = new Set<Sink>();
  private readonly lagByPartition = new Map<string, { topic: string; partition: number; lag: number }>();
  private lastCheckpoint = Date.now();
  /** The consumer's heartbeat as the last batch handed it over; it works between batches too. */
  private heartbeat: (() => Promise<void>) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private server: Server | null = null;
  private started = false;
  private stopping = false;
  private fatalError: Error | null = null;
  private readonly sendBatch: number;
  private readonly sinkNames = new Map<Sink, string>();
  private readonly outCounts = new Map<string, number>();
  /** Resolves when the worker stops, with the fatal error if any. */
  readonly done: Promise<Error | null>;
  private resolveDone!: (e: Error | null) => void;
  metricsPort: number | null = null;

  constructor(
    readonly app: StreamApp,
    private readonly options: WorkerOptions,
  ) {
    this.appId = app.appId;
    this.topology = compile(app);
    this.log = options.logger ?? pino({ name: `weir-${app.appId}` });
    this.client = new KafkaClient({
      brokers: options.brokers,
      clientId: `${app.appId}-${options.instanceId ?? process.pid}`,
      logger: this.log,
    });
    this.metrics = new WorkerMetrics(this);
    this.sendBatch = options.sendBatch ?? 2000;
    this.done = new Promise((r) => {
      this.resolveDone = r;
    });
  }

  // --- lifecycle ---------------------------------------------------------------------------------

  async start(): Promise<void> {
    this.admin = this.client.admin();
    await this.prepareTopics();
    this.shared = await this.client.producer();
    if (this.options.metricsPort !== undefined && this.options.metricsPort !== null) {
      const sinks = new Set<Sink>();
      for (const node of this.app.graph.nodes) if (node.kind === "toSink") sinks.add(node.sink);
      for (const sink of sinks) sink.registerMetrics?.(this.metrics.registry);
      const s = await serveObservability(this.metrics, this, this.options.metricsPort);
      this.server = s.server;
      this.metricsPort = s.port;
    }
    this.consumer = this.client.consumer({
      groupId: this.appId,
      assigner: [taskAssigner(this.topology, this.taskCounts, () => [...this.live.keys()])],
      ...(this.options.sessionTimeout ? { sessionTimeout: this.options.sessionTimeout } : {}),
    });
    const c = this.consumer;
    c.on(c.events.GROUP_JOIN, (e) => {
      void this.lock.run(() => this.onAssignment(e.payload.memberAssignment)).catch((err) => this.die(err));
    });
    c.on(c.events.END_BATCH_PROCESS, (e) => this.onBatchEnd(e.payload));
    c.on(c.events.CRASH, (e) => {
      if (!e.payload.restart) this.die(e.payload.error);
    });
    await c.connect();
    await c.subscribe({ topics: this.topology.inputTopics, fromBeginning: true });
    await c.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: (payload) => this.lock.run(() => this.onBatch(payload)),
    });
    this.timer = setInterval(() => {
      void this.lock.run(() => this.onTick()).catch((err) => this.die(err));
    }, 100);
    this.started = true;
    this.log.info(
      { topics: this.topology.inputTopics, tasks: Object.fromEntries(this.taskCounts) },
      `worker of ${this.appId} started`,
    );
  }

  /** Graceful: a last checkpoint, then leave the group. */
  async stop(): Promise<void> {
    if (this.stopping) return this.done.then(() => {});
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    try {
      if (this.started && !this.fatalError) await this.lock.run(() => this.checkpoint());
    } catch (e) {
      this.log.warn({ err: e }, "last checkpoint failed; the next owner replays from the previous one");
    }
    await this.consumer?.disconnect().catch(() => {});
    for (const lt of this.live.values()) await this.closeTask(lt);
    this.live.clear();
    await this.shared?.close().catch(() => {});
    for (const s of this.sinks) await s.close().catch(() => {});
    await this.admin?.close().catch(() => {});
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.log.info(`worker of ${this.appId} stopped`);
    this.resolveDone(this.fatalError);
  }

  private die(err: unknown): void {
    if (this.fatalError || this.stopping) return;
    this.fatalError = err instanceof Error ? err : new Error(String(err));
    this.log.error({ err: this.fatalError }, "worker failed");
    void this.stop();
  }

  // --- topics --------------------------------------------------------------------------------------

  private async prepareTopics(): Promise<void> {
    const t = this.topology;
    const external = [...new Set(t.subtopologies.flatMap((s) => s.externalTopics))];
    const outputs = [...new Set(t.subtopologies.flatMap((s) => s.outputTopics))];
    const counts = await this.admin.partitionCounts([...external, ...outputs, this.app.dlqTopic]);
    const missing = [...external, ...outputs].filter((x) => !counts.has(x));
    if (missing.length > 0) {
      throw new Error(
        `${this.appId}: topics ${missing.join(", ")} do not exist; create them (weir topics apply for catalog topics)`,
      );
    }
    const plan = planPartitions(t, counts);
    this.taskCounts = plan.tasks;
    const existingInternal = await this.admin.partitionCounts([...plan.internal.keys()]);
    const create = [];
    for (const [topic, n] of plan.internal) {
      const have = existingInternal.get(topic);
      if (have === undefined) {
        const changelog = t.internalTopics.changelog.includes(topic);
        create.push({
          topic,
          partitions: n,
          config: changelog
            ? { "cleanup.policy": "compact", "min.compaction.lag.ms": "0", "segment.ms": "3600000" }
            : { "cleanup.policy": "delete", "retention.ms": String(24 * 3600_000) },
        });
      } else if (have !== n) {
        throw new Error(
          `${this.appId}: internal topic ${topic} has ${have} partitions but the topology needs ${n}; the input topics changed: reset the app (delete its internal topics and group)`,
        );
      }
    }
    if (!counts.has(this.app.dlqTopic)) {
      create.push({ topic: this.app.dlqTopic, partitions: 1, config: { "retention.ms": String(7 * 86_400_000) } });
    }
    await this.admin.createTopics(create);
    for (const [k, v] of counts) this.partitionCounts.set(k, v);
    for (const [k, v] of plan.internal) this.partitionCounts.set(k, v);
    if (!this.partitionCounts.has(this.app.dlqTopic)) this.partitionCounts.set(this.app.dlqTopic, 1);
  }

  // --- assignment and restore ----------------------------------------------------------------------

  private async onAssignment(assignment: Record<string, number[]>): Promise<void> {
    const wanted = new Set<string>();
    for (const [topic, partitions] of Object.entries(assignment)) {
      const role = this.topology.topicRoles.get(topic);
      if (role) for (const p of partitions) wanted.add(taskKey({ sub: role.sub, partition: p }));
    }
    for (const [id, lt] of this.live) {
      if (!wanted.has(id)) {
        this.live.delete(id);
        await this.closeTask(lt);
        this.log.info({ task: id }, "task revoked");
      }
    }
    for (const id of wanted) {
      const existing = this.live.get(id);
      if (existing) {
        // A rejoin resets fetch positions to the committed offsets: continue from where the task is.
        this.resumePositions(existing);
        continue;
      }
      const [sub, partition] = id.split("_").map(Number) as [number, number];
      await this.openTask(this.topology.subtopologies[sub] as SubTopology, partition);
    }
    this.log.info({ tasks: [...this.live.keys()] }, "assignment");
  }

  private transactional(sub: SubTopology): boolean {
    return (
      this.app.guarantee === "exactly-once" ||
      sub.stores.some((s) => s.changelog !== null) ||
      sub.repartitions.length > 0
    );
  }

  private async openTask(sub: SubTopology, partition: number): Promise<void> {
    const id = taskKey({ sub: sub.id, partition });
    const lt: LiveTask = {
      task: undefined as unknown as Task,
      sub,
      state: "restoring",
      producer: null,
      out: [],
      sends: [],
      sendError: null,
      dirty: false,
      restoreTargets: new Map(),
      restoreApplied: new Map(),
      restoreStarted: Date.now(),
      lastAnnounce: 0,
      committedAt: Date.now(),
      closed: false,
    };
    lt.task = new Task(
      this.topology,
      sub,
      partition,
      this.taskIO(lt),
      (up) => this.taskCounts.get(up) ?? 1,
      this.app.onError,
    );
    this.consumer.pause(sub.sources.map((s) => ({ topic: s.topic, partitions: [partition] })));
    this.live.set(id, lt);
    // Fence first: an older owner's open transaction is aborted before we read the changelog's end.
    if (this.transactional(sub)) lt.producer = await this.client.transactionalProducer(`${this.appId}-${id}`);
    const restoreTopics = [
      ...sub.stores.flatMap((s) => (s.changelog ? [s.changelog] : [])),
      ...sub.tables.map((t) => t.topic),
    ];
    // Pauses outlive assignments in kafkajs: a changelog paused when we last owned the task must fetch again.
    if (restoreTopics.length > 0)
      this.consumer.resume(restoreTopics.map((topic) => ({ topic, partitions: [partition] })));
    for (const topic of restoreTopics) {
      const off = (await this.admin.offsets(topic)).get(partition);
      if (!off || BigInt(off.high) <= BigInt(off.low)) continue;
      lt.restoreTargets.set(topic, BigInt(off.high));
      lt.restoreApplied.set(topic, BigInt(off.low));
      this.consumer.seek({ topic, partition, offset: off.low });
    }
    if (lt.restoreTargets.size === 0) await this.finishRestore(lt);
    else this.log.info({ task: id, changelogs: Object.fromEntries(lt.restoreTargets) }, "restoring");
  }

  private onBatchEnd(p: {
    topic: string;
    partition: number;
    firstOffset: string;
    lastOffset: string;
    offsetLag: string;
    batchSize: number;
  }): void {
    this.lagByPartition.set(`${p.topic}#${p.partition}`, {
      topic: p.topic,
      partition: p.partition,
      lag: Number(p.offsetLag),
    });
    // Batches with records are accounted for in onBatch, where they are applied. A batch of only
    // transaction markers never reaches onBatch; it moves the restore on. (Offsets may jump:
    // compaction leaves gaps.)
    const role = this.topology.topicRoles.get(p.topic);
    if (p.batchSize !== 0) return;
    if (!role || role.role === "source") return;
    const lt = this.live.get(taskKey({ sub: role.sub, partition: p.partition }));
    if (lt?.state !== "restoring") return;
    const applied = lt.restoreApplied.get(p.topic);
    if (applied === undefined) return;
    const next = BigInt(p.lastOffset) + 1n;
    if (next > applied) lt.restoreApplied.set(p.topic, next);
    void this.lock.run(() => this.restoreProgress(lt, p.topic)).catch((err) => this.die(err));
  }

  /** Whether a changelog or table topic of a restoring task is read to its target. */
  private async restoreProgress(lt: LiveTask, topic: string): Promise<void> {
    const target = lt.restoreTargets.get(topic);
    const applied = lt.restoreApplied.get(topic);
    if (target === undefined || applied === undefined || applied < target) return;
    lt.restoreTargets.delete(topic);
    if (lt.restoreTargets.size === 0) await this.finishRestore(lt);
  }

  private async finishRestore(lt: LiveTask): Promise<void> {
    if (lt.closed || lt.state === "running") return;
    const { task, sub } = lt;
    task.restored();
    const topics = sub.sources.map((s) => s.topic);
    const committed = await this.admin.committed(this.appId, topics);
    const from: Record<string, string> = {};
    for (const topic of topics) {
      let offset = committed.get(`${topic}#${task.partition}`) ?? "-1";
      if (offset === "-1") offset = (await this.admin.offsets(topic)).get(task.partition)?.low ?? "0";
      from[topic] = offset;
      this.consumer.seek({ topic, partition: task.partition, offset });
      const input = task.inputs.get(topic);
      // Anything kafkajs already fetched from elsewhere is skipped: the task starts exactly here.
      if (input) input.next = offset;
    }
    const changelogs = sub.stores.flatMap((s) => (s.changelog ? [s.changelog] : []));
    if (changelogs.length > 0)
      this.consumer.pause(changelogs.map((topic) => ({ topic, partitions: [task.partition] })));
    this.consumer.resume(topics.map((topic) => ({ topic, partitions: [task.partition] })));
    lt.state = "running";
    const seconds = (Date.now() - lt.restoreStarted) / 1000;
    this.metrics.restoreSeconds.observe(seconds);
    this.log.info(
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

  private resumePositions(lt: LiveTask): void {
    if (lt.state !== "running") return;
    for (const input of lt.task.inputs.values()) {
      if (input.role === "source" && input.next !== null) {
        this.consumer.seek({ topic: input.topic, partition: lt.task.partition, offset: input.next });
      }
    }
    const changelogs = lt.sub.stores.flatMap((s) => (s.changelog ? [s.changelog] : []));
    if (changelogs.length > 0)
      this.consumer.pause(changelogs.map((topic) => ({ topic, partitions: [lt.task.partition] })));
  }

  private async closeTask(lt: LiveTask): Promise<void> {
    lt.closed = true;
    await Promise.allSettled(lt.sends);
    await lt.producer?.close().catch(() => {});
  }

  // --- processing ----------------------------------------------------------------------------------

  private taskIO(lt: LiveTask): TaskIO {
    return {
      now: () => Date.now(),
      // Under the broker's default message.timestamp.after.max.ms (1 h), leaving room for windows ending later.
      maxEventTimeAhead: 45 * 60_000,
      partitionsOf: (topic) => this.partitionCounts.get(topic) ?? 1,
      send: (topic, partition, key, value, ts, headers) => {
        const rec: OutRecord = { topic, partition, key, value, ts, ...(headers ? { headers } : {}) };
        if (lt.producer) {
          lt.out.push(rec);
          lt.dirty = true;
          if (lt.out.length >= this.sendBatch) this.flushTaskOut(lt);
        } else {
          this.sharedOut.push(rec);
          if (this.sharedOut.length >= this.sendBatch) this.flushSharedOut();
        }
        this.outCounts.set(topic, (this.outCounts.get(topic) ?? 0) + 1);
      },
      sink: (sink, rec) => {
        if (!this.sinks.has(sink)) {
          this.sinks.add(sink);
          this.sinkNames.set(sink, `sink:${sink.name}`);
        }
        sink.write(rec);
        const target = this.sinkNames.get(sink) as string;
        this.outCounts.set(target, (this.outCounts.get(target) ?? 0) + 1);
      },
      deadLetter: (d) => {
        const { key, value } = encodeDeadLetter(this.appId, d, Date.now());
        this.sharedOut.push({ topic: this.app.dlqTopic, partition: null, key, value, ts: Date.now() });
      },
    };
  }

  private flushTaskOut(lt: LiveTask): void {
    if (lt.out.length === 0 || !lt.producer) return;
    const batch = lt.out;
    lt.out = [];
    const p = lt.producer.send(batch).catch((e) => {
      lt.sendError ??= e;
    });
    lt.sends.push(p);
  }

  private flushSharedOut(): void {
    if (this.sharedOut.length === 0) return;
    const batch = this.sharedOut;
    this.sharedOut = [];
    this.sharedSends.push(
      this.shared.send(batch).catch((e) => {
        this.sharedError ??= e;
      }),
    );
  }

  private async onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    this.heartbeat = heartbeat;
    if (this.stopping || this.fatalError) return;
    const role = this.topology.topicRoles.get(batch.topic);
    if (!role) return;
    const lt = this.live.get(taskKey({ sub: role.sub, partition: batch.partition }));
    if (!lt || lt.closed) return;
    const restoringInput = role.role !== "source";
    if (lt.state === "restoring" && !restoringInput) return; // paused; seeked when restored
    if (lt.state === "running" && role.role === "changelog") return;
    const input = lt.task.inputs.get(batch.topic);
    if (!input) return;
    const restoring = lt.state === "restoring" ? lt.restoreApplied.get(batch.topic) : undefined;
    // Until the restore has seeked, a fetch is not ours to apply (it is fetched again from the seek).
    if (lt.state === "restoring" && restoring === undefined) return;
    const position = input.next === null ? null : BigInt(input.next);
    let redelivered = 0;
    let complete = true;
    try {
      for (const m of batch.messages) {
        if (!isRunning() || isStale()) {
          complete = false;
          break;
        }
        // After a rejoin kafkajs fetches from the committed offset again; the task is further on.
        if (position !== null && BigInt(m.offset) < position) {
          redelivered++;
          resolveOffset(m.offset);
          continue;
        }
        input.handle({
          key: m.key,
          value: m.value,
          timestamp: Number(m.timestamp),
          offset: m.offset,
          ...(m.headers ? { headers: m.headers as Record<string, unknown> } : {}),
        });
        resolveOffset(m.offset);
      }
    } catch (e) {
      if (e instanceof RecordFailure) {
        this.die(e);
        return;
      }
      throw e;
    }
    if (lt.state === "restoring" && restoring !== undefined) {
      // Only a batch applied to its end moves the restore on (a stale one stops half-way).
      if (!complete) return;
      const next = BigInt(batch.lastOffset()) + 1n;
      if (next > restoring) lt.restoreApplied.set(batch.topic, next);
      await this.restoreProgress(lt, batch.topic);
      return;
    }
    if (redelivered > 0) {
      this.log.debug({ task: lt.task.id, topic: batch.topic, redelivered }, "skipped records the task had processed");
    }
    if (role.role === "source") {
      lt.dirty = true;
      const caughtUp = batch.offsetLag() === "0";
      lt.task.tracker.setCaughtUp(`${batch.topic}#${batch.partition}`, caughtUp);
      this.announce(lt);
      this.flushTaskOut(lt);
      this.flushSharedOut();
      await this.relieve(heartbeat);
      if (Date.now() - this.lastCheckpoint >= this.app.commitInterval) await this.checkpoint();
    }
    await heartbeat();
  }

  private announce(lt: LiveTask): void {
    if (lt.sub.repartitions.length === 0) return;
    const now = Date.now();
    if (now - lt.lastAnnounce < 100) return;
    lt.lastAnnounce = now;
    lt.task.announceWatermark();
  }

  private async onTick(): Promise<void> {
    if (this.stopping || this.fatalError) return;
    for (const lt of this.live.values()) {
      if (lt.state !== "running") continue;
      lt.task.tick();
      this.announce(lt);
    }
    if (Date.now() - this.lastCheckpoint >= this.app.commitInterval) await this.checkpoint();
  }

  /** Backpressure: a sink above its high-water mark pauses every source until it drains. */
  private async relieve(heartbeat: () => Promise<void>): Promise<void> {
    const slow = [...this.sinks].filter((s) => s.pending() > s.highWater);
    const tooManySends = this.sharedSends.length > 16 || [...this.live.values()].some((lt) => lt.sends.length > 16);
    if (slow.length === 0 && !tooManySends) return;
    const paused = [...this.live.values()]
      .filter((lt) => lt.state === "running")
      .flatMap((lt) => lt.sub.sources.map((s) => ({ topic: s.topic, partitions: [lt.task.partition] })));
    this.consumer.pause(paused);
    try {
      for (const sink of slow) {
        while (sink.pending() > sink.highWater / 2) {
          await Promise.race([sink.flush(), new Promise((r) => setTimeout(r, 1000))]);
          await heartbeat();
        }
      }
      await Promise.all(this.sharedSends.splice(0, this.sharedSends.length));
      for (const lt of this.live.values()) await Promise.all(lt.sends.splice(0, lt.sends.length));
    } finally {
      this.consumer.resume(
        paused.filter((p) => this.live.get(`${this.topology.topicRoles.get(p.topic)?.sub}_${p.partitions[0]}`)),
      );
    }
  }

  // --- checkpoint ----------------------------------------------------------------------------------

  /** Flush sinks -> flush changelogs (with outputs and offsets, in each task's transaction) -> commit. */
  private async checkpoint(): Promise<void> {
    const started = Date.now();
    this.lastCheckpoint = started;
    const running = [...this.live.values()].filter((lt) => lt.state === "running" && !lt.closed);
    const snaps = running.map((lt) => ({ lt, snap: lt.task.snapshot() }));
    // 1. external sinks
    await this.flushSinks();
    for (const sink of this.sinks) {
      for (const r of sink.takeRejected?.() ?? []) this.sinkDeadLetter(sink, r.reason, r.message, r.rec.value);
    }
    // 2. outputs outside transactions, and dead letters
    this.flushSharedOut();
    await Promise.all(this.sharedSends.splice(0, this.sharedSends.length));
    if (this.sharedError) {
      const e = this.sharedError;
      this.sharedError = null;
      throw e;
    }
    // 3. per task: outputs, changelog, offsets in one transaction; or a plain offset commit
    const plain: Array<{ topic: string; partition: number; offset: string }> = [];
    await Promise.all(
      snaps.map(async ({ lt, snap }) => {
        const partition = lt.task.partition;
        const offsets = snap.offsets.map((o) => ({ topic: o.topic, partition, offset: o.offset }));
        if (!lt.producer) {
          plain.push(...offsets);
          return;
        }
        if (!lt.dirty && snap.changelog.length === 0) {
          lt.committedAt = Date.now(); // nothing sent since the last commit: no transaction is open
          return;
        }
        this.flushTaskOut(lt);
        await Promise.all(lt.sends.splice(0, lt.sends.length));
        try {
          if (lt.sendError) throw lt.sendError;
          await lt.producer.send(
            snap.changelog.map((c) => ({ topic: c.topic, partition, key: c.key, value: c.value, ts: Date.now() })),
          );
          await lt.producer.commit(this.appId, offsets);
          this.log.debug({ task: lt.task.id, offsets, changelog: snap.changelog.length }, "committed");
          lt.dirty = false;
          lt.committedAt = Date.now();
        } catch (e) {
          await this.taskLost(lt, e, Date.now() - lt.committedAt >= TASK_TRANSACTION_TIMEOUT_MS);
        }
      }),
    );
    if (plain.length > 0) {
      try {
        await this.consumer.commitOffsets(plain);
      } catch (e) {
        if (!isRebalance(e)) throw e;
        // The group moved on while the sinks were flushed (a long store outage, a member joining):
        // these offsets are committed by the next checkpoint, or the tasks' next owners replay them
        // into idempotent sinks. Either way nothing is lost, and the member rejoins on its own.
        this.log.warn(
          { err: (e as Error).message, waitedMs: Date.now() - started },
          "offset commit refused by a rebalancing group; the next checkpoint commits them",
        );
      }
    }
    this.metrics.commitSeconds.observe((Date.now() - started) / 1000);
  }

  /**
   * Every sink's flush at once. A store that is down holds the checkpoint as long as it is down
   * (the sources are not read meanwhile: this runs under the worker's lock); the member keeps
   * heartbeating so the group does not drop it after sessionTimeout, and the log names the sinks
   * still waited for every SINK_WAIT_LOG_MS.
   */
  private async flushSinks(): Promise<void> {
    if (this.sinks.size === 0) return;
    const started = Date.now();
    const waiting = new Set(this.sinks);
    let settled = false;
    const all = Promise.all(
      [...this.sinks].map((sink) =>
        sink.flush().then(() => {
          waiting.delete(sink);
        }),
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
      await this.keepMembership();
      if (Date.now() - logged >= SINK_WAIT_LOG_MS) {
        logged = Date.now();
        this.log.warn(
          { sinks: [...waiting].map((s) => s.name), waitedMs: logged - started },
          "checkpoint waiting for sinks to acknowledge; sources stay paused until they do",
        );
      }
    }
    await all;
    if (Date.now() - started >= SINK_WAIT_LOG_MS) {
      this.log.info({ waitedMs: Date.now() - started }, "sinks acknowledged; checkpoint goes on");
    }
  }

  /** A heartbeat outside a batch's own processing (kafkajs's throttles it to heartbeatInterval). */
  private async keepMembership(): Promise<void> {
    try {
      await this.heartbeat?.();
    } catch (e) {
      // A rebalance under way: the runner rejoins once this batch returns; the commit copes.
      this.log.debug({ err: (e as Error).message }, "heartbeat refused");
    }
  }

  /**
   * A record a sink refused for good. It has no input offset by now, so its id is the sink's name
   * and a digest of the record: the same record refused again on a replay has the same id.
   */
  private sinkDeadLetter(sink: Sink, reason: string, message: string, value: unknown): void {
    const raw = Buffer.from(JSON.stringify(value) ?? "null");
    const digest = createHash("sha256").update(raw).digest("hex").slice(0, 32);
    const { key, value: enc } = encodeDeadLetter(
      this.appId,
      { reason, message, topic: null, partition: null, offset: null, raw, id: `sink:${sink.name}/${digest}/${reason}` },
      Date.now(),
    );
    this.sharedOut.push({ topic: this.app.dlqTopic, partition: null, key, value: enc, ts: Date.now() });
  }

  /**
   * A transaction failed: fenced (another member owns the task now), or the broker gave up, or the
   * transaction outlived its timeout while the sinks were flushed (the broker aborted it and bumped
   * the epoch, which also reads as fenced, but the task is still ours).
   */
  private async taskLost(lt: LiveTask, e: unknown, timedOut: boolean): Promise<void> {
    const name = (e as { name?: string; type?: string })?.type ?? (e as Error)?.name;
    const id = lt.task.id;
    this.log.warn(
      { task: id, err: e },
      timedOut
        ? `checkpoint of task ${id} failed (${name}) more than the transaction timeout (${TASK_TRANSACTION_TIMEOUT_MS / 1000} s) after its last commit: the broker aborted it; starting over from that commit`
        : `checkpoint of task ${id} failed (${name}); dropping it, its next owner replays`,
    );
    this.live.delete(id);
    await this.closeTask(lt);
    const moved = !timedOut && /FENCED|INVALID_PRODUCER_EPOCH|ProducerFenced/i.test(String(name));
    if (!moved && !this.stopping) {
      // Not a move: rejoin so the group hands the task out again, starting from the last commit.
      this.die(e);
    }
  }

  // --- WorkerView ----------------------------------------------------------------------------------

  tasks() {
    return [...this.live.values()].map((lt) => ({
      id: lt.task.id,
      state: lt.state,
      watermark: lt.task.watermark,
      recordsIn: lt.task.counters.recordsIn,
      late: lt.task.counters.late,
      dlq: lt.task.counters.dlq,
      openWindows: lt.task.openWindows(),
      stores: [...lt.task.stores.values()].map((s) => ({ name: s.name, size: s.size, evictions: s.evictions })),
    }));
  }

  lag() {
    return [...this.lagByPartition.values()];
  }

  recordsOut() {
    return this.outCounts;
  }

  healthy() {
    const restoring = [...this.live.values()].filter((lt) => lt.state === "restoring").map((lt) => lt.task.id);
    const ok = this.started && !this.fatalError && !this.stopping && restoring.length === 0;
    return {
      ok,
      detail: {
        app: this.appId,
        tasks: [...this.live.keys()],
        restoring,
        ...(this.fatalError ? { error: this.fatalError.message } : {}),
      },
    };
  }
}
