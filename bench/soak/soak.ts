// The soak: the main job's processes left running under the simulator's load for a long time, watched
// from outside. `weir simulate --realtime` writes service log files at a flat rate, `weir ship` tails
// them into Kafka, and `weir run health|logs|fraud|hotkeys` and `weir console` (the alert board, risk
// and hot-key pages following their topics) run as separate processes, each on topics, a consumer
// group, a ClickHouse database, an index prefix and Redis keys of this run alone (so it disturbs no one
// on a shared stack). Every few seconds it samples each process's RSS and CPU from /proc and each
// group's lag. Then the simulator stops, everything drains, and it checks:
// - nothing lost: every record the simulator wrote is in its Kafka topic (counted by kcat, not weir),
//   every access and app line in Elasticsearch and in ClickHouse, the health rows equal to the oracle
//   computed from the files (test/support/health.ts), every alert on the console's board, no DLQ record;
// - resident memory bounded and lag not growing over the steady part of the run (verdict.ts);
// - every process up until stopped, and stopping cleanly.
// `npm run soak -- --minutes 30` runs it (main.ts); test/chaos/soak.test.ts runs a short one in npm test.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import type { Admin } from "kafkajs";
import { parse, stringify } from "yaml";
import { PROJECT_ROOT } from "../../infra/stack/config.ts";
import { DEFAULT_SLO_FILE, SloConfig } from "../../pipelines/health/slo.ts";
import { splitStatements } from "../../sinks/clickhouse/migrate.ts";
import {
  type AccessLog,
  closeWindows,
  compareRows,
  HOUR,
  LEVELS,
  oracle,
  readAccessLines,
  totalsByLevel,
  WINDOWS,
} from "../../test/support/health.ts";
import { ensureKcat, kcatSecurity } from "../../test/support/kcat.ts";
import { simulatorShipConfig } from "../../test/support/ship.ts";
import {
  clickhouseClient,
  elasticsearchClient,
  endpoints,
  kafkaClient,
  requireStack,
  uniqueName,
} from "../../test/support/stack.ts";
import { type Proc, processes, tail } from "../support/process.ts";
import { hotKeysConfigCopy } from "./hotkeys-config.ts";
import { cpuMsOf, groupLag, machineTicks, metricOf, repartitionTopics, rssOf } from "./sampler.ts";
import { type LagVerdict, lagVerdict, type Point, type RssVerdict, rssVerdict, warmupFor } from "./verdict.ts";

export interface SoakOptions {
  /** Wall-clock minutes of simulated traffic. */
  minutes: number;
  /** Records per second, flat (`weir simulate --rate`, its default 2000, with --no-diurnal). */
  rate: number;
  seed: number;
  sampleSeconds: number;
  /** RSS bounded: the last third's peak at most this share above the first third's. */
  rssTolerance: number;
  /** Lag not growing: the fitted line rises by less than this many seconds of the group's input ... */
  lagInputSeconds: number;
  /** ... and never less than this many records. */
  lagFloor: number;
  /** How long the drain may take after the simulator stops. */
  drainSeconds: number;
  /** Keep the work folder (simulator files, process logs) instead of deleting it. */
  keep: boolean;
  /** Aborting ends the run early: the processes are stopped and everything the run made is removed. */
  signal?: AbortSignal;
  log(line: string): void;
}

export const SOAK_DEFAULTS: Omit<SoakOptions, "minutes" | "log" | "signal"> = {
  rate: 2000,
  seed: 1,
  sampleSeconds: 10,
  rssTolerance: 0.2,
  lagInputSeconds: 5,
  lagFloor: 1000,
  drainSeconds: 300,
  keep: false,
};

/** One sample: seconds since the simulator started, then per process and per group. */
export interface Sample {
  t: number;
  rss: Record<string, number>;
  cpuMs: Record<string, number>;
  lag: Record<string, number>;
  /** Per group, the sum of its topics' end offsets (its input so far). */
  ends: Record<string, number>;
  /** The whole machine's CPU ticks (/proc/stat), busy and in all: what else ran beside the soak. */
  machine: { busy: number; total: number };
}

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface ProcessSummary {
  name: string;
  judged: boolean;
  rss: RssVerdict | null;
  peakRss: number;
  cpuSeconds: number;
  /** Mean cores used between the end of the warm-up and the simulator's stop. */
  steadyCores: number;
  exitCode: number | null | undefined;
}

export interface GroupSummary {
  name: string;
  inputRate: number;
  maxLag: number;
  finalLag: number;
  verdict: LagVerdict;
}

