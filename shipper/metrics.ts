// The shipper's Prometheus metrics. Counters are plain numbers kept by the parts on their hot paths;
// the registry reads them when scraped, so shipping a line costs no metric call.
import { statSync } from "node:fs";
import { Gauge, Histogram, Registry } from "prom-client";
import type { FileState } from "./types.ts";

/** What the metrics read from a running agent. */
export interface ShipView {
  sources(): Array<{ name: string; lines: number; bytes: number; states: FileState[] }>;
  /** Acknowledged offset of a file, for its lag. */
  ackedOffset(fileId: string): number;
  sent(): Map<string, number>;
  deadLetters(): Map<string, number>;
  /** `bytes`: not yet acknowledged; `fill`: what the channel's files hold over its bound (maxBytes); `diskFull*`: writes that found the disk full. */
  channel(): { bytes: number; records: number; fill: number; diskFullTimes: number; diskFullMs: number };
  /** `failing` counts a send in flight longer than stallMs too; `waitingMs`: the oldest record waiting for Kafka. */
  sink(): { retries: number; refused: number; failing: number; waitingMs: number };
}

export class ShipMetrics {
  readonly registry = new Registry();
  readonly sendSeconds: Histogram;

  constructor(view: ShipView) {
    const reg = [this.registry];
    const v = view;
    const counter = (name: string, help: string, labelNames: string[], read: (g: Gauge) => void) =>
      new Gauge({
        name,
        help,
        labelNames,
        registers: reg,
        collect() {
          this.reset();
          read(this);
        },
      });
    // Counters are exposed as gauges read at scrape time: a restart begins them at 0 again, which
    // rate() handles like a counter reset.
    counter("weir_ship_lines_read_total", "Lines read, by source.", ["source"], (g) => {
      for (const s of v.sources()) g.set({ source: s.name }, s.lines);
    });
    counter("weir_ship_bytes_read_total", "Bytes read, by source.", ["source"], (g) => {
      for (const s of v.sources()) g.set({ source: s.name }, s.bytes);
    });
    counter(
      "weir_ship_events_sent_total",
      "Events Kafka acknowledged, by topic (dead letters included).",
      ["topic"],
      (g) => {
        for (const [topic, n] of v.sent()) g.set({ topic }, n);
      },
    );
    counter("weir_ship_dead_letters_total", "Lines sent to the dead-letter topic, by reason.", ["reason"], (g) => {
      for (const [reason, n] of v.deadLetters()) g.set({ reason }, n);
    });
    counter(
      "weir_ship_kafka_retries_total",
      "Batches sent again after a failed send, or one without an answer within kafka.sendTimeoutMs.",
      [],
      (g) => g.set(v.sink().retries),
    );
    counter("weir_ship_kafka_refused_total", "Records Kafka refused for good (dead-lettered).", [], (g) =>
      g.set(v.sink().refused),
    );
    counter(
      "weir_ship_file_lag_bytes",
      "Bytes of a file not yet acknowledged by Kafka (size minus acknowledged offset).",
      ["source", "path"],
      (g) => {
        for (const s of v.sources())
          for (const f of s.states)
            if (f.open) g.set({ source: s.name, path: f.path }, Math.max(0, currentSize(f) - v.ackedOffset(f.fileId)));
      },
    );
    counter("weir_ship_open_files", "Files open, by source.", ["source"], (g) => {
      for (const s of v.sources()) g.set({ source: s.name }, s.states.filter((f) => f.open).length);
    });
    counter(
      "weir_ship_open_deleted_files",
      "Files deleted while open: their disk space is held until they are read to the end.",
      ["source"],
      (g) => {
        for (const s of v.sources()) g.set({ source: s.name }, s.states.filter((f) => f.open && f.deleted).length);
      },
    );
    counter("weir_ship_channel_bytes", "Bytes in the disk channel not yet acknowledged by Kafka.", [], (g) =>
      g.set(v.channel().bytes),
    );
    counter("weir_ship_channel_records", "Records in the disk channel not yet acknowledged by Kafka.", [], (g) =>
      g.set(v.channel().records),
    );
    counter(
      "weir_ship_channel_fill_ratio",
      "What the disk channel's files hold (acknowledged records not yet deleted included) over channel.maxBytes; sources pause at 1.",
      [],
      (g) => g.set(v.channel().fill),
    );
    counter(
      "weir_ship_channel_disk_full_total",
      "Times a write to the disk channel found its disk full (ENOSPC, EDQUOT) and waited.",
      [],
      (g) => g.set(v.channel().diskFullTimes),
    );
    counter(
      "weir_ship_channel_disk_full_seconds",
      "How long the channel's write now waiting for disk space has waited (0 when none waits).",
      [],
      (g) => g.set(v.channel().diskFullMs / 1000),
    );
    counter(
      "weir_ship_kafka_failing",
      "Produce attempts failed in a row, plus one while a send has waited longer than kafka.stallMs (0 when Kafka takes batches).",
      [],
      (g) => g.set(v.sink().failing),
    );
    counter(
      "weir_ship_kafka_unacknowledged_seconds",
      "How long the batch being sent has waited for Kafka's acknowledgement (0 when none waits).",
      [],
      (g) => g.set(v.sink().waitingMs / 1000),
    );
    this.sendSeconds = new Histogram({
      name: "weir_ship_kafka_send_seconds",
      help: "Time from sending a batch to Kafka's acknowledgement (acks=all).",
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers: reg,
    });
  }
}

/** A paused source does not look at its files: their size is asked for when scraped (same inode only). */
function currentSize(f: FileState): number {
  try {
    const st = statSync(f.path);
    return st.ino === f.ino && st.dev === f.dev ? st.size : f.size;
  } catch {
    return f.size;
  }
}
