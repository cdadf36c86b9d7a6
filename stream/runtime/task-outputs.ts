// Where the records of a worker's tasks go (each task's TaskIO): outputs and dead letters into the
// task's transaction when it has one, else out through the worker's shared producer; to external
// sinks. Counted per target for /metrics as plain numbers. Backpressure is measured here too: a sink
// above its high-water mark, or too many sends in flight.
import type { OutputProducer, OutRecord } from "../kafka/stream-client.ts";
import type { Sink } from "../sink.ts";
import { encodeDeadLetter } from "./dead-letters.ts";
import type { OwnedTask } from "./owned-task.ts";
import { RecordCollector } from "./record-collector.ts";
import type { TaskIO } from "./task.ts";

/** Sends in flight, of one producer, past which the sources pause until they are acknowledged. */
const MAX_SENDS_IN_FLIGHT = 16;

export class TaskOutputs {
  /** Outputs of tasks without a transaction, and dead letters. */
  readonly shared: RecordCollector;
  /** The external sinks tasks have written to. */
  readonly sinks = new Set<Sink>();
  /** Records written per target (topic, or `sink:<name>`). */
  readonly counts = new Map<string, number>();
  private readonly sinkTargets = new Map<Sink, string>();

  constructor(
    private readonly appId: string,
    private readonly dlqTopic: string,
    private readonly partitionCounts: Map<string, number>,
    readonly sendBatch: number,
    readonly sharedProducer: OutputProducer,
  ) {
    this.shared = new RecordCollector(sharedProducer, sendBatch);
  }

  ioFor(t: OwnedTask): TaskIO {
    return {
      now: () => Date.now(),
      // Under the broker's default message.timestamp.after.max.ms (1 h), leaving room for windows ending later.
      maxEventTimeAhead: 45 * 60_000,
      partitionsOf: (topic) => this.partitionCounts.get(topic) ?? 1,
      send: (topic, partition, key, value, ts, headers) => {
        const rec: OutRecord = { topic, partition, key, value, ts, ...(headers ? { headers } : {}) };
        if (t.output) {
          t.output.add(rec);
          t.dirty = true;
        } else {
          this.shared.add(rec);
        }
        this.count(topic);
      },
      sink: (sink, rec) => {
        if (!this.sinks.has(sink)) {
          this.sinks.add(sink);
          this.sinkTargets.set(sink, `sink:${sink.name}`);
        }
        sink.write(rec);
        this.count(this.sinkTargets.get(sink) as string);
      },
      // A dead letter is an effect of its input record like any output: in the task's transaction
      // when it has one, so a replay after a failed checkpoint does not dead-letter the record twice.
      deadLetter: (d) => {
        const { key, value } = encodeDeadLetter(this.appId, d, Date.now());
        const rec: OutRecord = { topic: this.dlqTopic, partition: null, key, value, ts: Date.now() };
        if (t.output) {
          t.output.add(rec);
          t.dirty = true;
        } else {
          this.shared.add(rec);
        }
      },
    };
  }

  private count(target: string): void {
    this.counts.set(target, (this.counts.get(target) ?? 0) + 1);
  }

  /** Sinks above their high-water mark, and whether the producers have too many sends in flight. */
  congestion(tasks: Iterable<OwnedTask>): { slow: Sink[]; tooManySends: boolean } {
    const slow = [...this.sinks].filter((s) => s.pending() > s.highWater);
    let tooManySends = this.shared.inFlight > MAX_SENDS_IN_FLIGHT;
    for (const t of tasks) tooManySends ||= (t.output?.inFlight ?? 0) > MAX_SENDS_IN_FLIGHT;
    return { slow, tooManySends };
  }
}