export interface SoakResult {
  id: string;
  options: Omit<SoakOptions, "log">;
  startedAt: Date;
  machine: string;
  /** Busy cores of the whole machine over the steady load, and of the soak's processes among them. */
  machineCores: number;
  soakCores: number;
  /** Seconds since the simulator started: end of warm-up, end of the load (the simulator stopped), drained. */
  warmupS: number;
  loadEndS: number;
  drainedS: number | null;
  records: number;
  byKind: Record<string, number>;
  samples: Sample[];
  processes: ProcessSummary[];
  groups: GroupSummary[];
  checks: Check[];
  ok: boolean;
  workDir: string;
}

/** The processes whose memory is judged; the simulator is the load, not weir, and is only shown. */
const JUDGED = new Set(["ship", "health", "logs", "fraud", "hotkeys", "console"]);
const SERVICES = ["user-svc", "room-svc", "im-svc", "social-svc", "gift-svc", "pay-svc", "device-svc"];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class SoakInterrupted extends Error {}

export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const o = options;
  const interrupted = () => {
    if (o.signal?.aborted)
      throw new SoakInterrupted("interrupted: the processes are stopped and the run's names removed");
  };
  // A shared stack can be briefly unhealthy (an index being created turns Elasticsearch red): a minute of grace.
  for (let tries = 0; ; tries++) {
    try {
      await requireStack();
      break;
    } catch (e) {
      if (tries >= 12) throw e;
      await sleep(5000);
    }
  }
  const id = uniqueName("soak").replaceAll("_", "-");
  const prefix = `${id}.`;
  const database = id.replaceAll("-", "_");
  const work = mkdtempSync(join(tmpdir(), "weir-soak-"));
  const simDir = join(work, "sim");
  const logDir = join(work, "logs");
  mkdirSync(simDir);
  mkdirSync(logDir);
  o.log(`soak ${id}: ${o.minutes} min at ${o.rate} records/s; work folder ${work}`);

  const topic = (name: string) => `${prefix}${name}`;
  const groups = {
    health: { appId: `${id}-health`, inputs: [topic("logs.access")] },
    logs: { appId: `${id}-logs`, inputs: [topic("logs.app"), topic("logs.access")] },
    fraud: {
      appId: `${id}-fraud`,
      inputs: [topic("events.behavior"), topic("events.coin"), topic("events.device")],
    },
    hotkeys: { appId: `${id}-hotkeys`, inputs: [topic("logs.access"), topic("events.coin"), topic("events.behavior")] },
  };
  const shipTopics = {
    access: topic("logs.access"),
    app: topic("logs.app"),
    behavior: topic("events.behavior"),
    coin: topic("events.coin"),
    device: topic("events.device"),
    dlq: topic("dlq.ship"),
  };
  const dlqs = [topic("dlq.ship"), topic("dlq.logs"), topic("dlq.health"), topic("dlq.fraud"), topic("dlq.hotkeys")];

  const admin = kafkaClient("weir-soak").admin();
  const ch = clickhouseClient();
  const es = elasticsearchClient();
  const redis = new Redis(endpoints.redisUrl, {
    lazyConnect: true,
    maxRetriesPerRequest: 2,
    ...(endpoints.redisPassword !== undefined ? { password: endpoints.redisPassword } : {}),
  });
  const procs = new Map<string, Proc>();
  const checks: Check[] = [];
  const samples: Sample[] = [];
  const check = (name: string, ok: boolean, detail: string) => {
    checks.push({ name, ok, detail });
    o.log(`${ok ? "ok  " : "FAIL"} ${name}: ${detail}`);
  };
  let sampling = false;
  let samplerDone: Promise<void> = Promise.resolve();
  let t0 = Date.now();
  let loadEndS = 0;
  let drainedS: number | null = null;
  let records = 0;
  const byKind: Record<string, number> = {};
  const exitCodes = new Map<string, number | null | undefined>();
  const startedAt = new Date();
  /** Set once every check ran: a clean stop is judged then, not after a failure mid-start. */
  let reachedEnd = false;

  try {
    await admin.connect();
    await createCatalogCopy(admin, prefix);
    await createDatabase(ch, database);

    // ---- the processes ----
    const { start } = processes(logDir);
    const weir = (name: string, args: string[], env: Record<string, string> = {}) => {
      const p = start(name, process.execPath, [join(PROJECT_ROOT, "cli/weir.mjs"), ...args], {
        WEIR_KAFKA_BROKERS: endpoints.kafkaBrokers.join(","),
        ...env,
      });
      procs.set(name, p);
      return p;
    };
    const dev = { WEIR_ENV: "development", WEIR_PII_KEY: "", WEIR_PII_KEY_FILE: "" };
    weir("health", ["run", "health", "--instance", "soak", "--data-dir", join(work, "health"), "--metrics-port", "0"], {
      WEIR_HEALTH_APP_ID: groups.health.appId,
      WEIR_HEALTH_DATABASE: database,
      WEIR_HEALTH_INPUT: topic("logs.access"),
      WEIR_HEALTH_METRICS_TOPIC: topic("metrics.health"),
      WEIR_HEALTH_ALERTS_TOPIC: topic("alerts.health"),
      WEIR_HEALTH_DLQ_TOPIC: topic("dlq.health"),
    });
    weir("logs", ["run", "logs", "--instance", "soak", "--metrics-port", "0"], {
      ...dev,
      WEIR_LOGS_APP_ID: groups.logs.appId,
      WEIR_LOGS_APP_TOPIC: topic("logs.app"),
      WEIR_LOGS_ACCESS_TOPIC: topic("logs.access"),
      WEIR_LOGS_DLQ_TOPIC: topic("dlq.logs"),
      WEIR_LOGS_INDEX_PREFIX: id,
      WEIR_LOGS_DATABASE: database,
    });
    weir("fraud", ["run", "fraud", "--instance", "soak", "--metrics-port", "0"], {
      ...dev,
      WEIR_FRAUD_APP_ID: groups.fraud.appId,
      WEIR_FRAUD_DATABASE: database,
      WEIR_FRAUD_TOPIC_PREFIX: prefix,
    });
    const hotkeysConfig = join(work, "hotkeys.yaml");
    writeFileSync(hotkeysConfig, hotKeysConfigCopy(groups.hotkeys.appId, prefix, `${id}:`));
    weir("hotkeys", ["run", "hotkeys", "--config", hotkeysConfig, "--instance", "soak", "--metrics-port", "0"]);
    const token = randomBytes(24).toString("base64url");
    const tokensFile = join(work, "tokens.yaml");
    writeFileSync(
      tokensFile,
      stringify({
        tokens: [{ name: "soak", sha256: createHash("sha256").update(token).digest("hex"), services: "*" }],
      }),
    );
    // The console: the alert board following this run's alerts topic, the risk and hot-key pages theirs.
    weir(
      "console",
      [
        "console",
        "--port",
        "0",
        "--tokens",
        tokensFile,
        "--prefix",
        id,
        "--database",
        database,
        "--alerts-topic",
        topic("alerts.health"),
        "--fraud-database",
        database,
        "--signals-topic",
        topic("signals.risk"),
        "--hotkeys-topic",
        topic("hotkeys.top"),
        "--marks-topic",
        topic("hotkeys.marks"),
        "--no-notify",
      ],
      dev,
    );
    for (const [name, g] of Object.entries(groups)) {
      interrupted();
      await waitStable(admin, g.appId, procs.get(name) as Proc, 180_000);
      o.log(`${name} worker in its group ${g.appId}`);
    }
    const consoleUrl = await fromLog(procs.get("console") as Proc, /"url":"(http:[^"]+)","bundle"/, 120_000);
    o.log(`console on ${consoleUrl}`);

    const shipConfig = join(work, "ship.yaml");
    writeFileSync(shipConfig, simulatorShipConfig(simDir, join(work, "ship-data"), shipTopics));
    const ship = weir("ship", ["ship", "--config", shipConfig]);
    const shipPort = Number(await fromLog(ship, /"metricsPort":(\d+)/, 120_000));

    // ---- the load, sampled ----
    const sim = weir("simulator", [
      "simulate",
      "--realtime",
      "--no-diurnal",
      "--duration",
      `${Math.round(o.minutes * 60)}s`,
      "--rate",
      String(o.rate),
      "--seed",
      String(o.seed),
      "--out",
      simDir,
    ]);
    t0 = Date.now();
    const elapsed = () => (Date.now() - t0) / 1000;
    sampling = true;
    const dead = new Set<string>();
    samplerDone = (async () => {
      while (sampling) {
        const began = Date.now();
        const s: Sample = { t: elapsed(), rss: {}, cpuMs: {}, lag: {}, ends: {}, machine: machineTicks() };
        for (const [name, p] of procs) {
          const pid = p.child.pid;
          if (pid === undefined) continue;
          if (p.exitCode !== undefined) {
            if (!dead.has(name) && name !== "simulator") {
              dead.add(name);
              o.log(`${name} exited with ${p.exitCode} at ${s.t.toFixed(0)} s:\n${tail(p, 20)}`);
            }
            continue;
          }
          s.rss[name] = rssOf(pid);
          s.cpuMs[name] = cpuMsOf(pid);
        }
        try {
          const all = await admin.listTopics();
          for (const [name, g] of Object.entries(groups)) {
            const lag = await groupLag(admin, g.appId, [...g.inputs, ...repartitionTopics(all, g.appId)]);
            s.lag[name] = lag.lag;
            s.ends[name] = lag.ends;
          }
          const channel = await metricOf(shipPort, "weir_ship_channel_records");
          const sent = await metricOf(shipPort, "weir_ship_events_sent_total");
          if (channel !== null && sent !== null) {
            s.lag.ship = channel;
            s.ends.ship = sent + channel;
          }
        } catch (e) {
          o.log(`a lag sample failed: ${(e as Error).message}`);
        }
        samples.push(s);
        await sleep(Math.max(0, o.sampleSeconds * 1000 - (Date.now() - began)));
      }
    })();

    const progressEvery = Math.max(60, o.minutes * 6);
    let nextProgress = progressEvery;
    const loadDeadline = Date.now() + (o.minutes * 60 + 180) * 1000;
    while (sim.exitCode === undefined && Date.now() < loadDeadline) {
      await sleep(1000);
      interrupted();
      if (elapsed() >= nextProgress) {
        nextProgress += progressEvery;
        const last = samples.at(-1);
        if (last) {
          const mib = (b: number | undefined) => `${Math.round((b ?? 0) / 1048576)}`;
          o.log(
            `${Math.round(elapsed())} s: RSS MiB ${Object.entries(last.rss)
              .map(([n, b]) => `${n} ${mib(b)}`)
              .join(", ")}; lag ${Object.entries(last.lag)
              .map(([n, l]) => `${n} ${l}`)
              .join(", ")}`,
          );
        }
      }
    }
    if (sim.exitCode === undefined) {
      sim.child.kill("SIGTERM");
      await sim.exited;
    }
    loadEndS = elapsed();
    check("simulator", sim.exitCode === 0, `exited ${sim.exitCode} after ${loadEndS.toFixed(0)} s`);
    const manifest = JSON.parse(readFileSync(join(simDir, "manifest.json"), "utf8")) as {
      start: number;
      end: number;
      streams: Array<{ kind: string; events: number; lines: number; dirty: number }>;
    };
    for (const s of manifest.streams) byKind[s.kind] = (byKind[s.kind] ?? 0) + s.events;
    records = Object.values(byKind).reduce((a, b) => a + b, 0);
    o.log(`simulator wrote ${records} records: ${JSON.stringify(byKind)}`);

    // A failure after the load is a failed check, not a lost run: the samples are still reported.
    try {
      // ---- the drain ----
      const drainDeadline = Date.now() + o.drainSeconds * 1000;
      let sent = 0;
      while (Date.now() < drainDeadline) {
        sent = (await metricOf(shipPort, "weir_ship_events_sent_total")) ?? sent;
        if (sent >= records) break;
        await sleep(1000);
        interrupted();
      }
      check("weir ship sent every record", sent === records, `${sent} of ${records} by its own counter`);
      // Counted before the closing lines below join logs.access.
      const kinds = {
        access: "logs.access",
        app: "logs.app",
        behavior: "events.behavior",
        coin: "events.coin",
        device: "events.device",
      };
      for (const [kind, name] of Object.entries(kinds)) {
        const n = await countWithKcat(topic(name));
        check(
          `Kafka ${name}`,
          n === (byKind[kind] ?? 0),
          `${n} records (kcat, read_committed) of ${byKind[kind] ?? 0} written`,
        );
      }
      const from = Math.floor(manifest.start / HOUR) * HOUR;
      const to = Math.floor(manifest.end / HOUR) * HOUR + HOUR;
      // Every window of the run closes once event time passes its hour (test/support/health.ts).
      await closeWindows(topic("logs.access"), to + 2 * 60_000, SERVICES);
      const closedS = elapsed();
      // The partitions each group reads: a drained group lags by at most one commit marker on each.
      const partitions = new Map<string, number>();
      const allTopics = await admin.listTopics();
      for (const [name, g] of Object.entries(groups)) {
        let n = 0;
        for (const t of [...g.inputs, ...repartitionTopics(allTopics, g.appId)])
          n += (await admin.fetchTopicOffsets(t)).length;
        partitions.set(name, n);
      }
      while (Date.now() < drainDeadline) {
        const last = samples.at(-1);
        // A sample taken after the closing lines: they must be read too.
        if (last && last.t > closedS) {
          let drained = true;
          for (const name of Object.keys(groups)) {
            // A transaction's commit marker takes an offset no consumer commits past: one per partition at most.
            if ((last.lag[name] ?? Number.POSITIVE_INFINITY) > (partitions.get(name) ?? 0)) drained = false;
          }
          if (drained) {
            drainedS = elapsed();
            break;
          }
        }
        await sleep(1000);
        interrupted();
      }
      const lastLag = samples.at(-1)?.lag ?? {};
      for (const name of Object.keys(groups)) {
        const lag = lastLag[name] ?? -1;
        check(
          `${name} group drained`,
          lag >= 0 && lag <= (partitions.get(name) ?? 0),
          `lag ${lag} (at most ${partitions.get(name) ?? 0} commit markers) ${Math.round(elapsed() - loadEndS)} s after the load`,
        );
      }

      // ---- nothing lost ----
      // The closing lines are access lines too: the logs pipeline stores them.
      const logLines = (byKind.access ?? 0) + (byKind.app ?? 0) + SERVICES.length;
      let stored = { es: 0, ch: 0 };
      // Whatever the drain took, each store gets at least a minute more to show what it holds.
      const settle = () => Math.max(drainDeadline, Date.now() + 60_000);
      const storesDeadline = settle();
      while (Date.now() < storesDeadline) {
        stored = await logsStored(es, ch, id, database);
        if (stored.es >= logLines && stored.ch >= logLines) break;
        await sleep(2000);
      }
      check(
        "logs in Elasticsearch",
        stored.es === logLines,
        `${stored.es} documents of ${logLines} access and app lines (${SERVICES.length} of them the closing lines)`,
      );
      check(
        "logs in ClickHouse",
        stored.ch === logLines,
        `${stored.ch} rows (FINAL) of ${logLines} access and app lines (${SERVICES.length} of them the closing lines)`,
      );

      const health = await checkHealth(ch, database, simDir, from, to, settle());
      check("health rows equal the oracle", health.problems.length === 0, health.detail);
      check("health totals per window and level", health.totalsOk, health.totalsDetail);

      const [signals] = await (
        await ch.query({ query: `SELECT count() AS n FROM ${database}.risk_signals FINAL`, format: "JSONEachRow" })
      ).json<{ n: string }>();
      check("fraud signals", Number(signals?.n ?? 0) > 0, `${signals?.n ?? 0} in ClickHouse`);
      const lists = (await admin.fetchTopicOffsets(topic("hotkeys.top"))).reduce((n, p) => n + Number(p.high), 0);
      check("hot-key lists", lists > 0, `${lists} offsets in ${topic("hotkeys.top")}`);
      await checkBoard(ch, database, consoleUrl, token, check);
      for (const t of dlqs) {
        const n = (await admin.fetchTopicOffsets(t)).reduce((a, p) => a + Number(p.high) - Number(p.low), 0);
        check(`${t} empty`, n === 0, `${n} records`);
      }
    } catch (e) {
      if (e instanceof SoakInterrupted) throw e;
      check("the drain and checks ran", false, (e as Error).message);
    }
    reachedEnd = true;
    // ---- every process up until now, and stopping cleanly ----
    for (const [name, p] of procs) {
      if (name === "simulator") continue;
      check(
        `${name} up to the end`,
        p.exitCode === undefined,
        p.exitCode === undefined ? "running" : `exited ${p.exitCode}`,
      );
    }
  } finally {
    sampling = false;
    await samplerDone;
    for (const name of ["ship", "hotkeys", "fraud", "logs", "health", "console", "simulator"]) {
      const p = procs.get(name);
      if (!p) continue;
      const wasRunning = p.exitCode === undefined;
      if (wasRunning) {
        p.child.kill("SIGTERM");
        const timer = setTimeout(() => p.child.kill("SIGKILL"), 60_000);
        await p.exited;
        clearTimeout(timer);
      }
      exitCodes.set(name, p.exitCode);
      if (reachedEnd && wasRunning && name !== "simulator")
        check(
          `${name} stops on SIGTERM`,
          p.exitCode === 0,
          `exit code ${p.exitCode}${p.exitCode === 0 ? "" : `\n${tail(p, 15)}`}`,
        );
    }
    await cleanUp({ admin, ch, es, redis, id, prefix, database, appIds: Object.values(groups).map((g) => g.appId) });
    if (!o.keep) rmSync(work, { recursive: true, force: true });
  }

  // ---- the verdicts ----
  const warmupS = warmupFor(loadEndS);
  const load = samples.filter((s) => s.t <= loadEndS);
  const processSummaries: ProcessSummary[] = [];
  for (const name of ["simulator", "ship", "health", "logs", "fraud", "hotkeys", "console"]) {
    const points: Point[] = load
      .filter((s) => s.rss[name] !== undefined)
      .map((s) => ({ t: s.t, v: s.rss[name] as number }));
    const judged = JUDGED.has(name);
    const rss = points.length > 0 ? rssVerdict(points, warmupS, o.rssTolerance) : null;
    const withCpu = samples.filter((s) => s.cpuMs[name] !== undefined);
    const cpu = withCpu.at(-1)?.cpuMs[name] ?? 0;
    const steadyCpu = withCpu.filter((s) => s.t >= warmupS && s.t <= loadEndS);
    const a = steadyCpu[0];
    const b = steadyCpu.at(-1);
    const steadyCores =
      a && b && b.t > a.t ? ((b.cpuMs[name] as number) - (a.cpuMs[name] as number)) / 1000 / (b.t - a.t) : 0;
    processSummaries.push({
      name,
      judged,
      rss,
      peakRss: samples.reduce((m, s) => Math.max(m, s.rss[name] ?? 0), 0),
      cpuSeconds: cpu / 1000,
      steadyCores,
      exitCode: exitCodes.get(name),
    });
    if (judged) check(`${name} RSS bounded`, rss?.ok ?? false, rss?.why ?? "no samples");
  }
  const groupSummaries: GroupSummary[] = [];
  for (const name of [...Object.keys(groups), "ship"]) {
    const points = load.filter((s) => s.lag[name] !== undefined).map((s) => ({ t: s.t, v: s.lag[name] as number }));
    const ends = load.filter((s) => s.ends[name] !== undefined && s.t >= warmupS);
    const first = ends[0];
    const last = ends.at(-1);
    const inputRate =
      first && last && last.t > first.t
        ? ((last.ends[name] as number) - (first.ends[name] as number)) / (last.t - first.t)
        : 0;
    const verdict = lagVerdict(points, warmupS, inputRate, { inputSeconds: o.lagInputSeconds, floor: o.lagFloor });
    groupSummaries.push({
      name,
      inputRate,
      maxLag: points.reduce((m, p) => Math.max(m, p.v), 0),
      finalLag: samples.at(-1)?.lag[name] ?? -1,
      verdict,
    });
    check(`${name} lag not growing`, verdict.ok, verdict.why);
  }
  const steadyLoad = load.filter((s) => s.t >= warmupS);
  const m0 = steadyLoad[0]?.machine;
  const m1 = steadyLoad.at(-1)?.machine;
  const machineCores =
    m0 && m1 && m1.total > m0.total ? ((m1.busy - m0.busy) / (m1.total - m0.total)) * cpus().length : 0;
  const soakCores = processSummaries.reduce((n, p) => n + p.steadyCores, 0);
  const { log: _log, signal: _signal, ...kept } = o;
  return {
    id,
    options: kept,
    startedAt,
    machine: `${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}`,
    machineCores,
    soakCores,
    warmupS,
    loadEndS,
    drainedS,
    records,
    byKind,
    samples,
    processes: processSummaries,
    groups: groupSummaries,
    checks,
    ok: checks.every((c) => c.ok),
    workDir: work,
  };
}

