// `weir simulate`: a run of the traffic generator into files or Kafka, as fast as possible or paced
// to the wall clock, with its ground truth and (for files) a manifest of every stream written.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { KafkaSecurity } from "../../kafka/security.ts";
import type { EventWriter, StreamSummary } from "./event-writer.ts";
import { TrafficGenerator } from "./generator.ts";
import { GroundTruth } from "./ground-truth.ts";
import { KafkaEventWriter } from "./kafka-event-writer.ts";
import { LogFileWriter, type RotationMode } from "./log-file-writer.ts";
import { TOPIC_OF } from "./platform.ts";
import { Rng } from "./random.ts";
import { loadScenario } from "./scenario.ts";

/** 2026-11-20 20:30 in Beijing: the evening peak, and the same for every run that does not say otherwise. */
export const DEFAULT_START = Date.UTC(2026, 10, 20, 12, 30, 0);

export interface SimulateOptions {
  seed: number;
  /** Simulated start, ms since the epoch; default DEFAULT_START, or now with `realtime`. */
  start?: number;
  /** Simulated length in ms. */
  durationMs?: number;
  /** Stop after about this many records. */
  events?: number;
  rate: number;
  diurnal: boolean;
  users: number;
  streamers: number;
  scenario: string;
  fraud: number;
  dirty: number;
  oversizeBytes: number;
  to: "files" | "kafka";
  out?: string;
  brokers?: string[];
  /** With `to: kafka`: put before every catalog topic's name (a private copy of the topics). */
  topicPrefix?: string;
  /** TLS and SASL of those brokers (kafka/security.ts). */
  kafkaSecurity?: KafkaSecurity | undefined;
  rotateBytes: number;
  rotation: RotationMode;
  keep: number;
  realtime: boolean;
  signal?: AbortSignal;
  /** Called about once a second of wall time with records written so far. */
  onProgress?: (written: number, simulatedMs: number) => void;
}

/** What a run does unless told otherwise (the command line's defaults too). */
export const SIMULATE_DEFAULTS = {
  seed: 1,
  rate: 2000,
  diurnal: true,
  users: 200_000,
  streamers: 2000,
  scenario: "default",
  fraud: 1,
  dirty: 0,
  oversizeBytes: 1_310_720,
  to: "files",
  rotateBytes: 4 * 1024 * 1024,
  rotation: "rename",
  keep: 0,
  realtime: false,
} as const satisfies Omit<
  SimulateOptions,
  "start" | "durationMs" | "events" | "out" | "brokers" | "topicPrefix" | "signal" | "onProgress"
>;

export interface SimulateResult {
  records: number;
  lines: number;
  bytes: number;
  dirty: number;
  start: number;
  simulatedMs: number;
  wallMs: number;
  streams: StreamSummary[];
  truthFile?: string;
  manifestFile?: string;
}

