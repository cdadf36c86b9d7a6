// What an operator instance in a task looks like, and what the task offers it.
import type { Input } from "../dsl/graph.ts";
import type { KeyValueStore } from "../state/store.ts";
import type { Rec } from "../types.ts";

export type Emit = (rec: Rec) => void;

export interface OperatorContext {
  /** The task's watermark: no record at or before it is expected any more (beyond grace). */
  readonly watermark: number;
  /** The newest record timestamp the task has seen. */
  readonly streamTime: number;
  store<V>(name: string): KeyValueStore<V>;
}

export interface Processor {
  process(rec: Rec, input: Input): void;
  /** The task's watermark advanced. */
  onWatermark?(watermark: number): void;
  /** The task's stream time advanced (drives early emission). */
  onStreamTime?(streamTime: number): void;
  /** State was restored from the changelog: rebuild in-memory indexes (timers). */
  restored?(): void;
  /** Open windows / buffered records, for metrics. */
  openCount?(): number;
  /** Records refused as late, for metrics. */
  lateCount?: number;
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