/** Every topic of the catalog (schemas/topics.yaml), as `<prefix><name>` with its partitions and configs. */
async function createCatalogCopy(admin: Admin, prefix: string): Promise<void> {
  const catalog = parse(readFileSync(join(PROJECT_ROOT, "schemas/topics.yaml"), "utf8")) as {
    topics: Record<string, { partitions?: number; cleanup?: string; config?: Record<string, string | number> }>;
  };
  await admin.createTopics({
    waitForLeaders: true,
    topics: Object.entries(catalog.topics).map(([name, t]) => ({
      topic: `${prefix}${name}`,
      numPartitions: t.partitions ?? 1,
      configEntries: [
        ...(t.cleanup === "compact" ? [{ name: "cleanup.policy", value: "compact" }] : []),
        ...Object.entries(t.config ?? {}).map(([k, v]) => ({ name: k, value: String(v) })),
      ],
    })),
  });
}

/** Every ClickHouse migration (infra/clickhouse/*.sql) applied to a database of the run's own. */
async function createDatabase(ch: ReturnType<typeof clickhouseClient>, database: string): Promise<void> {
  const dir = join(PROJECT_ROOT, "infra/clickhouse");
  for (const f of readdirSync(dir)
    .filter((n) => /^\d+_.*\.sql$/.test(n))
    .sort()) {
    const ddl = readFileSync(join(dir, f), "utf8")
      .replaceAll("CREATE DATABASE IF NOT EXISTS weir", `CREATE DATABASE IF NOT EXISTS ${database}`)
      .replaceAll("weir.", `${database}.`);
    for (const stmt of splitStatements(ddl)) await ch.command({ query: stmt });
  }
}

