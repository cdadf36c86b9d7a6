// Runs a topology without a broker, like Kafka Streams' TopologyTestDriver: pipe records in with
// timestamps, move the wall clock, read what reached topics, sinks and the DLQ. It drives the same
// Task code the Kafka worker runs; repartition topics are in-memory logs delivered in order, and
// checkpoint()/crash() replay the worker's recovery (restore from the changelog, reprocess from the
// committed offsets) so tests can prove that a crash changes no result.
import type { StreamApp } from "../dsl/app.ts";
import { type CompiledTopology, compile, planPartitions, type SubTopology } from "../dsl/compile.ts";
import type { SourceNode, TableNode } from "../dsl/graph.ts";
import { partitionFor } from "../kafka/partitioner.ts";
import { type DeadLetterInput, type InputMessage, Task, type TaskIO } from "../runtime/task.ts";
import type { Sink } from "../sink.ts";
import type { Rec } from "../types.ts";

export interface DriverOptions {
  /** Partitions of the external topics: one number for all, or per topic. Default 1. */
  partitions?: number | Record<string, number>;
  /** Wall clock at start, ms. Default 0. */
  wallClock?: number;
  /** As the worker: events this far ahead of the wall clock go to the DLQ. Default: no limit. */
  maxEventTimeAhead?: number;
  /**
   * Keep every record written (for output(), checkpoint() and crash()). Default true; false for long
   * replays (backtests, benchmarks), whose memory would otherwise grow with every record.
   */
  retain?: boolean;
  /**
   * Tasks announce their watermark downstream after every this many piped records (default 1). The
   * worker announces at most every 100 ms; a replay through the driver gets closer to its cost with a
   * few hundred.
   */
  announceEvery?: number;
}

export interface TopicRecord {
  partition: number;
  offset: number;
  key: string | null;
  value: Buffer | null;
  ts: number;
  headers?: Record<string, string>;
}

export interface PipeOptions {
  key?: string | null;
  ts?: number;
  partition?: number;
  /** Kafka headers, e.g. weir-source (the record's source, for per-source watermarks). */
  headers?: Record<string, string>;
  /**
   * In the topic but not fetched yet (a slow fetch, a backlog a new owner has not read): delivered
   * by deliverHeld(). Until then its partition is not caught up.
   */
  hold?: boolean;
}

export class TopologyTestDriver {
  readonly topology: CompiledTopology;
  private readonly topicLogs = new Map<string, TopicRecord[][]>();
  private readonly partitionCounts = new Map<string, number>();
  private readonly taskCounts: Map<number, number>;
  private tasks = new Map<string, Task>();
  private readonly queue: Array<{ topic: string; rec: TopicRecord }> = [];
  private readonly committed = new Map<string, number>();
  /** Records in their topic that have not been fetched yet (PipeOptions.hold). */
  private readonly held = new Set<TopicRecord>();
  private delivering = false;
  private wall: number;
  private readonly maxAhead: number | undefined;
  private readonly retain: boolean;
  private readonly announceEvery: number;
  private piped = 0;
  /** Offsets of the partitions of topics not retained. */
  private readonly ends = new Map<string, number[]>();
  readonly deadLetters: DeadLetterInput[] = [];

  constructor(
    readonly app: StreamApp,
    options: DriverOptions = {},
  ) {
    this.topology = compile(app);
    this.wall = options.wallClock ?? 0;
    this.maxAhead = options.maxEventTimeAhead;
    this.retain = options.retain ?? true;
    this.announceEvery = Math.max(1, options.announceEvery ?? 1);
    const external = new Map<string, number>();
    for (const sub of this.topology.subtopologies) {
      for (const t of sub.externalTopics) {
        const p = options.partitions;
        external.set(t, typeof p === "number" ? p : (p?.[t] ?? 1));
      }
    }
    const plan = planPartitions(this.topology, external);
    this.taskCounts = plan.tasks;
    for (const [t, n] of external) this.partitionCounts.set(t, n);
    for (const [t, n] of plan.internal) this.partitionCounts.set(t, n);
    this.createTasks();
  }

  private createTasks(): void {
    for (const t of this.tasks.values()) t.close();
    this.tasks = new Map();
    for (const sub of this.topology.subtopologies) {
      const n = this.taskCounts.get(sub.id) as number;
      for (let p = 0; p < n; p++) {
        const task = new Task(
          this.topology,
          sub,
          p,
          this.io(),
          (up) => this.taskCounts.get(up) as number,
          this.app.onError,
        );
        this.tasks.set(task.id, task);
        this.reportCaughtUp(task);
      }
    }
  }

