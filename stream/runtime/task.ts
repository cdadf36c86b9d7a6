// A task: one sub-topology instance for one partition number. It owns the operators, the stores and
// the watermark of that partition, and talks to the outside only through TaskIO, so the Kafka
// worker and the test driver run exactly the same code.
import { createHash } from "node:crypto";
import { SOURCE_HEADER } from "../../kafka/headers.ts";
import type { CompiledTopology, SubTopology } from "../dsl/compile.ts";
import type { Node, SourceNode, TableNode } from "../dsl/graph.ts";
import { partitionFor } from "../kafka/partitioner.ts";
import type { Sink } from "../sink.ts";
import { KeyValueStore } from "../state/store.ts";
import { NO_SOURCE, WatermarkTracker } from "../time/watermark.ts";
import type { ErrorPolicy, Rec } from "../types.ts";
import type { CorrectionCounts, Emit, Input, OperatorContext, Port, Processor } from "./processor.ts";

export const WATERMARK_HEADER = "weir-watermark";
export const ORIGIN_HEADER = "weir-origin";
export const IDLE_HEADER = "weir-idle";
/** Longer source names are kept as their SHA-256, so a hostile one costs bounded memory. */
const MAX_SOURCE_NAME = 128;
/** Reserved changelog key that carries the task's watermark state. */
export const META_KEY = "\u0000weir-meta";
const EMPTY = Buffer.alloc(0);

export interface DeadLetterInput {
  reason: string;
  message: string;
  topic: string | null;
  partition: number | null;
  offset: string | null;
  raw: Buffer | null;
  headers?: Record<string, string>;
  schema?: string;
  /** The dead letter's id when it has no input offset to name it (a record a sink refused). */
  id?: string;
}

export interface TaskIO {
  now(): number;
  /**
   * An event this far ahead of now() goes to the DLQ (reason future-timestamp): one bogus clock
   * would otherwise push its partition's watermark into the future and make every later event late,
   * and Kafka refuses records more than message.timestamp.after.max.ms (1 h) ahead. Unset: no limit.
   */
  readonly maxEventTimeAhead?: number;
  partitionsOf(topic: string): number;
  /** partition null: Kafka's default partitioner (by key). */
  send(
    topic: string,
    partition: number | null,
    key: string | null,
    value: Buffer | null,
    ts: number,
    headers?: Record<string, string>,
  ): void;
  sink(sink: Sink, rec: Rec): void;
  deadLetter(d: DeadLetterInput): void;
}

export interface InputMessage {
  key: Buffer | null;
  value: Buffer | null;
  timestamp: number;
  offset: string;
  headers?: Record<string, unknown>;
}

export class RecordFailure extends Error {
  constructor(
    message: string,
    readonly reason: string,
  ) {
    super(message);
    this.name = "RecordFailure";
  }
}

export interface TaskCounters {
  recordsIn: number;
  late: number;
  dlq: Map<string, number>;
  skipped: number;
}

/** One consumed topic-partition of a task. */
export class TaskInput {
  /** The offset after the last message handled (processed or dead-lettered). */
  next: string | null = null;
  caughtUp = true;

  constructor(
    readonly task: Task,
    readonly topic: string,
    readonly role: "source" | "table" | "changelog",
    readonly node: Node | null,
    readonly store: string | null,
  ) {}

  handle(msg: InputMessage): void {
    this.task.handle(this, msg);
    this.next = String(BigInt(msg.offset) + 1n);
  }
}

export class Task {
  readonly id: string;
  readonly tracker = new WatermarkTracker();
  readonly stores = new Map<string, KeyValueStore<unknown>>();
  readonly inputs = new Map<string, TaskInput>();
  readonly counters: TaskCounters = { recordsIn: 0, late: 0, dlq: new Map(), skipped: 0 };
  private readonly processors = new Map<number, Processor>();
  /** The operators' processors by the operator's name, for dropped(). */
  private readonly named: Array<[string, Processor]> = [];
  private readonly sourceEmits = new Map<number, Emit>();
  /** Each operator's own watermark, delivered parents first (see advanced()). */
  private readonly clocks: Array<[TaskOperatorContext, Processor]> = [];
  private readonly onStreamTimes: Processor[] = [];
  /** Processors with an onCheckpoint hook, parents first. */
  private readonly onCheckpoints: Processor[] = [];
  private lastStreamTime = Number.NEGATIVE_INFINITY;
  private lastMarker = Number.NEGATIVE_INFINITY;
  private lastIdle = false;
  private current: { input: TaskInput; msg: InputMessage } | null = null;
  /** The last weir-source header decoded, and its name. */
  private lastSource: { bytes: Buffer; name: string } | null = null;
  /** The changelog topic that carries the watermark meta record: the first changelogged store's. */
  private readonly metaChangelog: string | null;

