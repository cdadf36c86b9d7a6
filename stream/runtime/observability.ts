// Prometheus metrics and /health for a worker. Counters live as plain numbers in the tasks (no
// work on the hot path); the registry reads them when scraped.
import type { Server } from "node:http";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { type Health, serveMetrics } from "../../telemetry/metrics-server.ts";
import type { SourceView } from "../time/watermark.ts";
import type { OwnedTask } from "./owned-task.ts";
import type { CorrectionCounts } from "./processor.ts";

/** Sources shown one by one per task: the furthest behind first (the others are in the totals). */
export const SOURCES_SHOWN = 20;

/** What /metrics and /health show of one task. */
export interface TaskView {
  id: string;
  state: "restoring" | "running";
  watermark: number;
  recordsIn: number;
  late: number;
  dlq: Map<string, number>;
  openWindows: number;
  stores: Array<{ name: string; size: number; evictions: number }>;
  corrections: CorrectionCounts;
  sources: SourceView[];
  sourceCounts: { tracked: number; overflow: number; forgotten: number };
}

/** Read when scraped: the task's counters are plain numbers, kept without work on the hot path. */
export function taskView({ task, state }: OwnedTask): TaskView {
  return {
    id: task.id,
    state,
    watermark: task.watermark,
    recordsIn: task.counters.recordsIn,
    late: task.counters.late,
    dlq: task.counters.dlq,
    openWindows: task.openWindows(),
    stores: [...task.stores.values()].map((s) => ({ name: s.name, size: s.size, evictions: s.evictions })),
    corrections: task.corrections(),
    sources: task.tracker.sources(),
    sourceCounts: task.tracker.sourceCounts(),
  };
}

export interface WorkerView {
  appId: string;
  /** Records written per target (topic or sink:name), counted as plain numbers on the hot path. */
  recordsOut(): Map<string, number>;
  tasks(): TaskView[];
  lag(): Array<{ topic: string; partition: number; lag: number }>;
  /** Whether Kafka answered the last start-up step, and how many attempts it did not. */
  kafkaState(): { reachable: boolean; connectRetries: number };
  healthy(): Health;
}

export class WorkerMetrics {
  readonly registry = new Registry();
  readonly restoreSeconds: Histogram;
  readonly commitSeconds: Histogram;
  /** Purges of repartition topics (repartition-purge.ts), by result. */
  readonly repartitionPurges: Counter<"result">;