  private io(): TaskIO {
    return {
      now: () => this.wall,
      ...(this.maxAhead !== undefined ? { maxEventTimeAhead: this.maxAhead } : {}),
      partitionsOf: (topic) => this.partitionsOf(topic),
      send: (topic, partition, key, value, ts, headers) => {
        const n = this.partitionsOf(topic);
        const p = partition ?? (key === null ? 0 : partitionFor(key, n));
        const rec = this.append(topic, { partition: p, offset: 0, key, value, ts, ...(headers ? { headers } : {}) });
        if (this.topology.topicRoles.get(topic)?.role === "source") this.queue.push({ topic, rec });
      },
      sink: (sink: Sink, rec: Rec) => sink.write(rec),
      deadLetter: (d) => {
        this.deadLetters.push(d);
      },
    };
  }

  partitionsOf(topic: string): number {
    return this.partitionCounts.get(topic) ?? 1;
  }

  private seq = 0;
  private readonly order = new WeakMap<TopicRecord, number>();

  private append(topic: string, rec: TopicRecord): TopicRecord {
    if (!this.retain) {
      let ends = this.ends.get(topic);
      if (!ends) {
        ends = new Array<number>(this.partitionsOf(topic)).fill(0);
        this.ends.set(topic, ends);
      }
      rec.offset = ends[rec.partition] ?? 0;
      ends[rec.partition] = rec.offset + 1;
      return rec;
    }
    this.order.set(rec, this.seq++);
    let log = this.topicLogs.get(topic);
    if (!log) {
      log = Array.from({ length: this.partitionsOf(topic) }, () => []);
      this.topicLogs.set(topic, log);
    }
    const part = log[rec.partition] as TopicRecord[];
    rec.offset = part.length;
    part.push(rec);
    return rec;
  }

  /** Pipes a value into an input topic (encoded with the topic's schema or serde). */
  pipe(topic: string, value: unknown, options: PipeOptions = {}): void {
    const node = this.inputNode(topic);
    this.pipeRaw(topic, value === null ? null : node.encode(value), {
      ...options,
      ts: options.ts ?? this.defaultTs(value),
    });
  }

  /** Pipes bytes as they are: for poison records. */
  pipeRaw(topic: string, value: Buffer | null, options: PipeOptions = {}): void {
    const key = options.key ?? null;
    const n = this.partitionsOf(topic);
    const partition = options.partition ?? (key === null ? 0 : partitionFor(key, n));
    const rec = this.append(topic, {
      partition,
      offset: 0,
      key,
      value,
      ts: options.ts ?? this.wall,
      ...(options.headers ? { headers: options.headers } : {}),
    });
    if (options.hold) {
      this.held.add(rec);
      return;
    }
    this.queue.push({ topic, rec });
    this.drain();
  }

  /** Delivers the records piped with `hold`, in the order they were piped. */
  deliverHeld(): void {
    const recs = [...this.held].sort((a, b) => (this.order.get(a) as number) - (this.order.get(b) as number));
    this.held.clear();
    for (const rec of recs) {
      const topic = this.topicOf(rec);
      if (topic) this.queue.push({ topic, rec });
    }
    this.drain();
  }

  private topicOf(rec: TopicRecord): string | undefined {
    for (const [topic, log] of this.topicLogs) if (log[rec.partition]?.[rec.offset] === rec) return topic;
    return undefined;
  }

  /**
   * Tells a task's source partitions whether they are read to their end, as the worker does when a
   * task starts (its position against the partition's end) and with every fetch (the fetch's lag).
   */
  private reportCaughtUp(task: Task): void {
    for (const s of task.sub.sources) {
      if (s.internal) continue;
      const input = task.inputs.get(s.topic);
      const next = input?.next !== null && input?.next !== undefined ? Number(input.next) : 0;
      const end = this.topicLogs.get(s.topic)?.[task.partition]?.length ?? 0;
      task.tracker.setCaughtUp(`${s.topic}#${task.partition}`, next >= end);
    }
  }

  private defaultTs(value: unknown): number {
    const ts = (value as { ts?: unknown } | null)?.ts;
    return typeof ts === "number" ? ts : this.wall;
  }

  private inputNode(topic: string): SourceNode | TableNode {
    for (const sub of this.topology.subtopologies) {
      const n = sub.sources.find((s) => s.topic === topic) ?? sub.tables.find((t) => t.topic === topic);
      if (n) return n;
    }
    throw new Error(`the topology does not read ${topic}`);
  }

  private subOf(topic: string): SubTopology {
    const role = this.topology.topicRoles.get(topic);
    if (!role) throw new Error(`the topology does not read ${topic}`);
    return this.topology.subtopologies[role.sub] as SubTopology;
  }

  private drain(): void {
    if (this.delivering) return;
    this.delivering = true;
    try {
      const announce = ++this.piped % this.announceEvery === 0;
      for (;;) {
        while (this.queue.length > 0) {
          const { topic, rec } = this.queue.shift() as { topic: string; rec: TopicRecord };
          this.deliver(topic, rec);
        }
        if (!announce) break;
        for (const t of this.tasks.values()) t.announceWatermark();
        if (this.queue.length === 0) break;
      }
    } finally {
      this.delivering = false;
    }
  }

