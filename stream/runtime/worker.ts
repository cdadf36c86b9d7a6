// Runs a topology against Kafka as one member of the consumer group `appId`. Several workers (in
// one or many processes and machines) share the tasks; the group assigns whole tasks (see
// kafka/assigner.ts). The worker opens the tasks it is given (restoring their state first:
// changelog-reader.ts), hands them the records it fetches, and checkpoints every commitInterval
// (checkpoint.ts: flush sinks -> changelogs, outputs and offsets -> commit). A task that holds state
// or writes a repartition topic checkpoints through a Kafka transaction of its own (transactional
// id = app + task), so its changelog records and its source offsets commit together, and a crash
// after the sinks flushed but before the commit replays input against state that does not include
// it: no count doubles. Kafka comes in through `StreamKafkaClient`, so all of this runs on fakes too.
import type { Server } from "node:http";
import pino, { type Logger } from "pino";
import type { StreamApp } from "../dsl/app.ts";
import { type CompiledTopology, compile } from "../dsl/compile.ts";
import type { BatchEnd, FetchedBatch, GroupConsumer, StreamAdmin, StreamKafkaClient } from "../kafka/stream-client.ts";
import type { Sink } from "../sink.ts";
import { AssignedTasks } from "./assigned-tasks.ts";
import { relieveBackpressure } from "./backpressure.ts";
import { ChangelogReader } from "./changelog-reader.ts";
import { Checkpoint } from "./checkpoint.ts";
import { prepareInternalTopics } from "./internal-topics.ts";
import { KafkaWait, WorkerStoppedError } from "./kafka-wait.ts";
import { Mutex } from "./mutex.ts";
import { serveObservability, taskView, WorkerMetrics, type WorkerView } from "./observability.ts";
import type { OwnedTask } from "./owned-task.ts";
import { DEFAULT_PURGE_INTERVAL_MS, RepartitionPurge } from "./repartition-purge.ts";
import { RecordFailure } from "./task.ts";
import { TaskOutputs } from "./task-outputs.ts";

export interface WorkerOptions {
  /** The Kafka the worker talks to: `KafkajsStreamClient` (stream/kafka/client.ts), or a fake in tests. */
  kafka: StreamKafkaClient;
  logger?: Logger;
  /** Port for /metrics and /health; 0 picks one; null serves nothing. Default null. */
  metricsPort?: number | null;
  sessionTimeout?: number;
  /** Records buffered per task before they are sent. */
  sendBatch?: number;
  /**
   * Runs after every checkpoint has committed, under the worker's lock: no record is being processed,
   * and the next one read is processed after it (a topology switching what its operators do, such as
   * the fraud pipeline's rule snapshots, does it here, at once for every task of the worker).
   */
  onCheckpoint?: () => void;
  /**
   * How often, at most, the records of repartition topics the worker's checkpoints have committed
   * are deleted (they are kept without a retention until then). Default 30 s; 0: never.
   */
  purgeInterval?: number;
  /** More to show on /health (merged into its detail). */
  health?: () => Record<string, unknown>;
  /**
   * While Kafka does not answer at start, the worker tries again after `initialMs`, doubling up to
   * `maxMs` (with jitter). Default 500 ms to 30 s.
   */
  connectBackoff?: { initialMs: number; maxMs: number };
}

export { WorkerStoppedError };

