// `weir rules backtest --from/--to` against live processing, on the same events: a simulator run's
// business events (behavior, coin, device) produced to topics of their own, then
//
//   live:      one `weir run fraud` worker (its own group, topics and ClickHouse database), started
//              and idle before the events are produced; measured from the first event produced until
//              its group has committed every event (wall), and by the worker's CPU time over that span;
//   backtest:  the same topics' records of the period read back through the same rules in this
//              process, as `weir rules backtest --from --to` does (backtestKafka), by wall and CPU time.
//
// CPU time (user + system, from /proc and process.cpuUsage) is what counts on a shared machine: the
// wall time of either depends on what else runs. The repository's rules/ run in both.
//
//   node --import tsx bench/fraud-backtest/bench.ts [--seconds 60] [--rate 2000] [--seed 1] [--runs 3]
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@clickhouse/client";
import { SIMULATE_DEFAULTS, simulate } from "../../infra/simulator/simulate.ts";
import { clientEndpoints, PROJECT_ROOT } from "../../infra/stack/config.ts";
import { KafkaClient } from "../../kafka/client.ts";
import { backtestKafka, readSimulatorEvents } from "../../pipelines/fraud/backtest.ts";
import { STREAMS, type StreamName } from "../../pipelines/fraud/cel/environment.ts";
import { encodeEvent } from "../../pipelines/fraud/engine/envelope.ts";
import { DEFAULT_RULES_DIR } from "../../pipelines/fraud/pipeline.ts";
import { compileRuleSet } from "../../pipelines/fraud/rules/compile.ts";
import type { RuleSetPlan } from "../../pipelines/fraud/rules/plan.ts";
import { splitStatements } from "../../sinks/clickhouse/migrate.ts";
import { benchFlags } from "../support/flags.ts";
import { cpuMsOf, median } from "../support/process.ts";

const { num } = benchFlags();
const seconds = num("seconds", 60);
const rate = num("rate", 2000);
const seed = num("seed", 1);
const runs = num("runs", 3);
const PARTITIONS = 6;
const STREAM_LIST: StreamName[] = ["behavior", "coin", "device"];

const endpoints = clientEndpoints();
const id = randomUUID().replaceAll("-", "").slice(0, 10);
const appId = `fraud-bt-${id}`;
const prefix = `bt-${id}.`;
const database = `fraud_bt_${id}`;
const topics = {
  ...Object.fromEntries(STREAM_LIST.map((s) => [s, `${prefix}${STREAMS[s].topic}`])),
  signals: `${prefix}signals.risk`,
  dlq: `${prefix}dlq.fraud`,
  snapshots: `${prefix}rules.snapshots`,
  status: `${prefix}rules.status`,
} as Record<StreamName | "signals" | "dlq" | "snapshots" | "status", string>;
const kafka = new KafkaClient({ brokers: endpoints.kafkaBrokers, clientId: "weir-bench-fraud-backtest" });
const admin = kafka.native.admin();
const ch = createClient({ url: endpoints.clickhouseUrl });
const dirs: string[] = [];
let worker: ChildProcess | null = null;

function temp(name: string): string {
  const d = mkdtempSync(join(tmpdir(), `weir-bench-bt-${name}-`));
  dirs.push(d);
  return d;
}

/** Event-topic records the worker's group has not committed (a transaction's marker counts one per partition). */
async function behind(): Promise<number> {
  let n = 0;
  for (const s of STREAM_LIST) {
    const topic = topics[s];
    const ends = await admin.fetchTopicOffsets(topic);
    const [committed] = await admin.fetchOffsets({ groupId: appId, topics: [topic] });
    for (const e of ends) {
      const c = Number(committed?.partitions.find((p) => p.partition === e.partition)?.offset ?? -1);
      n += Math.max(0, Number(e.high) - Math.max(c, 0) - 1);
    }
  }
  return n;
}

