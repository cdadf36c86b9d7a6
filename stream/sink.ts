// The contract between the runtime and an external store (Elasticsearch, ClickHouse, ...). The
// runtime hands records over with `write` and commits source offsets only after `flush` resolves, so
// a sink must resolve `flush` only when every record written before it is durably accepted. Replays
// after a crash write the same records again: sinks make that harmless with deterministic ids.
import type { Registry } from "prom-client";
import type { Rec } from "./types.ts";

export interface Sink<V = unknown> {
  readonly name: string;
  /** Buffers a record; may start sending in the background. Must not throw for a bad record: dead-letter it via the report instead. */
  write(rec: Rec<V>): void;
  /** Resolves when everything written so far is acknowledged by the store. Rejects if it cannot be. */
  flush(): Promise<void>;
  /** Records written but not yet acknowledged: the runtime pauses its sources while this is above `highWater`. */
  pending(): number;
  readonly highWater: number;
  /** Records the store refused for good (mapping conflicts, ...), to be dead-lettered by the runtime. */
  takeRejected?(): Array<{ rec: Rec<V>; reason: string; message: string }>;
  /** Adds the sink's own metrics to the worker's registry, served on its /metrics. */
  registerMetrics?(registry: Registry): void;
  /** Whether the store takes what the sink sends (an outage: false, with why): shown on the worker's /health. */
  health?(): { ok: boolean; detail: string };
  /**
   * Stops sending; a flush() waiting rejects. Records not acknowledged are dropped: their offsets were
   * never committed, so they are read again.
   */
  close(): Promise<void>;
}

/**
 * A sink's flush() rejected: it could not get what it was written acknowledged (a store refusing
 * for good, or retries that a setting bounds run out). The worker stops on it, its offsets
 * uncommitted past what the store has; the message is the sink's own.
 */
export class SinkFailedError extends Error {
  constructor(
    readonly sink: string,
    cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = "SinkFailedError";
  }
}