export class StreamWorker implements WorkerView {
  readonly appId: string;
  readonly topology: CompiledTopology;
  readonly log: Logger;
  readonly metrics: WorkerMetrics;
  private readonly kafka: StreamKafkaClient;
  private admin: StreamAdmin | undefined;
  private consumer!: GroupConsumer;
  private outputs!: TaskOutputs;
  private assigned!: AssignedTasks;
  private restorer!: ChangelogReader;
  private checkpointer!: Checkpoint<OwnedTask>;
  private purger: RepartitionPurge | null = null;
  private readonly lock = new Mutex();
  private readonly lagByPartition = new Map<string, { topic: string; partition: number; lag: number }>();
  private lastCheckpoint = Date.now();
  /** The consumer's heartbeat as the last batch handed it over; it works between batches too. */
  private heartbeat: (() => Promise<void>) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private server: Server | null = null;
  private started = false;
  private stopping = false;
  private fatalError: Error | null = null;
  private readonly kafkaWait: KafkaWait;
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
    this.kafka = options.kafka;
    this.kafkaWait = new KafkaWait(app.appId, this.log, options.connectBackoff);
    this.metrics = new WorkerMetrics(this);
    this.done = new Promise((r) => {
      this.resolveDone = r;
    });
  }

  // --- lifecycle ---------------------------------------------------------------------------------

  /**
   * Joins the group and starts processing. /metrics and /health are served first, so a worker
   * waiting for Kafka says so there. Kafka not answering is waited out with backoff (logged at each
   * attempt, 503 on /health); any other failure rejects. Rejects with WorkerStoppedError when stop()
   * is called meanwhile.
   */
  async start(): Promise<void> {
    const { app, appId, topology, log, metrics } = this;
    if (this.options.metricsPort !== undefined && this.options.metricsPort !== null) {
      const sinks = new Set<Sink>();
      for (const node of app.graph.nodes) if (node.kind === "toSink") sinks.add(node.sink);
      for (const sink of sinks) sink.registerMetrics?.(metrics.registry);
      const s = await serveObservability(metrics, this, this.options.metricsPort);
      this.server = s.server;
      this.metricsPort = s.port;
      log.info({ metricsPort: s.port }, `serving /metrics and /health on 127.0.0.1:${s.port}`);
    }
    // A fresh admin for each attempt: one whose first connection failed half-way may not recover.
    const { partitionCounts, taskCounts } = await this.kafkaWait.until(async () => {
      await this.admin?.close().catch(() => {});
      this.admin = this.kafka.admin();
      return prepareInternalTopics(this.admin, topology, log);
    });
    const admin = this.admin as StreamAdmin;
    const sendBatch = this.options.sendBatch ?? 2000;
    const producer = await this.kafkaWait.until(() => this.kafka.producer());
    const outputs = new TaskOutputs(appId, app.dlqTopic, partitionCounts, sendBatch, producer);
    const consumer = this.kafka.consumer({
      groupId: appId,
      tasks: { topology, taskCounts, owned: () => this.assigned.ids() },
      ...(this.options.sessionTimeout ? { sessionTimeout: this.options.sessionTimeout } : {}),
      onAssignment: (assignment) => {
        this.assigned.received(assignment);
        void this.lock.run(() => this.assigned.assign(assignment)).catch((err) => this.die(err));
      },
      onBatchEnd: (end) => this.onBatchEnd(end),
      onCrash: (error, restart) => {
        if (!restart) this.die(error);
      },
    });
    const restorer = new ChangelogReader({ appId, consumer, admin, log, restoreSeconds: metrics.restoreSeconds });
    this.outputs = outputs;
    this.consumer = consumer;
    this.restorer = restorer;
    this.assigned = new AssignedTasks({
      app,
      topology,
      kafka: this.kafka,
      consumer,
      restorer,
      log,
      taskCounts,
      sendBatch,
      ioFor: (t) => outputs.ioFor(t),
      fail: (e) => this.die(e),
    });
    this.checkpointer = new Checkpoint<OwnedTask>({
      appId,
      dlqTopic: app.dlqTopic,
      log,
      sinks: outputs.sinks,
      shared: outputs.shared,
      consumer,
      keepMembership: () => this.keepMembership(),
      taskFailed: (t, e, timedOut) => this.assigned.lost(t, e, timedOut),
      commitSeconds: metrics.commitSeconds,
    });
    this.purger = new RepartitionPurge({
      admin,
      repartitionTopics: new Set(topology.internalTopics.repartition),
      intervalMs: this.options.purgeInterval ?? DEFAULT_PURGE_INTERVAL_MS,
      log,
      purges: metrics.repartitionPurges,
    });
    await this.kafkaWait.until(() => consumer.connect());
    await consumer.subscribe(topology.inputTopics);
    await consumer.run((fetched) => this.lock.run(() => this.onBatch(fetched)));
    this.timer = setInterval(() => {
      void this.lock.run(() => this.onTick()).catch((err) => this.die(err));
    }, 100);
    this.started = true;
    log.info({ topics: topology.inputTopics, tasks: Object.fromEntries(taskCounts) }, `worker of ${appId} started`);
  }

  /** True once stop() has been called (a SIGTERM while start() still waited for Kafka, say). */
  get stopRequested(): boolean {
    return this.stopping;
  }

  /** Graceful: a last checkpoint, then leave the group. */
  async stop(): Promise<void> {
    if (this.stopping) return this.done.then(() => {});
    this.stopping = true;
    this.kafkaWait.stop();
    if (this.timer) clearInterval(this.timer);
    try {
      if (this.started && !this.fatalError) await this.lock.run(() => this.checkpoint());
    } catch (e) {
      this.log.warn({ err: e }, "last checkpoint failed; the next owner replays from the previous one");
    }
    await this.consumer?.disconnect().catch(() => {});
    await this.assigned?.closeAll();
    await this.outputs?.sharedProducer.close().catch(() => {});
    for (const s of this.outputs?.sinks ?? []) await s.close().catch(() => {});
    await this.purger?.settled();
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

  // --- processing ----------------------------------------------------------------------------------

  private async onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: FetchedBatch): Promise<void> {
    this.heartbeat = heartbeat;
    if (this.stopping || this.fatalError) return;
    const role = this.topology.topicRoles.get(batch.topic)?.role;
    const t = this.assigned.reading(batch.topic, batch.partition);
    if (!t) return;
    if (t.state === "restoring" && role === "source") return; // paused; sought when restored
    if (t.state === "running" && role === "changelog") return;
    const input = t.task.inputs.get(batch.topic);
    if (!input) return;
    // Until the restore has sought, a fetch is not ours to apply (it is fetched again from the seek).
    if (t.state === "restoring" && this.restorer.applied(t, batch.topic) === undefined) return;
    const position = input.next === null ? null : BigInt(input.next);
    let redelivered = 0;
    let complete = true;
    try {
      for (const m of batch.messages) {
        if (!isRunning() || isStale()) {
          complete = false;
          break;
        }
        // After a rejoin the consumer fetches from the committed offset again; the task is further on.
        if (position !== null && BigInt(m.offset) < position) {
          redelivered++;
          resolveOffset(m.offset);
          continue;
        }
        const { key, value, offset, headers } = m;
        input.handle({ key, value, timestamp: Number(m.timestamp), offset, ...(headers ? { headers } : {}) });
        resolveOffset(m.offset);
      }
    } catch (e) {
      if (e instanceof RecordFailure) return this.die(e);
      throw e;
    }
    if (t.state === "restoring") {
      // Only a batch applied to its end moves the restore on (a stale one stops half-way).
      if (!complete) return;
      this.restorer.advance(t, batch.topic, batch.lastOffset());
      return this.restorer.progress(t, batch.topic);
    }
    if (redelivered > 0) {
      this.log.debug({ task: t.task.id, topic: batch.topic, redelivered }, "skipped records the task had processed");
    }
    if (role === "source") {
      t.dirty = true;
      t.task.tracker.setCaughtUp(`${batch.topic}#${batch.partition}`, batch.offsetLag() === "0");
      this.announce(t);
      t.output?.send();
      this.outputs.shared.send();
      await relieveBackpressure(this.outputs, this.assigned.all(), this.consumer, heartbeat, (topic, p) =>
        Boolean(this.assigned.reading(topic, p)),
      );
      if (Date.now() - this.lastCheckpoint >= this.app.commitInterval) await this.checkpoint();
    }
    await heartbeat();
  }

  private onBatchEnd(end: BatchEnd): void {
    const { topic, partition } = end;
    this.lagByPartition.set(`${topic}#${partition}`, { topic, partition, lag: Number(end.offsetLag) });
    // Batches with records are accounted for in onBatch, where they are applied. A batch of only
    // transaction markers never reaches onBatch; it moves the restore on.
    if (end.batchSize !== 0 || this.topology.topicRoles.get(topic)?.role === "source") return;
    const t = this.assigned.reading(topic, partition);
    if (!t || this.restorer.applied(t, topic) === undefined) return;
    this.restorer.advance(t, topic, end.lastOffset);
    void this.lock.run(() => this.restorer.progress(t, topic)).catch((err) => this.die(err));
  }

  private announce(t: OwnedTask): void {
    if (t.sub.repartitions.length === 0) return;
    const now = Date.now();
    if (now - t.lastAnnounce < 100) return;
    t.lastAnnounce = now;
    t.task.announceWatermark();
  }

  private async onTick(): Promise<void> {
    if (this.stopping || this.fatalError) return;
    for (const t of this.assigned.all()) {
      if (t.state !== "running") continue;
      t.task.tick();
      this.announce(t);
    }
    if (Date.now() - this.lastCheckpoint >= this.app.commitInterval) await this.checkpoint();
  }

  private async checkpoint(): Promise<void> {
    this.lastCheckpoint = Date.now();
    const committed = await this.checkpointer.commit(this.assigned.running());
    this.purger?.committed(committed);
    this.options.onCheckpoint?.();
  }

  /** A heartbeat outside a batch's own processing (the consumer throttles it to its heartbeat interval). */
  private async keepMembership(): Promise<void> {
    try {
      await this.heartbeat?.();
    } catch (e) {
      // A rebalance under way: the runner rejoins once this batch returns; the commit copes.
      this.log.debug({ err: (e as Error).message }, "heartbeat refused");
    }
  }

  // --- WorkerView ----------------------------------------------------------------------------------

  tasks() {
    return [...(this.assigned?.all() ?? [])].map(taskView);
  }

  lag() {
    return [...this.lagByPartition.values()];
  }

  kafkaState() {
    return { reachable: this.kafkaWait.reachable, connectRetries: this.kafkaWait.retries };
  }

  recordsOut() {
    return this.outputs?.counts ?? new Map<string, number>();
  }

  healthy() {
    const restoring = [...(this.assigned?.all() ?? [])].filter((t) => t.state === "restoring").map((t) => t.task.id);
    const ok = this.started && !this.fatalError && !this.stopping && restoring.length === 0;
    return {
      ok,
      detail: {
        app: this.appId,
        ...this.kafkaWait.healthDetail(this.kafka.brokers),
        tasks: this.assigned?.ids() ?? [],
        restoring,
        ...(this.fatalError ? { error: this.fatalError.message } : {}),
        ...this.options.health?.(),
      },
    };
  }
}
