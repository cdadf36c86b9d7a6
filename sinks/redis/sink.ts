// The Redis counter sink: the deltas of a `coalesce` step (the stream runtime's), one per
// counter per period, applied by counters.ts's script, which counts each writer's delta once. On the
// batching sink (sinks/batching/) with one batch in flight, so a writer's deltas reach Redis in the
// order they were emitted (a later one applied first would make the earlier one look replayed), and
// a failed batch is tried again whole: what it had applied comes back as duplicates, counted.
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { z } from "zod";
import type { Rec } from "../../stream/types.ts";
import { type Batch, reserve } from "../batching/batch.ts";
import { DurationSchema, parseOptions, RetriesSchema } from "../batching/options.ts";
import { BatchingSink, BatchingSinkError, type RejectedRecord, type SinkMetricSet } from "../batching/sink.ts";
import { type CounterDelta, CounterStore, type CounterWrite, isTransientRedisError, writeProblem } from "./counters.ts";

export const RedisCounterSinkConfigSchema = z.strictObject({
  name: z.string().min(1).default("redis-counters"),
  url: z.string().regex(/^rediss?:\/\//, "a redis:// or rediss:// URL such as redis://127.0.0.1:6379"),
  /** Redis's password (AUTH), from the environment or a file; never logged. */
  password: z.string().optional(),
  /** Prefix of every key written: `weir:gifts:` makes counters `weir:gifts:{<key>}`. */
  prefix: z.string().min(1).max(200),
  /** Deltas per pipeline (one round trip). */
  batchSize: z.number().int().min(1).max(100_000).default(1000),
  flushInterval: DurationSchema.default(200),
  highWater: z.number().int().min(1).optional(),
  retries: RetriesSchema,
  markerTtl: DurationSchema.default(7 * 86_400_000),
});

export type RedisCounterSinkConfig = z.input<typeof RedisCounterSinkConfigSchema>;

export interface RedisCounterSinkStats {
  /** Deltas Redis added to their counter. */
  applied: number;
  /** Deltas Redis had applied already (a replay, or a retried batch): skipped, as they must be. */
  duplicates: number;
  /** Pipelines (round trips) that succeeded. */
  requests: number;
  retries: number;
  rejected: number;
}

export interface RedisFailure {
  kind: "transient" | "fatal";
  message: string;
}

export class RedisCounterSinkError extends BatchingSinkError<RedisFailure> {}

export class RedisCounterSink extends BatchingSink<CounterDelta, RejectedRecord<CounterDelta>, RedisFailure> {
  readonly config: z.output<typeof RedisCounterSinkConfigSchema>;
  readonly store: CounterStore;
  readonly stats: RedisCounterSinkStats = { applied: 0, duplicates: 0, requests: 0, retries: 0, rejected: 0 };

  constructor(options: RedisCounterSinkConfig & { logger?: Logger; registry?: Registry }) {
    const { logger, registry, ...rest } = options;
    const config = parseOptions("RedisCounterSink", RedisCounterSinkConfigSchema, rest);
    super({
      kind: "RedisCounterSink",
      name: config.name,
      maxRecords: config.batchSize,
      flushInterval: config.flushInterval,
      concurrency: 1,
      merge: true,
      highWater: config.highWater ?? 10 * config.batchSize,
      retries: config.retries,
      logger,
    });
    this.config = config;
    this.store = new CounterStore({
      url: config.url,
      ...(config.password !== undefined ? { redis: { password: config.password } } : {}),
      prefix: config.prefix,
      markerTtlSeconds: Math.ceil(config.markerTtl / 1000),
    });
    if (registry) this.registerMetrics(registry);
  }

  protected encode(rec: Rec<CounterDelta>, out: Batch<CounterDelta>): boolean {
    const d = rec.value;
    const write: CounterWrite = { key: d.key, delta: d.delta, writer: d.writer, seq: d.end };
    const problem = writeProblem(write);
    if (problem) {
      this.stats.rejected++;
      this.refuse({ rec, reason: "sink-rejected", message: problem });
      return false;
    }
    const line = `${JSON.stringify([write.key, write.delta, write.writer, write.seq])}\n`;
    const n = Buffer.byteLength(line);
    reserve(out, n);
    out.buf.write(line, out.size);
    out.size += n;
    return true;
  }

  protected async send(batch: Batch<CounterDelta>): Promise<void> {
    const items = batch.unsettled();
    const writes = items.map((i) => {
      const [key, delta, writer, seq] = JSON.parse(batch.bytes(i, i + 1).toString("utf8")) as [
        string,
        number,
        string,
        number,
      ];
      return { key, delta, writer, seq };
    });
    const started = performance.now();
    const outcomes = await this.store.apply(writes);
    this.requestSeconds(started);
    this.stats.requests++;
    let transient: Error | null = null;
    outcomes.forEach((o, j) => {
      const i = items[j] as number;
      if (o === "applied" || o === "duplicate") {
        if (o === "applied") this.stats.applied++;
        else this.stats.duplicates++;
        this.settle(batch, i);
        return;
      }
      if (isTransientRedisError(o.error)) {
        transient ??= o.error;
        return;
      }
      // The counter's key holds something else (WRONGTYPE), or a value out of range: no retry helps.
      const rec = this.settle(batch, i);
      if (rec) {
        this.stats.rejected++;
        this.refuse({ rec, reason: "sink-rejected", message: o.error.message });
      }
    });
    if (transient) throw transient;
  }

  protected classify(error: unknown): RedisFailure {
    const message = (error as Error)?.message ?? String(error);
    return { kind: isTransientRedisError(error) ? "transient" : "fatal", message };
  }

  protected giveUp(failure: RedisFailure, attempts: number, records: number): Error {
    return new RedisCounterSinkError(
      `RedisCounterSink ${this.name}: ${records} deltas not written after ${attempts} tries${failure.kind === "transient" ? ` (retries.max ${this.retriesMax} ran out)` : ""}: ${failure.message}; is Redis up (weir stack status) and not full (maxmemory)?`,
      failure,
      attempts,
    );
  }

  protected override retried(records: number): void {
    this.stats.retries += records;
  }

  protected metricSet(): SinkMetricSet {
    return {
      labels: { sink: this.name },
      counters: [
        ["weir_redis_sink_deltas_applied_total", "Deltas Redis added to their counter", () => this.stats.applied],
        [
          "weir_redis_sink_deltas_duplicate_total",
          "Deltas Redis had already applied (replays, retried batches), skipped",
          () => this.stats.duplicates,
        ],
        ["weir_redis_sink_requests_total", "Pipelines sent to Redis that succeeded", () => this.stats.requests],
        ["weir_redis_sink_retries_total", "Deltas tried again after a transient failure", () => this.stats.retries],
        ["weir_redis_sink_rejected_total", "Deltas refused for good (dead-lettered)", () => this.stats.rejected],
      ],
      pending: ["weir_redis_sink_pending_deltas", "Deltas written to the sink and not applied yet"],
      failing: ["weir_redis_sink_failing", "Tries failed in a row (Redis unreachable or refusing); 0 while it answers"],
      latency: ["weir_redis_sink_request_seconds", "Duration of a pipeline of deltas"],
    };
  }

  protected override async release(): Promise<void> {
    await this.store.close();
  }
}
