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
  close(): Promise<void>;
}