  constructor(
    readonly topology: CompiledTopology,
    readonly sub: SubTopology,
    readonly partition: number,
    private readonly io: TaskIO,
    /** Number of tasks of each upstream sub-topology, for watermark channels of repartition topics. */
    upstreamTasks: (sub: number) => number,
    private readonly policy: ErrorPolicy,
  ) {
    this.id = `${sub.id}_${partition}`;
    const graph = topology.app.graph;
    const now = io.now();
    for (const st of sub.stores) this.stores.set(st.name, new KeyValueStore(st.config));
    this.metaChangelog = sub.stores.find((s) => s.changelog)?.changelog ?? null;
    for (const s of sub.sources) {
      if (s.internal) {
        const up = sub.upstream.get(s.topic) as number;
        for (let p = 0; p < upstreamTasks(up); p++) this.tracker.addAnnouncedChannel(`${s.topic}@${p}`, now);
      } else {
        // Not caught up until the consumer says so (worker: where the task starts against the
        // partition's end, then each fetch's lag): a backlog not fetched yet is not silence.
        this.tracker.addChannel(`${s.topic}#${partition}`, s.outOfOrderness, s.idleTimeout, now, s.sources, false);
      }
      this.inputs.set(s.topic, new TaskInput(this, s.topic, "source", s, null));
    }
    for (const t of sub.tables) this.inputs.set(t.topic, new TaskInput(this, t.topic, "table", t, t.store));
    for (const st of sub.stores) {
      if (st.changelog) this.inputs.set(st.changelog, new TaskInput(this, st.changelog, "changelog", null, st.name));
    }
    // Build operators children-first so every emit closes over existing processors.
    const built = new Set<number>();
    const build = (id: number): void => {
      if (built.has(id)) return;
      built.add(id);
      for (const e of graph.edges) if (e.from === id) build(e.to);
      const node = graph.nodes[id] as Node;
      if (node.kind === "operator") for (const r of node.reads) build(r);
      const ctx = new TaskOperatorContext(this, this.emitter(id, "out"), this.emitter(id, "late"));
      const p = this.makeProcessor(node, ctx);
      if (p) {
        this.processors.set(id, p);
        this.clocks.push([ctx, p]);
        if (p.onStreamTime) this.onStreamTimes.push(p);
        if (node.kind === "operator") this.named.push([node.operator.name, p]);
      }
    };
    for (const id of sub.nodes) build(id);
    // Built children-first, so reversed the operators are in topological order: an operator hears of
    // a watermark only after everything upstream has emitted what that watermark released.
    this.clocks.reverse();
    for (const [, p] of this.clocks) if (p.onCheckpoint) this.onCheckpoints.push(p);
    for (const s of sub.sources) this.sourceEmits.set(s.id, this.emitter(s.id, "out"));
  }

  get watermark(): number {
    return this.tracker.watermark;
  }

  get streamTime(): number {
    return this.tracker.streamTime;
  }

  store<V>(name: string): KeyValueStore<V> {
    const s = this.stores.get(name);
    if (!s) throw new Error(`task ${this.id} has no store ${name}`);
    return s as KeyValueStore<V>;
  }

  /** Handles one message of one of the task's inputs. Throws only under the `fail` policy. */
  handle(input: TaskInput, msg: InputMessage): void {
    switch (input.role) {
      case "changelog":
        this.restoreRecord(input.store as string, msg);
        return;
      case "table":
        this.handleTable(input, msg);
        return;
      case "source":
        this.handleSource(input, input.node as SourceNode, msg);
    }
  }

