import { readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { createClient } from "@clickhouse/client";
import { Client } from "@elastic/elasticsearch";
import { Command } from "commander";
import pino from "pino";
import { parseDuration } from "../../infra/simulator/scenario.ts";
import { simulatorShipConfig } from "../../infra/simulator/ship-config.ts";
import { SIMULATE_DEFAULTS, simulate } from "../../infra/simulator/simulate.ts";
import { type StackEndpoints, stackEndpoints } from "../../infra/stack/config.ts";
import { KafkaClient } from "../../kafka/client.ts";
import { campaignEntities, scoreSignals } from "../../pipelines/fraud/backtest.ts";
import { fraudNames, fraudPipeline } from "../../pipelines/fraud/pipeline.ts";
import { readSignals } from "../../pipelines/fraud/signals-reader.ts";
import { healthPipeline } from "../../pipelines/health/pipeline.ts";
import { top } from "../../pipelines/health/queries.ts";
import { HotKeysClient } from "../../pipelines/hotkeys/client/hot-keys-client.ts";
import { hotKeysPipeline } from "../../pipelines/hotkeys/pipeline.ts";
import { startNewPartitionsAtEnd } from "../../pipelines/hotkeys/start-offsets.ts";
import { hashToken, newToken, TOKENS_ENV, TOKENS_FILE_ENV, TokenStore } from "../../pipelines/logs/api/tokens.ts";
import { DEFAULT_LOGS_CONFIG_FILE, loadLogsConfig } from "../../pipelines/logs/config.ts";
import { logsPipeline } from "../../pipelines/logs/pipeline.ts";
import type { Pipeline, PipelineContext } from "../../pipelines/types.ts";
import type { HotKeys } from "../../schemas/types.generated.ts";
import { ShipAgent } from "../../shipper/agent.ts";
import { parseShipConfig } from "../../shipper/config.ts";
import { clickhouseCredentials, elasticsearchClientOptions } from "../../sinks/credentials.ts";
import { KafkajsStreamClient } from "../../stream/kafka/client.ts";
import { StreamWorker } from "../../stream/runtime/worker.ts";
import { CONSOLE_PORT, type RunningConsole, startConsole } from "../../web/server/start.ts";
import { printTable } from "../table.ts";
import { stackUp } from "./stack.ts";

/** The demo's console token, when no tokens file is configured; else one is made for the session. */
export const CONSOLE_TOKEN_ENV = "WEIR_CONSOLE_TOKEN";

// The main job of the README's quickstart, the whole flow on one machine: the traffic simulator
// writes service log files; `weir ship` (in this process) tails them into Kafka; the health and logs
// pipelines (`weir run health`, `weir run logs`, `weir run hotkeys`, `weir run fraud`, in this
// process) turn them into per-second health in ClickHouse, PII-masked, searchable logs in
// Elasticsearch and ClickHouse, the hot rooms, streamers, users and endpoints of every second in
// hotkeys.top, and the fraud rules' signals in signals.risk and ClickHouse. It prints what each step
// counted.
export function demoCommand(): Command {
  return new Command("demo")
    .description(
      "bring up the local stack and run the main job: simulated service logs shipped into Kafka, the health, logs, hot-key and fraud pipelines on them",
    )
    .option("--duration <d>", "simulated traffic to write (as fast as it goes)", "30s")
    .option("--rate <n>", "records per simulated second", "2000")
    .option("--seed <n>", "simulator seed", "1")
    .option("--console-port <port>", "the console's port (0: any free one)", String(CONSOLE_PORT))
    .option("--no-console", "run the job and exit, without serving the console")
    .action(async (opts: { duration: string; rate: string; seed: string; consolePort: string; console: boolean }) => {
      const { local } = await stackUp();
      const endpoints = stackEndpoints(local.cfg);
      // The demo is a development run: without a PII key of its own, it uses the public development key.
      const env = { ...process.env };
      if (!env.WEIR_PII_KEY && !env.WEIR_PII_KEY_FILE) env.WEIR_ENV ??= "development";
      // The demo prints its own summary; a failing worker still surfaces through worker.done.
      const logger = pino({ level: "fatal", name: "weir-demo" });
      const ctx: PipelineContext = { dataDir: resolve("weir-data"), endpoints, env, logger };
      const running: Array<{ pipeline: Pipeline; worker: StreamWorker }> = [];
      // The demo is about this run's traffic: a fraud group that never read the event topics starts at
      // their end (a shared or long-lived stack may hold days of them); one that did resumes.
      const fraud = fraudNames(env);
      await startNewPartitionsAtEnd(
        endpoints.kafkaBrokers,
        fraud.appId,
        FRAUD_INPUTS.map((t) => `${fraud.prefix}${t}`),
      );
      for (const make of [healthPipeline, logsPipeline, hotKeysPipeline, fraudPipeline]) {
        const pipeline = await make(ctx);
        const clientId = `${pipeline.app.appId}-demo`;
        const kafka = new KafkajsStreamClient({
          brokers: endpoints.kafkaBrokers,
          clientId,
          logger,
          security: endpoints.kafkaSecurity,
        });
        const worker = new StreamWorker(pipeline.app, {
          kafka,
          logger,
          metricsPort: 0,
          ...(pipeline.onCheckpoint ? { onCheckpoint: () => pipeline.onCheckpoint?.() } : {}),
          ...(pipeline.health ? { health: () => pipeline.health?.() ?? {} } : {}),
        });
        pipeline.registerMetrics?.(worker.metrics.registry);
        await worker.start();
        await pipeline.start?.();
        running.push({ pipeline, worker });
        console.log(`${pipeline.app.appId} pipeline running (/metrics on port ${worker.metricsPort})`);
      }
      // The room lists the hot-key pipeline publishes, followed like a service would (weir/hotkeys).
      const roomLists: HotKeys[] = [];
      const hotClient = new HotKeysClient({
        brokers: endpoints.kafkaBrokers,
        clientId: "weir-demo",
        onList: (l) => {
          if (l.dimension === "room" && l.windowMs === 10_000) roomLists.push(l);
        },
      });
      await hotClient.start();
      let consoleRunning: RunningConsole | null = null;
      if (opts.console) consoleRunning = await openConsole(opts.consolePort, env, logger);
      // Event time starts now: the pipelines' watermarks have already passed earlier runs.
      const start = Date.now();
      // Only the last run's files are kept: each run writes tens of MiB.
      rmSync(join(ctx.dataDir, "demo"), { recursive: true, force: true });
      const simDir = join(ctx.dataDir, "demo", String(start));
      console.log(
        `\nsimulating ${opts.duration} of platform traffic as service log files in ${simDir} (seed ${opts.seed}, default scenario: incidents, a hot room, fraud, PII in chat)`,
      );
      const sim = await simulate({
        ...SIMULATE_DEFAULTS,
        seed: Number(opts.seed),
        durationMs: parseDuration(opts.duration),
        rate: Number(opts.rate),
        out: simDir,
        start,
        dirty: 0.001,
      });
      console.log(
        `  wrote ${sim.records.toLocaleString("en")} events (${sim.lines.toLocaleString("en")} lines, ${sim.dirty} of them bad on purpose) in ${(sim.wallMs / 1000).toFixed(1)} s`,
      );

      const shipped = await ship(simDir, endpoints, logger, sim.records + sim.dirty);
      const accessAndApp = sim.streams
        .filter((s) => s.kind === "access" || s.kind === "app")
        .reduce((n, s) => n + s.events, 0);
      const logsOk = await showLogs(endpoints, env, start, accessAndApp);
      const healthOk = await showHealth(endpoints, start, parseDuration(opts.duration));
      const hotOk = await showHotRoom(simDir, roomLists, start);
      const fraudOk = await showFraud(endpoints, fraud, simDir, start);
      await hotClient.close();
      if (consoleRunning) {
        console.log(`\nconsole: ${consoleRunning.console.url} (the pipelines keep running; Ctrl-C stops)`);
        await new Promise<void>((r) => {
          process.once("SIGINT", r);
          process.once("SIGTERM", r);
        });
        await consoleRunning.stop();
      }
      for (const { pipeline, worker } of running) {
        await worker.stop();
        await pipeline.stop?.();
      }
      if (!shipped || !logsOk || !healthOk || !hotOk || !fraudOk) process.exitCode = 1;
    });
}

/**
 * The console on the demo's data. Its token comes from the tokens file when one is configured; else it
 * is WEIR_CONSOLE_TOKEN, or one made for this session, printed in the console's link (the part after #
 * never reaches a server, so it stays out of logs).
 */
async function openConsole(port: string, env: NodeJS.ProcessEnv, logger: pino.Logger): Promise<RunningConsole> {
  let tokens: TokenStore;
  let token: string | null = null;
  if (env[TOKENS_FILE_ENV] || env[TOKENS_ENV]) tokens = TokenStore.fromEnv(env);
  else {
    token = env[CONSOLE_TOKEN_ENV] || newToken();
    tokens = new TokenStore([{ name: "demo", sha256: hashToken(token), services: "*" }]);
  }
  const c = await startConsole({ port, host: "127.0.0.1", notify: true }, tokens, logger, env);
  const kib = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
  console.log(
    `\nconsole: ${c.console.url}${token ? `/#token=${token}` : ""}  (bundle ${kib(c.bundleSize.js + c.bundleSize.css)}, ${kib(c.bundleSize.jsGzip + c.bundleSize.cssGzip)} gzipped)`,
  );
  if (token)
    console.log(`  token for this session: ${token}${env[CONSOLE_TOKEN_ENV] ? ` (from ${CONSOLE_TOKEN_ENV})` : ""}`);
  else console.log(`  tokens from ${env[TOKENS_FILE_ENV] ? TOKENS_FILE_ENV : TOKENS_ENV}`);
  return c;
}

/** Ships the simulator's files into the catalog's topics until every line is in Kafka. */
async function ship(
  simDir: string,
  endpoints: StackEndpoints,
  logger: pino.Logger,
  expected: number,
): Promise<boolean> {
  const config = parseShipConfig(simulatorShipConfig(simDir, join(simDir, ".weir-ship")));
  const agent = new ShipAgent(config, { brokers: endpoints.kafkaBrokers, security: endpoints.kafkaSecurity, logger });
  const began = Date.now();
  await agent.start();
  console.log(`\nweir ship: tailing ${config.sources.length} sources into Kafka`);
  const deadline = Date.now() + 180_000;
  let sent = 0;
  while (Date.now() < deadline) {
    sent = [...agent.delivered().values()].reduce((n, v) => n + v, 0);
    if (sent >= expected) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const byTopic = [...agent.delivered()].map(([t, n]) => `${t} ${n}`).join(", ");
  await agent.stop();
  const ms = Date.now() - began;
  console.log(
    `  ${sent.toLocaleString("en")} events acknowledged by Kafka in ${(ms / 1000).toFixed(1)} s (${Math.round((sent * 1000) / ms).toLocaleString("en")}/s): ${byTopic}`,
  );
  if (sent !== expected) console.log(`  INCOMPLETE: the simulator wrote ${expected} lines and events`);
  return sent === expected;
}

/** Waits until the logs pipeline has every access and app line of the run in both stores. */
async function showLogs(
  endpoints: StackEndpoints,
  env: NodeJS.ProcessEnv,
  start: number,
  expected: number,
): Promise<boolean> {
  const config = loadLogsConfig(DEFAULT_LOGS_CONFIG_FILE, env);
  const es = new Client(elasticsearchClientOptions(endpoints));
  const ch = createClient({ url: endpoints.clickhouseUrl, ...clickhouseCredentials(endpoints.clickhouseAuth) });
  const { database, table } = config.clickhouse;
  const index = `${config.elasticsearch.indexPrefix}-*`;
  let inEs = 0;
  let inCh = 0;
  try {
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      await es.indices.refresh({ index, ignore_unavailable: true, allow_no_indices: true });
      inEs = (
        await es.count({
          index,
          query: { range: { "@timestamp": { gte: start } } },
          ignore_unavailable: true,
          allow_no_indices: true,
        })
      ).count;
      const rows = await (
        await ch.query({
          query: `SELECT count() AS n FROM ${database}.${table} FINAL WHERE ts_ms >= ${start}`,
          format: "JSONEachRow",
        })
      ).json<{ n: string }>();
      inCh = Number(rows[0]?.n ?? 0);
      if (inEs >= expected && inCh >= expected) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    console.log(
      `\nlogs: ${inEs.toLocaleString("en")} of ${expected.toLocaleString("en")} access and app lines searchable in Elasticsearch (${index}), ${inCh.toLocaleString("en")} in ClickHouse (${database}.${table}), PII masked`,
    );
    console.log(
      "search:       node cli/weir.mjs logs search 'level:error' --since 15m    node cli/weir.mjs logs tail --service gift-svc",
    );
    return inEs === expected && inCh === expected;
  } finally {
    await es.close();
    await ch.close();
  }
}

/** Waits for the health pipeline's final rows of the run, then prints its view of the platform. */
async function showHealth(endpoints: StackEndpoints, start: number, durationMs: number): Promise<boolean> {
  const { clickhouseUrl, clickhouseAuth } = endpoints;
  const ch = createClient({ url: clickhouseUrl, ...clickhouseCredentials(clickhouseAuth) });
  // The last seconds stay open until later traffic passes them (out-of-orderness + grace): wait for the rest.
  const until = Math.floor((start + durationMs) / 1000) - 6;
  const deadline = Date.now() + 120_000;
  let seconds = 0;
  try {
    while (Date.now() < deadline) {
      const r = await (
        await ch.query({
          query: `SELECT count() AS n FROM weir.health_metrics FINAL WHERE window_ms = 1000 AND level = 'APP' AND final = 1 AND window_start >= ${Math.ceil(start / 1000)} AND window_start < ${until}`,
          format: "JSONEachRow",
        })
      ).json<{ n: string }>();
      seconds = Number(r[0]?.n ?? 0);
      if (seconds >= until - Math.ceil(start / 1000)) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    const alerts = await (
      await ch.query({
        query: `SELECT rule, level, service, endpoint, message FROM weir.health_alerts FINAL WHERE state = 'FIRING' AND ts_ms >= ${start} ORDER BY ts_ms`,
        format: "JSONEachRow",
      })
    ).json<{ rule: string; level: string; service: string; endpoint: string; message: string }>();
    console.log(
      `\nhealth: ${seconds} final 1 s windows of the run in weir.health_metrics, ${alerts.length} alerts fired`,
    );
    const t = await top({ since: durationMs + 60_000, clickhouseUrl, ...(clickhouseAuth ? { clickhouseAuth } : {}) });
    for (const s of t.services.slice(0, 7)) {
      const avail = s.availability === null ? "-" : `${(s.availability * 100).toFixed(3)}%`;
      const p99 = s.p99Us === null ? "-" : `${(s.p99Us / 1000).toFixed(0)} ms`;
      console.log(
        `  ${s.service.padEnd(11)} ${String(s.requests).padStart(7)} requests  availability ${avail.padStart(8)}  p99 ${p99.padStart(7)}  burn ${(s.burnRate ?? 0).toFixed(2)}x`,
      );
    }
    for (const a of alerts.slice(0, 8)) console.log(`  alert ${a.rule}: ${a.message.slice(0, 110)}`);
    console.log("more:         node cli/weir.mjs health top --since 15m    node cli/weir.mjs health show gift-svc");
    return seconds > 0;
  } finally {
    await ch.close();
  }
}

/**
 * The simulator's hot room (its ground truth) as the hot-key pipeline saw it: the first 10 s room
 * list that ranked it first, and the list of the window that covers the event at full strength.
 */
async function showHotRoom(simDir: string, lists: HotKeys[], runStart: number): Promise<boolean> {
  const truth = readFileSync(join(simDir, "ground-truth.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map(
      (l) =>
        JSON.parse(l) as {
          kind: string;
          roomId?: number;
          start?: number;
          fullAt?: number;
          end?: number;
          multiplier?: number;
        },
    )
    .find((r) => r.kind === "hot_event");
  if (!truth?.roomId || truth.start === undefined || truth.end === undefined || truth.fullAt === undefined) {
    console.log("\nhot keys: the scenario has no hot room");
    return true;
  }
  const room = String(truth.roomId);
  const hot = { start: truth.start, fullAt: truth.fullAt, end: truth.end, multiplier: truth.multiplier ?? 0 };
  const end = (l: HotKeys) => l.windowStart + l.windowMs;
  // Lists of the last windows come after the simulated traffic: wait for the one covering its end.
  const deadline = Date.now() + 60_000;
  while (!lists.some((l) => end(l) >= hot.end - 1000) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
  }
  const sorted = [...lists].sort((a, b) => a.windowStart - b.windowStart);
  const first = sorted.find((l) => end(l) > hot.start && l.keys[0]?.key === room);
  const peak =
    sorted.find((l) => l.windowStart >= hot.fullAt && end(l) <= hot.end) ??
    sorted
      .filter((l) => end(l) > hot.fullAt)
      .sort(
        (a, b) => (b.keys.find((e) => e.key === room)?.count ?? 0) - (a.keys.find((e) => e.key === room)?.count ?? 0),
      )[0];
  console.log(
    `\nhot keys: ${lists.length} room lists (10 s windows) on hotkeys.top; the simulator's hot room ${room} (x${hot.multiplier} from ${((hot.start - runStart) / 1000).toFixed(0)} s into the run)`,
  );
  if (first) {
    console.log(
      `  ranked #1 first in the window ending ${((end(first) - hot.start) / 1000).toFixed(1)} s (event time) after its traffic began`,
    );
  }
  if (peak) {
    console.log(
      `  the room list of ${new Date(peak.windowStart).toISOString().slice(11, 19)}..${new Date(end(peak)).toISOString().slice(11, 19)} UTC, ${peak.total.toLocaleString("en")} requests:`,
    );
    for (const [i, e] of peak.keys.slice(0, 5).entries()) {
      console.log(
        `  ${String(i + 1).padStart(3)}  room ${e.key.padEnd(8)} ${String(e.count).padStart(6)}  ${(e.share * 100).toFixed(1).padStart(5)}%${e.key === room ? "  <- the hot room" : ""}`,
      );
    }
  }
  console.log("live:         node cli/weir.mjs hotkeys top --dimension room --watch    (while weir run hotkeys runs)");
  return first !== undefined;
}

/** The event topics the fraud pipeline reads. */
const FRAUD_INPUTS = ["events.behavior", "events.coin", "events.device"];

/**
 * Waits until the fraud pipeline has read the run's events (its group caught up, its signals in
 * ClickHouse unchanged for a few seconds), then prints the run's signals per category and, against
 * the simulator's ground truth, the share of flagged entities that were in a campaign of that
 * category (precision) and the share of the campaigns' entities flagged (recall).
 */
async function showFraud(
  endpoints: StackEndpoints,
  names: ReturnType<typeof fraudNames>,
  simDir: string,
  start: number,
): Promise<boolean> {
  const ch = createClient({ url: endpoints.clickhouseUrl, ...clickhouseCredentials(endpoints.clickhouseAuth) });
  const admin = new KafkaClient({ clientId: "weir-demo-fraud", brokers: endpoints.kafkaBrokers }).native.admin();
  await admin.connect();
  const topics = FRAUD_INPUTS.map((t) => `${names.prefix}${t}`);
  /** Records of the event topics the group has not committed (a transaction's marker counts one per partition). */
  const behind = async () => {
    let n = 0;
    let partitions = 0;
    const committed = await admin.fetchOffsets({ groupId: names.appId, topics });
    for (const topic of topics) {
      const mine = committed.find((c) => c.topic === topic)?.partitions ?? [];
      for (const e of await admin.fetchTopicOffsets(topic)) {
        const c = Number(mine.find((p) => p.partition === e.partition)?.offset ?? -1);
        n += Math.max(0, Number(e.high) - Math.max(c, 0));
        partitions++;
      }
    }
    return Math.max(0, n - partitions);
  };
  const read = () => readSignals(ch, names.database, { from: start, to: Date.now() + 3600_000, limit: 100_000 });
  try {
    let signals: Awaited<ReturnType<typeof read>> = [];
    let still = 0;
    let lag = -1;
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      lag = await behind();
      const now = await read();
      still = now.length === signals.length ? still + 1 : 0;
      signals = now;
      if (lag === 0 && still >= 3) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    const truthFile = join(simDir, "ground-truth.jsonl");
    const categoryOf = new Map(signals.map((s) => [s.ruleId, s.category]));
    const scores = new Map(scoreSignals(categoryOf, signals, truthFile).map((c) => [c.category, c]));
    const fraudsters = campaignEntities(truthFile);
    const categories = [...new Set([...signals.map((s) => s.category), ...scores.keys()])].sort();
    const rules = new Set(signals.map((s) => s.ruleId)).size;
    console.log(
      `\nfraud: ${signals.length} signals of ${rules} rules in ${names.database}.risk_signals (${signals.filter((s) => s.shadow).length} of them shadow: recorded, never acted on)${lag > 0 ? `; ${lag} events not read yet` : ""}`,
    );
    console.log(
      "  against the simulator's ground truth: PRECISION, flagged entities in a campaign of the category; IN A CAMPAIGN, in any campaign (they overlap); RECALL, the category's campaign entities flagged",
    );
    const pct = (x: number | null) => (x === null ? "-" : `${(x * 100).toFixed(0)}%`);
    printTable(
      ["CATEGORY", "SIGNALS", "SHADOW", "ENTITIES", "PRECISION", "IN A CAMPAIGN", "RECALL"],
      categories.map((c) => {
        const mine = signals.filter((s) => s.category === c);
        const entities = new Set(mine.map((s) => `${s.entity.type}:${s.entity.id}`));
        const inCampaign = [...entities].filter((e) => fraudsters.has(e)).length;
        const sc = scores.get(c);
        return [
          c,
          String(mine.length),
          String(mine.filter((s) => s.shadow).length),
          String(entities.size),
          sc ? `${pct(sc.precision)} (${sc.truePositives}/${sc.flagged})` : "-",
          `${pct(entities.size > 0 ? inCampaign / entities.size : null)} (${inCampaign}/${entities.size})`,
          sc ? `${pct(sc.recall)} (${sc.found}/${sc.truth} ${sc.entity === "uid" ? "users" : "devices"})` : "-",
        ];
      }),
    );
    console.log("more:         node cli/weir.mjs risk signals --since 15m    node cli/weir.mjs rules status");
    return lag === 0 && signals.length > 0;
  } finally {
    await admin.disconnect();
    await ch.close();
  }
}