/** Waits until a pipeline's group is Stable with a member (its worker has its partitions). */
async function waitStable(admin: Admin, groupId: string, p: Proc, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { groups } = await admin.describeGroups([groupId]);
    const g = groups[0];
    if (g && g.state === "Stable" && g.members.length > 0) return;
    if (p.exitCode !== undefined) throw new Error(`${p.name} exited with ${p.exitCode}:\n${tail(p, 40)}`);
    if (Date.now() > deadline)
      throw new Error(`${p.name}'s group ${groupId} not stable in ${timeoutMs} ms:\n${tail(p, 40)}`);
    await sleep(1000);
  }
}

/** The first match's group of a process's log (pino JSON lines), waiting for it. */
async function fromLog(p: Proc, re: RegExp, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let text = "";
    try {
      text = readFileSync(p.log, "utf8");
    } catch {
      // not written yet
    }
    const m = re.exec(text);
    if (m?.[1]) return m[1];
    if (p.exitCode !== undefined) throw new Error(`${p.name} exited with ${p.exitCode}:\n${tail(p, 40)}`);
    if (Date.now() > deadline) throw new Error(`${p.name} did not log ${re} in ${timeoutMs} ms:\n${tail(p, 40)}`);
    await sleep(300);
  }
}

/** Committed records of a topic, counted by kcat (librdkafka reads read_committed by default) as they stream. */
export async function countWithKcat(topic: string): Promise<number> {
  const bin = await ensureKcat();
  const config = Object.entries(kcatSecurity()).flatMap(([k, v]) => ["-X", `${k}=${v}`]);
  return new Promise<number>((resolve, reject) => {
    const child = spawn(
      bin,
      [
        "-C",
        "-b",
        endpoints.kafkaBrokers.join(","),
        ...config,
        "-t",
        topic,
        "-o",
        "beginning",
        "-e",
        "-q",
        "-f",
        "%o\n",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let n = 0;
    let err = "";
    child.stdout.on("data", (d: Buffer) => {
      for (let i = d.indexOf(10); i !== -1; i = d.indexOf(10, i + 1)) n++;
    });
    child.stderr.on("data", (d) => {
      err = (err + d).slice(-2000);
    });
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(n) : reject(new Error(`kcat exited ${code}: ${err}`))));
  });
}