  private handleSource(input: TaskInput, node: SourceNode, msg: InputMessage): void {
    const now = this.io.now();
    if (node.internal) {
      const mark = msg.headers?.[WATERMARK_HEADER];
      if (mark !== undefined) {
        const origin = String(msg.headers?.[ORIGIN_HEADER]);
        const idle = String(msg.headers?.[IDLE_HEADER] ?? "") === "1";
        if (this.tracker.announce(`${node.topic}@${origin}`, Number(String(mark)), idle, now)) this.advanced();
        return;
      }
    }
    this.counters.recordsIn++;
    this.current = { input, msg };
    let value: unknown;
    try {
      if (msg.value === null) throw new RecordFailure("the message has no value (a tombstone)", "null-value");
      value = node.decode(msg.value);
    } catch (e) {
      this.fail(e, codecReason(e), node.schemaName);
      return;
    }
    let ts: number;
    let source = NO_SOURCE;
    try {
      ts = node.timestamp(value, msg.timestamp);
      if (!node.internal) source = this.sourceName(node, value, msg.headers);
    } catch (e) {
      this.fail(e, "user-code-error", node.schemaName);
      return;
    }
    if (!Number.isFinite(ts)) {
      this.fail(new Error(`event time is not a number: ${String(ts)}`), "invalid-timestamp", node.schemaName);
      return;
    }
    const ahead = this.io.maxEventTimeAhead;
    if (ahead !== undefined && !node.internal && ts > now + ahead) {
      const by = Math.round((ts - now) / 1000);
      this.fail(
        new Error(`event time ${new Date(ts).toISOString()} is ${by} s in the future (limit ${ahead / 1000} s)`),
        "future-timestamp",
        node.schemaName,
      );
      return;
    }
    const channel = node.internal
      ? `${node.topic}@${String(msg.headers?.[ORIGIN_HEADER] ?? "?")}`
      : `${node.topic}#${this.partition}`;
    const rec: Rec = { key: msg.key === null ? null : msg.key.toString("utf8"), value, ts };
    // A repartitioned record only moves its own channel through announcements, not by its timestamp.
    const advanced = node.internal ? this.tracker.observeTimeOnly(ts) : this.tracker.observe(channel, ts, now, source);
    try {
      (this.sourceEmits.get(node.id) as Emit)(rec);
    } catch (e) {
      if (e instanceof RecordFailure) throw e;
      this.fail(e, "user-code-error", node.schemaName);
    }
    this.current = null;
    this.afterRecord(advanced);
  }

  /** A table keeps the latest value per key; a null value (a tombstone) deletes it. */
  private handleTable(input: TaskInput, msg: InputMessage): void {
    const node = input.node as TableNode;
    if (msg.key === null) return;
    this.current = { input, msg };
    let value: unknown = null;
    if (msg.value !== null) {
      try {
        value = node.decode(msg.value);
      } catch (e) {
        this.fail(e, codecReason(e), node.schemaName);
        return;
      }
    }
    const store = this.stores.get(node.store) as KeyValueStore<unknown>;
    const key = msg.key.toString("utf8");
    if (value === null || value === undefined) store.delete(key);
    else store.put(key, value, msg.timestamp);
    this.current = null;
  }

  private afterRecord(watermarkAdvanced: boolean): void {
    const st = this.tracker.streamTime;
    if (st > this.lastStreamTime) {
      this.lastStreamTime = st;
      for (const p of this.onStreamTimes) p.onStreamTime?.(st);
    }
    if (watermarkAdvanced) this.advanced();
  }

  private advanced(): void {
    const wm = this.tracker.watermark;
    for (const [clock, p] of this.clocks) {
      clock.watermark = wm;
      p.onWatermark?.(wm);
    }
  }

  /** Wall-clock tick: idle channels may release the watermark. */
  tick(): void {
    if (this.tracker.tick(this.io.now())) this.advanced();
  }

  /** Tells downstream tasks (through every repartition topic we write) how far our event time is. */
  announceWatermark(): void {
    if (this.sub.repartitions.length === 0) return;
    const wm = this.tracker.watermark;
    const idle = this.tracker.allIdle(this.io.now());
    if ((wm <= this.lastMarker || !Number.isFinite(wm)) && idle === this.lastIdle) return;
    this.lastMarker = wm;
    this.lastIdle = idle;
    const headers = {
      [WATERMARK_HEADER]: String(Number.isFinite(wm) ? wm : -1),
      [ORIGIN_HEADER]: String(this.partition),
      [IDLE_HEADER]: idle ? "1" : "0",
    };
    for (const r of this.sub.repartitions) {
      const n = this.io.partitionsOf(r.topic);
      for (let p = 0; p < n; p++) this.io.send(r.topic, p, null, EMPTY, Math.max(0, wm), headers);
    }
  }

  private fail(e: unknown, reason: string, schema?: string): void {
    const message = e instanceof Error ? e.message : String(e);
    const cur = this.current;
    this.current = null;
    if (this.policy === "fail") {
      throw new RecordFailure(
        `${reason} at ${cur?.input.topic}[${this.partition}]@${cur?.msg.offset}: ${message}`,
        reason,
      );
    }
    this.counters.dlq.set(reason, (this.counters.dlq.get(reason) ?? 0) + 1);
    if (this.policy === "skip") {
      this.counters.skipped++;
      return;
    }
    this.io.deadLetter({
      reason,
      message,
      topic: cur?.input.topic ?? null,
      partition: cur ? this.partition : null,
      offset: cur?.msg.offset ?? null,
      raw: cur?.msg.value ?? null,
      ...(cur?.msg.headers ? { headers: stringHeaders(cur.msg.headers) } : {}),
      ...(schema ? { schema } : {}),
    });
  }