export async function simulate(opts: SimulateOptions): Promise<SimulateResult> {
  const start = opts.start ?? (opts.realtime ? Date.now() : DEFAULT_START);
  const runMs = opts.durationMs ?? (opts.events ? Math.ceil((opts.events / opts.rate) * 1000) : 60_000);
  const maxRecords = opts.events ?? Number.POSITIVE_INFINITY;
  const scenario = loadScenario(opts.scenario);
  if (opts.to === "files" && !opts.out) throw new Error("--out DIR is needed to write files");
  const truthFile = opts.out ? join(opts.out, "ground-truth.jsonl") : undefined;

  let writer: EventWriter;
  let truth: GroundTruth;
  // Dirty lines draw from their own stream: the valid traffic is the same with or without them.
  const dirtyRng = new Rng(opts.seed ^ 0x5eed_d1e7);
  if (opts.to === "files") {
    const dir = opts.out as string;
    mkdirSync(dir, { recursive: true });
    truth = new GroundTruth(truthFile);
    writer = new LogFileWriter({
      dir,
      rotateBytes: opts.rotateBytes,
      rotation: opts.rotation,
      keep: opts.keep,
      dirtyRate: opts.dirty,
      oversizeBytes: opts.oversizeBytes,
      rng: dirtyRng,
      truth,
    });
  } else {
    if (opts.out) mkdirSync(opts.out, { recursive: true });
    truth = new GroundTruth(truthFile);
    const kafka = new KafkaEventWriter(
      opts.brokers ?? [],
      truth,
      opts.dirty,
      dirtyRng,
      opts.kafkaSecurity,
      opts.topicPrefix ?? "",
    );
    await kafka.connect();
    writer = kafka;
  }

  truth.add({
    kind: "run",
    seed: opts.seed,
    start,
    scenario: opts.scenario,
    rate: opts.rate,
    users: opts.users,
    dirtyRate: opts.dirty,
    fraudIntensity: opts.fraud,
  });
  const gen = new TrafficGenerator(
    {
      seed: opts.seed,
      start,
      runMs,
      rate: opts.rate,
      diurnal: opts.diurnal,
      users: opts.users,
      streamers: opts.streamers,
      scenario,
      scenarioName: opts.scenario,
      fraud: opts.fraud,
    },
    writer,
    truth,
  );

  const wallStart = Date.now();
  let lastProgress = wallStart;
  const isKafka = opts.to === "kafka";
  try {
    for (;;) {
      if (opts.signal?.aborted) break;
      let more: boolean;
      if (opts.realtime) {
        more = gen.runUntil(start + (Date.now() - wallStart), maxRecords);
        await writer.flush();
        if (more) await sleep(50);
      } else {
        // Chunks of simulated time; Kafka's sends are awaited between them so memory stays bounded.
        more = gen.runUntil(gen.now + 2_000, isKafka ? Math.min(maxRecords, writer.written + 20_000) : maxRecords);
        if (isKafka) await writer.flush();
        else if (opts.onProgress) await new Promise(setImmediate);
      }
      if (opts.onProgress && Date.now() - lastProgress >= 1000) {
        lastProgress = Date.now();
        opts.onProgress(writer.written, gen.now - start);
      }
      if (!more) break;
    }
  } finally {
    gen.finish();
  }
  const streams = await writer.close();
  const lines = streams.reduce((n, s) => n + s.lines, 0);
  const dirty = streams.reduce((n, s) => n + s.dirty, 0);
  const simulatedMs = Math.max(0, Math.floor(Math.min(gen.now, gen.end) - start));
  truth.add({
    kind: "summary",
    end: start + simulatedMs,
    events: streams.reduce((n, s) => n + s.events, 0),
    lines,
    dirty,
    byStream: Object.fromEntries(streams.map((s) => [s.name, { events: s.events, lines: s.lines, dirty: s.dirty }])),
  });
  truth.close();

  let manifestFile: string | undefined;
  if (opts.out) {
    manifestFile = join(opts.out, "manifest.json");
    const manifest = {
      generator: "weir simulate",
      seed: opts.seed,
      scenario: opts.scenario,
      start,
      end: start + simulatedMs,
      rate: opts.rate,
      to: opts.to,
      rotateBytes: opts.rotateBytes,
      streams: streams.map((s) => ({
        ...s,
        path: opts.to === "files" ? `${s.service}/${s.kind}.log` : null,
        topic: `${opts.to === "kafka" ? (opts.topicPrefix ?? "") : ""}${TOPIC_OF[s.kind]}`,
        rotation: opts.to === "files" ? rotationOf(opts.rotation, streams.indexOf(s)) : null,
      })),
    };
    writeFileSync(manifestFile, `${JSON.stringify(manifest, null, 2)}\n`);
  }
  return {
    records: writer.written,
    lines,
    bytes: streams.reduce((n, s) => n + s.bytes, 0),
    dirty,
    start,
    simulatedMs,
    wallMs: Date.now() - wallStart,
    streams,
    ...(truthFile ? { truthFile } : {}),
    ...(manifestFile ? { manifestFile } : {}),
  };
}

function rotationOf(mode: RotationMode, index: number): string {
  return mode === "mixed" ? (index % 2 === 0 ? "rename" : "copytruncate") : mode;
}