async function logsStored(
  es: ReturnType<typeof elasticsearchClient>,
  ch: ReturnType<typeof clickhouseClient>,
  prefix: string,
  database: string,
): Promise<{ es: number; ch: number }> {
  await es.indices.refresh({ index: `${prefix}-*`, ignore_unavailable: true, allow_no_indices: true });
  const inEs = (await es.count({ index: `${prefix}-*`, ignore_unavailable: true, allow_no_indices: true })).count;
  const [row] = await (
    await ch.query({ query: `SELECT count() AS n FROM ${database}.logs FINAL`, format: "JSONEachRow" })
  ).json<{ n: string }>();
  return { es: inEs, ch: Number(row?.n ?? 0) };
}

/** The fields of an access line the oracle reads: the rest is dropped so a long run's lines fit in memory. */
function slim(l: AccessLog): AccessLog {
  return {
    ts: l.ts,
    app: l.app,
    system: l.system,
    service: l.service,
    endpoint: l.endpoint,
    status: l.status,
    errorCode: l.errorCode,
    latencyUs: l.latencyUs,
  } as AccessLog;
}

/** The health rows of [from, to) against the oracle of the access files (every window and level, p99 within 1%). */
async function checkHealth(
  ch: ReturnType<typeof clickhouseClient>,
  database: string,
  simDir: string,
  from: number,
  to: number,
  deadline: number,
): Promise<{ problems: string[]; detail: string; totalsOk: boolean; totalsDetail: string }> {
  const requests: AccessLog[] = [];
  for (const service of readdirSync(simDir, { withFileTypes: true })) {
    if (!service.isDirectory()) continue;
    for (const f of readdirSync(join(simDir, service.name)).filter((n) => /^access\.log(\.\d+)?$/.test(n)))
      for (const l of readAccessLines([join(simDir, service.name, f)])) requests.push(slim(l));
  }
  const slo = SloConfig.load(DEFAULT_SLO_FILE);
  const expected = oracle(requests, slo);
  const total = requests.length;
  requests.length = 0;
  // The hour rows come last: wait for them before comparing.
  let totals = await totalsByLevel(ch, database, from, to);
  while (!WINDOWS.every((w) => LEVELS.every((l) => (totals.get(`${w} ${l}`) ?? 0) >= total)) && Date.now() < deadline) {
    await sleep(2000);
    totals = await totalsByLevel(ch, database, from, to);
  }
  const wrong = WINDOWS.flatMap((w) =>
    LEVELS.filter((l) => totals.get(`${w} ${l}`) !== total).map(
      (l) => `${w / 1000} s ${l}: ${totals.get(`${w} ${l}`) ?? 0}`,
    ),
  );
  const result = await compareRows(ch, database, expected, from, to);
  return {
    problems: result.problems,
    detail:
      result.problems.length === 0
        ? `${result.rows} rows of ${expected.size} windows x nodes equal, worst p99 error ${(result.worstP99 * 100).toFixed(2)}%`
        : result.problems.join("; "),
    totalsOk: wrong.length === 0,
    totalsDetail:
      wrong.length === 0
        ? `every window length and level sums to the ${total} requests written`
        : `of ${total} requests: ${wrong.join(", ")}`,
  };
}