  private lateRecord(rec: Rec): void {
    this.counters.late++;
    const cur = this.current;
    this.counters.dlq.set("late-event", (this.counters.dlq.get("late-event") ?? 0) + 1);
    this.io.deadLetter({
      reason: "late-event",
      message: `event time ${new Date(rec.ts).toISOString()} is behind the watermark ${new Date(this.watermark).toISOString()} beyond the grace period`,
      topic: cur?.input.topic ?? null,
      partition: cur ? this.partition : null,
      offset: cur?.msg.offset ?? null,
      raw: cur?.msg.value ?? Buffer.from(JSON.stringify(rec.value)),
    });
  }

  /** A record's source: the topology's `sourceOf`, else the weir-source header; NO_SOURCE when it names none. */
  private sourceName(node: SourceNode, value: unknown, headers: Record<string, unknown> | undefined): string {
    let name: string | null | undefined;
    if (node.sourceOf) name = node.sourceOf(value, (h) => headerText(headers?.[h]));
    else {
      const raw = headers?.[SOURCE_HEADER];
      // A partition's records mostly come in runs from one source: its name is decoded once per run.
      if (Buffer.isBuffer(raw) && this.lastSource !== null && raw.equals(this.lastSource.bytes))
        return this.lastSource.name;
      name = headerText(raw);
      if (Buffer.isBuffer(raw) && name) this.lastSource = { bytes: Buffer.from(raw), name: shortSourceName(name) };
    }
    if (typeof name !== "string" || name.length === 0) return NO_SOURCE;
    return shortSourceName(name);
  }

  // --- checkpoints -------------------------------------------------------------------------------

  /**
   * Changelog records and input positions as of now; clears the dirty sets. Synchronous on purpose.
   * Operators first emit what they held back for the checkpoint (corrections), so it is part of it.
   */
  snapshot(): {
    changelog: Array<{ topic: string; key: string; value: Buffer | null }>;
    offsets: Array<{ topic: string; offset: string }>;
  } {
    for (const p of this.onCheckpoints) p.onCheckpoint?.();
    const changelog: Array<{ topic: string; key: string; value: Buffer | null }> = [];
    for (const st of this.sub.stores) {
      const store = this.stores.get(st.name) as KeyValueStore<unknown>;
      if (!st.changelog) {
        store.takeChanges();
        continue;
      }
      for (const c of store.takeChanges()) changelog.push({ topic: st.changelog, key: c.key, value: c.value });
    }
    if (this.metaChangelog && changelog.length > 0) {
      changelog.push({
        topic: this.metaChangelog,
        key: META_KEY,
        value: Buffer.from(JSON.stringify(this.tracker.state())),
      });
    }
    const offsets: Array<{ topic: string; offset: string }> = [];
    for (const input of this.inputs.values()) {
      if (input.role === "source" && input.next !== null) offsets.push({ topic: input.topic, offset: input.next });
    }
    return { changelog, offsets };
  }

  private restoreRecord(storeName: string, msg: InputMessage): void {
    if (msg.key === null) return;
    const key = msg.key.toString("utf8");
    if (key === META_KEY) {
      if (msg.value) this.tracker.restoreState(JSON.parse(msg.value.toString("utf8")), this.io.now());
      return;
    }
    (this.stores.get(storeName) as KeyValueStore<unknown>).restore(key, msg.value);
  }

  /** Restoring is over: operators rebuild their timers, TTLs restart from the restored stream time. */
  restored(): void {
    const st = Number.isFinite(this.tracker.streamTime) ? this.tracker.streamTime : 0;
    for (const s of this.stores.values()) s.restampAll(st);
    for (const p of this.processors.values()) p.restored?.();
    for (const [clock] of this.clocks) clock.watermark = this.tracker.watermark;
    this.lastStreamTime = this.tracker.streamTime;
    this.lastMarker = Number.NEGATIVE_INFINITY;
    this.lastIdle = false;
  }

  openWindows(): number {
    let n = 0;
    for (const p of this.processors.values()) n += p.openCount?.() ?? 0;
    return n;
  }

  /** The task is gone from this process: operators release what they registered outside it. */
  close(): void {
    for (const p of this.processors.values()) p.close?.();
  }