  private deliver(topic: string, rec: TopicRecord): void {
    const sub = this.subOf(topic);
    const task = this.tasks.get(`${sub.id}_${rec.partition}`) as Task;
    const input = task.inputs.get(topic);
    if (!input) throw new Error(`task ${task.id} does not read ${topic}`);
    const msg: InputMessage = {
      key: rec.key === null ? null : Buffer.from(rec.key),
      value: rec.value,
      timestamp: rec.ts,
      offset: String(rec.offset),
      ...(rec.headers ? { headers: rec.headers } : {}),
    };
    input.handle(msg);
    this.reportCaughtUp(task);
  }

  /** Moves the wall clock (idle timeouts) and lets every task notice. */
  advanceWallClock(ms: number): void {
    this.wall += ms;
    for (const t of this.tasks.values()) t.tick();
    this.drain();
  }

  /** Records written to a topic in the order they were written, decoded with `decode` (raw bytes otherwise); watermark markers left out. */
  output<T = Buffer | null>(
    topic: string,
    decode?: (b: Buffer) => T,
  ): Array<{ key: string | null; value: T; ts: number; partition: number }> {
    const log = this.topicLogs.get(topic) ?? [];
    return log
      .flat()
      .filter((r) => r.headers?.["weir-watermark"] === undefined)
      .sort((a, b) => (this.order.get(a) as number) - (this.order.get(b) as number))
      .map((r) => ({
        key: r.key,
        value: (decode && r.value ? decode(r.value) : r.value) as T,
        ts: r.ts,
        partition: r.partition,
      }));
  }

  /** Closes every task, as a worker does when it stops: operators release what they registered outside. */
  close(): void {
    for (const t of this.tasks.values()) t.close();
  }

  task(subId: number, partition: number): Task {
    const t = this.tasks.get(`${subId}_${partition}`);
    if (!t) throw new Error(`no task ${subId}_${partition}`);
    return t;
  }

  allTasks(): Task[] {
    return [...this.tasks.values()];
  }

  /**
   * What the Kafka worker does every commit interval, minus the I/O: what operators held for the
   * checkpoint emitted (corrections), changelog appended, offsets committed. Records it wrote to
   * repartition topics are then delivered downstream (whose own corrections wait for the next one).
   */
  checkpoint(): void {
    for (const task of this.tasks.values()) {
      const snap = task.snapshot();
      for (const c of snap.changelog) {
        this.append(c.topic, { partition: task.partition, offset: 0, key: c.key, value: c.value, ts: this.wall });
      }
      for (const o of snap.offsets) this.committed.set(`${o.topic}#${task.partition}`, Number(o.offset));
    }
    this.drain();
  }

  /**
   * A crash after the last checkpoint: every task is rebuilt from the changelogs, then the input
   * after the committed offsets is processed again (outputs written since the checkpoint stay
   * written, as they would in a sink). Repartition records are replayed too.
   */
  crash(): void {
    this.createTasks();
    for (const task of this.tasks.values()) {
      for (const input of task.inputs.values()) {
        if (input.role === "source") continue;
        const part = this.topicLogs.get(input.topic)?.[task.partition] ?? [];
        for (const rec of part) {
          input.handle({
            key: rec.key === null ? null : Buffer.from(rec.key),
            value: rec.value,
            timestamp: rec.ts,
            offset: String(rec.offset),
          });
        }
      }
      task.restored();
      // A new owner starts at the committed offsets: that is where its sources' lag counts from.
      for (const s of task.sub.sources) {
        const input = task.inputs.get(s.topic);
        if (input && !s.internal) input.next = String(this.committed.get(`${s.topic}#${task.partition}`) ?? 0);
      }
      this.reportCaughtUp(task);
    }
    const replay: Array<{ topic: string; rec: TopicRecord }> = [];
    for (const sub of this.topology.subtopologies) {
      for (const s of sub.sources) {
        const log = this.topicLogs.get(s.topic) ?? [];
        log.forEach((part, p) => {
          const from = this.committed.get(`${s.topic}#${p}`) ?? 0;
          for (const rec of part.slice(from)) if (!this.held.has(rec)) replay.push({ topic: s.topic, rec });
        });
      }
    }
    // External inputs first in their original order, internal ones as their upstream re-creates them.
    for (const r of replay) {
      if (this.subOf(r.topic).sources.find((s) => s.topic === r.topic)?.internal) continue;
      this.queue.push(r);
    }
    this.drain();
  }
}

/** A sink that keeps what it is given, for tests. */
export class CollectingSink<V = unknown> implements Sink<V> {
  readonly records: Array<Rec<V>> = [];
  readonly highWater = Number.POSITIVE_INFINITY;
  constructor(readonly name = "collect") {}
  write(rec: Rec<V>): void {
    this.records.push(rec);
  }
  async flush(): Promise<void> {}
  pending(): number {
    return 0;
  }
  async close(): Promise<void> {}
}