/** Every alert the health pipeline stored is on the console's board (GET /v1/alerts). */
async function checkBoard(
  ch: ReturnType<typeof clickhouseClient>,
  database: string,
  url: string,
  token: string,
  check: (name: string, ok: boolean, detail: string) => void,
): Promise<void> {
  const stored = (
    await (
      await ch.query({ query: `SELECT DISTINCT id FROM ${database}.health_alerts`, format: "JSONEachRow" })
    ).json<{ id: string }>()
  ).map((r) => r.id);
  let missing: string[] = stored;
  let shown = 0;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const res = await fetch(`${url}/v1/alerts`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await res.json()) as { alerts?: Array<{ id: string }> };
    const ids = new Set((body.alerts ?? []).map((a) => a.id));
    shown = ids.size;
    missing = stored.filter((i) => !ids.has(i));
    if (missing.length === 0) break;
    await sleep(2000);
  }
  check(
    "alerts on the console's board",
    missing.length === 0,
    `${stored.length} alerts in ClickHouse, ${shown} on the board${missing.length > 0 ? `; missing ${missing.slice(0, 3).join(", ")}` : ""}`,
  );
}

async function cleanUp(c: {
  admin: Admin;
  ch: ReturnType<typeof clickhouseClient>;
  es: ReturnType<typeof elasticsearchClient>;
  redis: Redis;
  id: string;
  prefix: string;
  database: string;
  appIds: string[];
}): Promise<void> {
  const quiet = async (what: () => Promise<unknown>) => {
    try {
      await what();
    } catch {
      // best effort: a leftover has a unique name and disturbs no one
    }
  };
  // Groups before topics: a group goes only once empty, and its members left when the workers stopped.
  for (let i = 0; i < 10; i++) {
    const ok = await c.admin.deleteGroups(c.appIds).then(
      () => true,
      (e: { groups?: Array<{ errorCode: number }> }) =>
        (e.groups ?? []).every((g) => g.errorCode === 69 || g.errorCode === 0),
    );
    if (ok) break;
    await sleep(1000);
  }
  await quiet(async () => {
    const mine = (await c.admin.listTopics()).filter(
      (t) => t.startsWith(c.prefix) || c.appIds.some((a) => t.startsWith(`${a}-`)),
    );
    if (mine.length > 0) await c.admin.deleteTopics({ topics: mine });
  });
  await quiet(() => c.admin.disconnect());
  await quiet(() => c.ch.command({ query: `DROP DATABASE IF EXISTS ${c.database}` }));
  await quiet(() => c.ch.close());
  await quiet(async () => {
    const rows = (await c.es.cat.indices({ index: `${c.id}-*`, format: "json", h: "index" })) as unknown as Array<{
      index: string;
    }>;
    for (const r of rows) await c.es.indices.delete({ index: r.index, ignore_unavailable: true });
  });
  await quiet(() => c.es.indices.deleteIndexTemplate({ name: `weir-${c.id}` }));
  for (const part of ["settings", "mappings"])
    await quiet(() => c.es.cluster.deleteComponentTemplate({ name: `weir-${c.id}-${part}` }));
  await quiet(() => c.es.close());
  await quiet(async () => {
    await c.redis.connect();
    let cursor = "0";
    do {
      const [next, keys] = await c.redis.scan(cursor, "MATCH", `${c.id}:*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) await c.redis.del(...keys);
    } while (cursor !== "0");
  });
  c.redis.disconnect();
}
