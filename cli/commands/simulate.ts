import { existsSync, readdirSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import type { RotationMode } from "../../infra/simulator/log-file-writer.ts";
import { loadScenario, PRESETS, parseDuration } from "../../infra/simulator/scenario.ts";
import { SIMULATE_DEFAULTS as D, simulate } from "../../infra/simulator/simulate.ts";
import { clientEndpoints } from "../../infra/stack/config.ts";
import { kafkaSecurityFromEnv } from "../../kafka/security.ts";
import { UsageError } from "../errors.ts";
import { formatBytes, printTable } from "../table.ts";

export function simulateCommand(): Command {
  return new Command("simulate")
    .description(
      "generate a live-streaming platform's traffic: service log files (rotated like logrotate) or Avro events in Kafka, with a ground truth",
    )
    .option("--seed <n>", "the same seed gives byte-identical output", int, D.seed)
    .option(
      "--duration <d>",
      "simulated time to cover: 60s, 10m, 1h (default 60s, or what --events needs at --rate)",
      duration,
    )
    .option("--events <n>", "stop after about this many records", int)
    .option("--rate <n>", "records per second of simulated time at the evening peak", int, D.rate)
    .option("--out <dir>", "where the log files, ground-truth.jsonl and manifest.json go (default ./weir-sim)")
    .option("--force", "replace the output of an earlier run in --out")
    .addOption(
      new Option("--to <target>", "write service log files, or produce Avro to the catalog's topics")
        .choices(["files", "kafka"])
        .default(D.to),
    )
    .option(
      "--topic-prefix <prefix>",
      "with --to kafka: produce to <prefix><catalog topic> (e.g. test.run1.logs.access; the topics must exist)",
    )
    .option(
      "--brokers <list>",
      "Kafka bootstrap servers for --to kafka (default: WEIR_KAFKA_BROKERS, else the local stack)",
    )
    .option(
      "--scenario <name|file>",
      `what happens besides normal traffic: ${Object.keys(PRESETS).join(", ")}, or a YAML file`,
      D.scenario,
    )
    .option("--fraud <x>", "size of every fraud campaign, as a multiple; 0 for none", float, D.fraud)
    .option(
      "--dirty <rate>",
      "share of lines followed by a bad one (malformed JSON, wrong types, invalid UTF-8, oversized)",
      float,
      D.dirty,
    )
    .option("--dirty-oversize <size>", "size of an oversized dirty line", size, D.oversizeBytes)
    .option("--users <n>", "users at the start", int, D.users)
    .option("--streamers <n>", "streamers, each with a room", int, D.streamers)
    .option("--rotate-size <size>", "rotate a log file once it passes this size: 64MiB, 512KiB", size, D.rotateBytes)
    .addOption(
      new Option(
        "--rotation <mode>",
        "how files rotate: rename + create, copytruncate, or both (alternating by stream)",
      )
        .choices(["rename", "copytruncate", "mixed"])
        .default(D.rotation),
    )
    .option("--keep <n>", "rotated files kept per stream (0: all)", int, D.keep)
    .option("--realtime", "pace records to the wall clock (start: now) for demos and latency tests")
    .option(
      "--start <time>",
      "simulated start, ISO-8601 or 'now' (default 2026-11-20T12:30:00Z, Beijing's evening peak)",
    )
    .option("--no-diurnal", "a flat rate instead of the daily curve")
    .action(async (o: SimulateCliOptions) => {
      const out = resolve(o.out ?? "weir-sim");
      loadScenario(o.scenario); // a mistake in it must not cost the earlier run that --force would replace
      if (o.to === "files" || o.out) prepareOut(out, !!o.force);
      const controller = new AbortController();
      process.once("SIGINT", () => controller.abort());
      process.once("SIGTERM", () => controller.abort());
      const start = o.start === undefined ? undefined : o.start === "now" ? Date.now() : Date.parse(o.start);
      if (start !== undefined && Number.isNaN(start))
        throw new UsageError(`--start ${o.start} is not a time`, "use ISO-8601 (2026-11-20T12:30:00Z) or now");
      const result = await simulate({
        seed: o.seed,
        ...(start !== undefined ? { start } : {}),
        ...(o.duration !== undefined ? { durationMs: o.duration } : {}),
        ...(o.events !== undefined ? { events: o.events } : {}),
        rate: o.rate,
        diurnal: o.diurnal,
        users: o.users,
        streamers: o.streamers,
        scenario: o.scenario,
        fraud: o.fraud,
        dirty: o.dirty,
        oversizeBytes: o.dirtyOversize,
        to: o.to,
        ...(o.to === "files" || o.out ? { out } : {}),
        brokers: o.brokers ? o.brokers.split(",") : clientEndpoints().kafkaBrokers,
        ...(o.topicPrefix ? { topicPrefix: o.topicPrefix } : {}),
        kafkaSecurity: o.brokers ? kafkaSecurityFromEnv() : clientEndpoints().kafkaSecurity,
        rotateBytes: o.rotateSize,
        rotation: o.rotation,
        keep: o.keep,
        realtime: !!o.realtime,
        signal: controller.signal,
        onProgress: (n, ms) =>
          process.stderr.write(`\r${n.toLocaleString("en")} records, ${(ms / 1000).toFixed(0)} s simulated   `),
      });
      process.stderr.write("\r");
      printTable(
        ["STREAM", o.to === "files" ? "FORMAT" : "TOPIC", "RECORDS", "LINES", "DIRTY", "SIZE", "ROTATIONS"],
        result.streams.map((s) => [
          s.name,
          o.to === "files" ? s.format : s.kind,
          String(s.events),
          String(s.lines),
          String(s.dirty),
          o.to === "files" ? formatBytes(s.bytes) : "-",
          String(s.rotations),
        ]),
      );
      const secs = result.wallMs / 1000;
      console.log(
        `\n${result.records.toLocaleString("en")} records (${result.lines.toLocaleString("en")} lines, ${result.dirty} dirty) covering ${(result.simulatedMs / 1000).toFixed(0)} s from ${new Date(result.start).toISOString()}, written in ${secs.toFixed(1)} s (${Math.round(result.records / Math.max(secs, 0.001)).toLocaleString("en")} records/s)`,
      );
      if (result.truthFile) console.log(`ground truth  ${result.truthFile}`);
      if (result.manifestFile) console.log(`manifest      ${result.manifestFile}`);
      if (o.to === "files") console.log(`logs          ${out}/<service>/<kind>.log`);
    });
}

interface SimulateCliOptions {
  seed: number;
  duration?: number;
  events?: number;
  rate: number;
  out?: string;
  force?: boolean;
  to: "files" | "kafka";
  brokers?: string;
  topicPrefix?: string;
  scenario: string;
  fraud: number;
  dirty: number;
  dirtyOversize: number;
  users: number;
  streamers: number;
  rotateSize: number;
  rotation: RotationMode;
  keep: number;
  realtime?: boolean;
  start?: string;
  diurnal: boolean;
}

/** An output folder must be empty, or hold an earlier simulator run that --force may replace. */
function prepareOut(dir: string, force: boolean): void {
  if (!existsSync(dir) || readdirSync(dir).length === 0) return;
  const earlierRun = existsSync(join(dir, "manifest.json")) || existsSync(join(dir, "ground-truth.jsonl"));
  if (!earlierRun) throw new UsageError(`${dir} is not empty and holds no simulator output`, "choose another --out");
  if (!force) throw new UsageError(`${dir} holds an earlier run`, "add --force to replace it, or choose another --out");
  rmSync(dir, { recursive: true, force: true });
}

function int(v: string): number {
  if (!/^\d+$/.test(v.replaceAll("_", ""))) throw new InvalidArgumentError("not a whole number");
  return Number(v.replaceAll("_", ""));
}

function float(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError("not a non-negative number");
  return n;
}

function duration(v: string): number {
  try {
    return parseDuration(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

function size(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KiB|KB|MiB|MB|GiB|GB)?$/i.exec(v);
  if (!m) throw new InvalidArgumentError("a size such as 64MiB, 512KiB or 1048576");
  const unit = (m[2] ?? "B").toLowerCase();
  const mult = unit.startsWith("g") ? 1024 ** 3 : unit.startsWith("m") ? 1024 ** 2 : unit.startsWith("k") ? 1024 : 1;
  return Math.round(Number(m[1]) * mult);
}
