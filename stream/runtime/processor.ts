// The operator contract. An operator node of the topology carries an `Operator`: the stores it
// needs and a factory for the processor each task runs (Kafka Streams' ProcessorSupplier with its
// stores). The task builds every operator once, hands it an OperatorContext, and from then on only
// calls `process` and the hooks below: it knows no operator by name, so a new window, join or rule
// construct is its own file plus one DSL method. Windows, joins and stream/operators/ depend on this
// module, the stores (state/), timers (time/) and types.ts, never on the task or the DSL.
import type { KeyValueStore, StoreConfig } from "../state/store.ts";
import type { Rec } from "../types.ts";

export type Emit = (rec: Rec) => void;

/** An operator's outputs: its results, and `late`, its side output of late records. */
export type Port = "out" | "late";
/** The input a record arrives on: `main`, or a side of a two-input operator (a join). */
export type Input = "main" | "left" | "right";

/** What the task offers one operator instance. */
export interface OperatorContext {
  /**
   * The task this instance runs in (`<sub-topology>_<partition>`) and its partition: stable across
   * restarts and moves, so an operator may name what it writes by them (a writer id, a part of a merge).
   */
  readonly taskId: string;
  readonly partition: number;
  /**
   * The task's watermark as this operator has heard of it: no record at or before it is expected
   * any more (beyond grace). It moves only after everything upstream has handled that watermark.
   */
  readonly watermark: number;
  /** The newest record timestamp the task has seen. */
  readonly streamTime: number;
  /** A store of the task: one the operator declared, or one of a node it reads (a table). */
  store<V>(name: string): KeyValueStore<V>;
  /** Sends a record to the operator's children. */
  readonly forward: Emit;
  /**
   * Sends a late record to the `late` side output. The runtime counts it
   * (weir_stream_late_records_total) and, unless the topology routes the side output, dead-letters it
   * with reason late-event.
   */
  readonly late: Emit;
}

export interface Processor {
  process(rec: Rec, input: Input): void;
  /** The operator's watermark advanced. */
  onWatermark?(watermark: number): void;
  /** The task's stream time advanced (drives early emission). */
  onStreamTime?(streamTime: number): void;
  /** State was restored from the changelog: rebuild in-memory indexes (timers). */
  restored?(): void;
  /** Open windows / buffered records, for metrics. */
  openCount?(): number;
  /** Records or values the operator dropped by design (a cap reached, no table row), by reason: never silent. */
  dropped?(): Record<string, number>;
  /** The task is closed (revoked, dropped or rebuilt): release what the processor registered outside it. */
  close?(): void;
  /**
   * The task is about to checkpoint: emit what was held back until now (the corrections of closed
   * windows that late records changed since the last checkpoint). Called parents first, so what an
   * operator emits here reaches its children before they are asked.
   */
  onCheckpoint?(): void;
  /** Late records applied to closed windows and the corrections emitted (allowed lateness), for metrics. */
  corrections?(): CorrectionCounts;
}

/** What an operator with allowed lateness did with late records. */
export interface CorrectionCounts {
  /** Late records that changed a closed window (within its allowed lateness). */
  records: number;
  /** Corrected results emitted. */
  emitted: number;
  /** Closed windows kept for corrections now. */
  kept: number;
  /** Closed windows dropped before their allowed lateness ran out, for room (maxClosed): later records for them are late. */
  evicted: number;
}

/** A node's factory: the stores it owns and the processor it runs in each task. */
export interface Operator {
  /** What it is, for messages: "aggregate counts", "join clicks". */
  readonly name: string;
  /**
   * The stores it owns. Each is created empty in every task of the operator's sub-topology and
   * changelogged to `<appId>-<store name>-changelog`: keep the names stable across versions.
   */
  readonly stores: ReadonlyArray<StoreConfig<unknown>>;
  create(ctx: OperatorContext): Processor;
}

/** A window or join value layout shared by the stateful operators: [u32 key length][key][f64 time][payload]. */
export function packKeyed(key: string, time: number, payload: Buffer): Buffer {
  const k = Buffer.from(key, "utf8");
  const out = Buffer.allocUnsafe(4 + k.length + 8 + payload.length);
  out.writeUInt32BE(k.length, 0);
  k.copy(out, 4);
  out.writeDoubleBE(time, 4 + k.length);
  payload.copy(out, 12 + k.length);
  return out;
}

export function unpackKeyed(buf: Buffer): { key: string; time: number; payload: Buffer } {
  const n = buf.readUInt32BE(0);
  return {
    key: buf.toString("utf8", 4, 4 + n),
    time: buf.readDoubleBE(4 + n),
    payload: buf.subarray(12 + n),
  };
}