  /** What the operators dropped by design (caps reached, records without a table row), by operator and reason. */
  dropped(): Array<{ operator: string; reason: string; count: number }> {
    const out: Array<{ operator: string; reason: string; count: number }> = [];
    for (const [operator, p] of this.named) {
      const counts = p.dropped?.();
      if (counts) for (const [reason, count] of Object.entries(counts)) out.push({ operator, reason, count });
    }
    return out;
  }

  /** What operators with allowed lateness did with late records, summed over the task's operators (or one, by name). */
  corrections(operator?: string): CorrectionCounts {
    const sum: CorrectionCounts = { records: 0, emitted: 0, kept: 0, evicted: 0 };
    for (const [name, p] of this.named) {
      if (operator !== undefined && name !== operator) continue;
      const c = p.corrections?.();
      if (!c) continue;
      sum.records += c.records;
      sum.emitted += c.emitted;
      sum.kept += c.kept;
      sum.evicted += c.evicted;
    }
    return sum;
  }

  // --- wiring ------------------------------------------------------------------------------------

  private emitter(id: number, port: Port): Emit {
    const graph = this.topology.app.graph;
    const targets: Array<[Processor, Input]> = [];
    for (const e of graph.edges) {
      if (e.from !== id || e.port !== port) continue;
      const p = this.processors.get(e.to);
      if (p) targets.push([p, e.input]);
    }
    if (port === "late") {
      if (targets.length === 0) return (rec) => this.lateRecord(rec);
      const route = this.fanOut(targets);
      return (rec) => {
        this.counters.late++;
        route(rec);
      };
    }
    return this.fanOut(targets);
  }

  private fanOut(targets: Array<[Processor, Input]>): Emit {
    if (targets.length === 0) return () => {};
    if (targets.length === 1) {
      const [p, input] = targets[0] as [Processor, Input];
      return (rec) => p.process(rec, input);
    }
    return (rec) => {
      for (const [p, input] of targets) p.process(rec, input);
    };
  }

  /**
   * The processor of a node: an operator builds its own; the special nodes (see dsl/graph.ts) are the
   * runtime's. Sources and tables are handled by handleSource/handleTable, not as processors.
   */
  private makeProcessor(node: Node, ctx: TaskOperatorContext): Processor | null {
    switch (node.kind) {
      case "source":
      case "table":
        return null;
      case "operator":
        return node.operator.create(ctx);
      case "repartition": {
        const n = this.io.partitionsOf(node.topic);
        let rr = 0;
        return {
          process: (r) => {
            const p = r.key === null ? rr++ % n : partitionFor(r.key, n);
            this.io.send(node.topic, p, r.key, node.serde.encode(r.value), r.ts, {
              [ORIGIN_HEADER]: String(this.partition),
            });
          },
        };
      }
      case "toTopic":
        return { process: (r) => this.io.send(node.topic, null, r.key, node.encode(r.value), r.ts) };
      case "toSink":
        return { process: (r) => this.io.sink(node.sink, r) };
    }
  }
}

/** Longer source names are kept as their SHA-256. */
function shortSourceName(name: string): string {
  return name.length <= MAX_SOURCE_NAME ? name : `sha256:${createHash("sha256").update(name).digest("hex")}`;
}

function headerText(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (Buffer.isBuffer(v)) return v.toString("utf8");
  if (Array.isArray(v)) return headerText(v[0]);
  return String(v);
}

function codecReason(e: unknown): string {
  if (e instanceof RecordFailure) return e.reason;
  const reason = (e as { reason?: unknown })?.reason;
  return typeof reason === "string" ? reason : "decode-error";
}

function stringHeaders(h: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h))
    if (v !== undefined) out[k] = Buffer.isBuffer(v) ? v.toString("utf8") : String(v);
  return out;
}

/**
 * What one operator instance sees of its task, with the watermark as that operator has heard of it.
 * Watermarks travel behind the records they release (as in Flink): a window that emits on a
 * watermark feeds the next window before that one closes, so chained windows (1 s results rolled up
 * to 1 min) lose nothing however far the watermark jumps.
 */
class TaskOperatorContext implements OperatorContext {
  watermark = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly task: Task,
    readonly forward: Emit,
    readonly late: Emit,
  ) {}

  get streamTime(): number {
    return this.task.streamTime;
  }

  get taskId(): string {
    return this.task.id;
  }

  get partition(): number {
    return this.task.partition;
  }

  store<V>(name: string): KeyValueStore<V> {
    return this.task.store<V>(name);
  }
}