async function main(): Promise<void> {
  const plan = compileRuleSet(DEFAULT_RULES_DIR).plan as RuleSetPlan;
  // The traffic: a simulator run ending a minute ago, its business events encoded as their topics hold them.
  const simDir = temp("sim");
  const start = Date.now() - seconds * 1000 - 60_000;
  await simulate({ ...SIMULATE_DEFAULTS, seed, durationMs: seconds * 1000, rate, out: simDir, start });
  const events = readSimulatorEvents(simDir, new Set(STREAM_LIST)).map((e) => ({
    topic: topics[e.stream],
    key: e.stream === "device" ? String(e.record.deviceId) : String(e.record.uid ?? ""),
    ts: e.ts,
    value: encodeEvent(e.stream, e.record),
  }));
  const from = Math.min(...events.map((e) => e.ts));
  const to = Math.max(...events.map((e) => e.ts)) + 1;
  console.log(
    `${events.length} business events of a ${seconds} s simulator run (seed ${seed}, ${rate}/s), ${plan.rules.length} rules (snapshot ${plan.version}), ${PARTITIONS} partitions per topic`,
  );

  await admin.connect();
  const compact = [{ name: "cleanup.policy", value: "compact" }];
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      ...STREAM_LIST.map((s) => ({ topic: topics[s], numPartitions: PARTITIONS })),
      { topic: topics.signals, numPartitions: 3 },
      { topic: topics.dlq, numPartitions: 1 },
      { topic: topics.snapshots, numPartitions: 1, configEntries: compact },
      { topic: topics.status, numPartitions: 1, configEntries: compact },
    ],
  });
  const ddl = readFileSync(join(PROJECT_ROOT, "infra", "clickhouse", "003_risk_signals.sql"), "utf8")
    .replaceAll("CREATE DATABASE IF NOT EXISTS weir", `CREATE DATABASE IF NOT EXISTS ${database}`)
    .replaceAll("weir.", `${database}.`);
  for (const stmt of splitStatements(ddl)) await ch.command({ query: stmt });

  // Live: the worker first, idle until it has its partitions; then the events.
  let log = "";
  worker = spawn(
    process.execPath,
    ["cli/weir.mjs", "run", "fraud", "--instance", "bench", "--data-dir", temp("worker")],
    {
      cwd: PROJECT_ROOT,
      env: {
        ...process.env,
        WEIR_ENV: "development",
        WEIR_PII_KEY: "",
        WEIR_PII_KEY_FILE: "",
        WEIR_FRAUD_APP_ID: appId,
        WEIR_FRAUD_DATABASE: database,
        WEIR_FRAUD_TOPIC_PREFIX: prefix,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const keep = (d: Buffer) => {
    log = (log + d).slice(-20_000);
  };
  worker.stdout?.on("data", keep);
  worker.stderr?.on("data", keep);
  const pid = worker.pid as number;
  const until = async (what: string, check: () => Promise<boolean> | boolean, ms: number, every = 250) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (await check()) return;
      if (worker?.exitCode !== null) throw new Error(`the worker exited while waiting for ${what}:\n${log}`);
      await new Promise((r) => setTimeout(r, every));
    }
    throw new Error(`timed out waiting for ${what}:\n${log.slice(-3000)}`);
  };
  await until("the worker's partitions", () => /"msg":"assignment"/.test(log), 180_000, 500);
  // Its start's work (compiling the rules, joining, restoring nothing) is over before the clock starts.
  await new Promise((r) => setTimeout(r, 5000));
  // In transactions, as weir ship writes: the topics end with commit markers, as in production.
  const producer = kafka.native.producer({
    idempotent: true,
    transactionalId: `${appId}-bench`,
    maxInFlightRequests: 1,
  });
  await producer.connect();
  const cpu0 = cpuMsOf(pid);
  const t0 = Date.now();
  for (let i = 0; i < events.length; i += 5000) {
    const chunk = events.slice(i, i + 5000);
    const tx = await producer.transaction();
    await tx.sendBatch({
      acks: -1,
      topicMessages: STREAM_LIST.map((s) => ({
        topic: topics[s],
        messages: chunk
          .filter((e) => e.topic === topics[s])
          .map((e) => ({ key: e.key, value: e.value, timestamp: String(e.ts) })),
      })).filter((t) => t.messages.length > 0),
    });
    await tx.commit();
  }
  const produced = Date.now() - t0;
  await producer.disconnect();
  await until("the worker to commit every event", async () => (await behind()) === 0, 900_000);
  const liveWall = (Date.now() - t0) / 1000;
  const liveCpu = (cpuMsOf(pid) - cpu0) / 1000;
  const liveRows = await (
    await ch.query({ query: `SELECT count() AS n FROM ${database}.risk_signals FINAL`, format: "JSONEachRow" })
  ).json<{ n: string }>();

  // Backtest: the same records, read back, in this process.
  const bt: Array<{ wall: number; cpu: number; events: number; signals: number }> = [];
  for (let r = 0; r < runs; r++) {
    const c0 = process.cpuUsage();
    const w0 = process.hrtime.bigint();
    const report = await backtestKafka(plan, null, {
      kafka,
      topicPrefix: prefix,
      from,
      to,
      hashKey: Buffer.alloc(32),
    });
    const c = process.cpuUsage(c0);
    bt.push({
      wall: Number(process.hrtime.bigint() - w0) / 1e9,
      cpu: (c.user + c.system) / 1e6,
      events: report.candidate.events,
      signals: report.candidate.signals.length,
    });
  }
  const btWall = median(bt.map((b) => b.wall));
  const btCpu = median(bt.map((b) => b.cpu));
  const n = events.length;
  const row = (what: string, wall: number, cpu: number, signals: string) =>
    `| ${what} | ${n} | ${wall.toFixed(1)} | ${Math.round(n / wall)} | ${cpu.toFixed(1)} | ${Math.round(n / cpu)} | ${signals} |`;
  console.log("\n| | events | wall s | events/s (wall) | CPU s | events per CPU-second | signals |");
  console.log("|---|---|---|---|---|---|---|");
  console.log(
    row("live: weir run fraud, 1 worker", liveWall, liveCpu, `${liveRows[0]?.n} (ClickHouse, shadow included)`),
  );
  console.log(row(`backtest --from/--to (median of ${runs})`, btWall, btCpu, `${bt[0]?.signals} (shadow included)`));
  console.log(
    `\nbacktest / live: ${(liveWall / btWall).toFixed(2)}x by wall time, ${(liveCpu / btCpu).toFixed(2)}x by CPU time; the events were produced in ${(produced / 1000).toFixed(1)} s; backtest runs: ${bt.map((b) => `${b.wall.toFixed(1)} s wall / ${b.cpu.toFixed(1)} s CPU / ${b.events} events`).join(", ")}`,
  );
}

try {
  await main();
} finally {
  // assigned in main(): the compiler cannot see it
  const w = worker as ChildProcess | null;
  if (w && w.exitCode === null) {
    const exited = new Promise((r) => w.once("exit", r));
    w.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
    if (w.exitCode === null) w.kill("SIGKILL");
  }
  await ch.command({ query: `DROP DATABASE IF EXISTS ${database}` }).catch(() => {});
  await ch.close();
  const internal = (await admin.listTopics().catch(() => [] as string[])).filter((t) => t.startsWith(`${appId}-`));
  await admin.deleteTopics({ topics: [...Object.values(topics), ...internal] }).catch(() => {});
  await admin.deleteGroups([appId]).catch(() => {});
  await admin.disconnect().catch(() => {});
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