  constructor(view: WorkerView) {
    const labels = { app: view.appId };
    this.registry.setDefaultLabels(labels);
    const v = view;
    const reg = [this.registry];
    new Gauge({
      name: "weir_stream_records_in_total",
      help: "Records read from source topics by each task this worker owns (restarts at 0 when a task moves here).",
      labelNames: ["task"],
      registers: reg,
      collect() {
        this.reset();
        for (const t of v.tasks()) this.set({ task: t.id }, t.recordsIn);
      },
    });
    new Counter({
      name: "weir_stream_records_out_total",
      help: "Records written, by target (topic or sink).",
      labelNames: ["target"],
      registers: reg,
      collect() {
        this.reset();
        for (const [target, n] of v.recordsOut()) this.inc({ target }, n);
      },
    });
    new Gauge({
      name: "weir_stream_consumer_lag",
      help: "Records behind the end of each consumed partition, as of its last fetch.",
      labelNames: ["topic", "partition"],
      registers: reg,
      collect() {
        this.reset();
        for (const l of v.lag()) this.set({ topic: l.topic, partition: String(l.partition) }, l.lag);
      },
    });
    new Gauge({
      name: "weir_stream_watermark_delay_seconds",
      help: "Wall clock minus the task's watermark.",
      labelNames: ["task"],
      registers: reg,
      collect() {
        this.reset();
        const now = Date.now();
        for (const t of v.tasks())
          if (Number.isFinite(t.watermark)) this.set({ task: t.id }, (now - t.watermark) / 1000);
      },
    });
    new Gauge({
      name: "weir_stream_late_records_total",
      help: "Records that arrived after their window closed (sent to the late side output).",
      labelNames: ["task"],
      registers: reg,
      collect() {
        this.reset();
        for (const t of v.tasks()) this.set({ task: t.id }, t.late);
      },
    });
    new Gauge({
      name: "weir_stream_dead_letters_total",
      help: "Records dead-lettered (or skipped), by reason.",
      labelNames: ["reason"],
      registers: reg,
      collect() {
        this.reset();
        const sums = new Map<string, number>();
        for (const t of v.tasks()) for (const [r, n] of t.dlq) sums.set(r, (sums.get(r) ?? 0) + n);
        for (const [r, n] of sums) this.set({ reason: r }, n);
      },
    });
    new Gauge({
      name: "weir_stream_open_windows",
      help: "Open windows and buffered join records, by task.",
      labelNames: ["task"],
      registers: reg,
      collect() {
        this.reset();
        for (const t of v.tasks()) this.set({ task: t.id }, t.openWindows);
      },
    });
    new Gauge({
      name: "weir_stream_state_entries",
      help: "Entries in each state store, by task.",
      labelNames: ["task", "store"],
      registers: reg,
      collect() {
        this.reset();
        for (const t of v.tasks()) for (const s of t.stores) this.set({ task: t.id, store: s.name }, s.size);
      },
    });
    new Gauge({
      name: "weir_stream_tasks",
      help: "Tasks owned by this worker, by state.",
      labelNames: ["state"],
      registers: reg,
      collect() {
        this.reset();
        const ts = v.tasks();
        this.set({ state: "running" }, ts.filter((t) => t.state === "running").length);
        this.set({ state: "restoring" }, ts.filter((t) => t.state === "restoring").length);
      },
    });
    new Gauge({
      name: "weir_stream_corrected_records_total",
      help: "Late records that changed a window already closed, within its allowed lateness (its result is emitted again).",
      labelNames: ["task"],
      registers: reg,
      collect() {
        this.reset();
        for (const t of v.tasks()) this.set({ task: t.id }, t.corrections.records);
      },
    });
    new Gauge({
      name: "weir_stream_corrections_total",
      help: "Corrected window results emitted (one per window and checkpoint with late records).",
      labelNames: ["task"],
      registers: reg,
      collect() {
        this.reset();
        for (const t of v.tasks()) this.set({ task: t.id }, t.corrections.emitted);
      },
    });
    new Gauge({
      name: "weir_stream_closed_windows",
      help: "Closed windows kept for corrections (allowed lateness), by task.",
      labelNames: ["task"],
      registers: reg,
      collect() {
        this.reset();
        for (const t of v.tasks()) this.set({ task: t.id }, t.corrections.kept);
      },
    });
    new Gauge({
      name: "weir_stream_closed_windows_dropped_total",
      help: "Closed windows dropped before their allowed lateness ran out, for room (maxClosed): later records for them are late.",
      labelNames: ["task"],
      registers: reg,
      collect() {
        this.reset();
        for (const t of v.tasks()) this.set({ task: t.id }, t.corrections.evicted);
      },
    });
    new Gauge({
      name: "weir_stream_sources",
      help: "Sources (weir-source: a host's log file) of the task's partitions, by state: active, idle (silent), lagging (further than maxSourceLag behind).",
      labelNames: ["task", "state"],
      registers: reg,
      collect() {
        this.reset();
        for (const t of v.tasks()) {
          const n = { active: 0, idle: 0, lagging: 0 };
          for (const s of t.sources) n[s.status]++;
          for (const [state, count] of Object.entries(n)) this.set({ task: t.id, state }, count);
        }
      },
    });
    new Gauge({
      name: "weir_stream_source_overflow_total",
      help: "Records counted as their partition's own because maxSources sources were tracked and none was idle.",
      labelNames: ["task"],
      registers: reg,
      collect() {
        this.reset();
        for (const t of v.tasks()) this.set({ task: t.id }, t.sourceCounts.overflow);
      },
    });
    new Gauge({
      name: "weir_stream_source_lag_seconds",
      help: `How far (event time) each source is behind its partition's most advanced source; the ${SOURCES_SHOWN} furthest behind per task.`,
      labelNames: ["task", "source", "state"],
      registers: reg,
      collect() {
        this.reset();
        for (const t of v.tasks())
          for (const s of furthestBehind(t.sources))
            this.set({ task: t.id, source: s.source, state: s.status }, s.lagMs / 1000);
      },
    });
    new Gauge({
      name: "weir_stream_source_behind_records_total",
      help: `Records that arrived at or behind their task's watermark (late or corrections downstream), per source; the ${SOURCES_SHOWN} furthest behind per task.`,
      labelNames: ["task", "source"],
      registers: reg,
      collect() {
        this.reset();
        for (const t of v.tasks())
          for (const s of furthestBehind(t.sources)) this.set({ task: t.id, source: s.source }, s.behind);
      },
    });
    new Gauge({
      name: "weir_stream_kafka_reachable",
      help: "0 while the worker waits for Kafka to answer at start (see /health for why), else 1.",
      registers: reg,
      collect() {
        this.set(v.kafkaState().reachable ? 1 : 0);
      },
    });
    new Counter({
      name: "weir_stream_kafka_connect_retries_total",
      help: "Start-up steps tried again because Kafka did not answer.",
      registers: reg,
      collect() {
        this.reset();
        this.inc(v.kafkaState().connectRetries);
      },
    });
    this.restoreSeconds = new Histogram({
      name: "weir_stream_restore_seconds",
      help: "Time to restore a task's state from its changelogs.",
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: reg,
    });
    this.repartitionPurges = new Counter({
      name: "weir_stream_repartition_purges_total",
      help: "Deletions of committed records from repartition topics, by result (ok, failed); one per topic purged.",
      labelNames: ["result"],
      registers: reg,
    });
    this.commitSeconds = new Histogram({
      name: "weir_stream_commit_seconds",
      help: "Checkpoint latency: flush sinks, flush changelogs, commit offsets.",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: reg,
    });
  }
}

/** Serves a worker's /metrics and /health; port 0 picks a free one. */
export function serveObservability(
  metrics: WorkerMetrics,
  view: WorkerView,
  port: number,
  host = "127.0.0.1",
): Promise<{ server: Server; port: number }> {
  return serveMetrics(metrics.registry, () => view.healthy(), port, host);
}

/** The sources worth a series of their own: the furthest behind, then those with records behind the watermark. */
function furthestBehind(sources: SourceView[]): SourceView[] {
  if (sources.length <= SOURCES_SHOWN) return sources;
  return [...sources].sort((a, b) => b.lagMs - a.lagMs || b.behind - a.behind).slice(0, SOURCES_SHOWN);
}
