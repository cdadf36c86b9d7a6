// Runs `weir ship` as a child process, the way a service host runs it, for tests that kill it,
// starve it of Kafka and count what arrived. Also builds the shipper's config for the traffic
// simulator's output folder.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { type SimulatorTopics, simulatorShipConfig as simulatorShipYaml } from "../../infra/simulator/ship-config.ts";
import { PROJECT_ROOT } from "../../infra/stack/config.ts";
import { codecFor } from "../../schemas/codec.ts";
import type { ShipSource } from "../../schemas/types.generated.ts";
import { endpoints, kafkaClient } from "./stack.ts";

export interface ShipProcess {
  child: ChildProcess;
  /** stdout and stderr so far (pino JSON lines). */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startShip(args: string[], env: NodeJS.ProcessEnv = {}): ShipProcess {
  const child = spawn(process.execPath, [join(PROJECT_ROOT, "cli/weir.mjs"), "ship", ...args], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, WEIR_KAFKA_BROKERS: endpoints.kafkaBrokers.join(","), ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  const keep = (d: Buffer) => {
    out += d.toString();
    if (out.length > 4_000_000) out = out.slice(-2_000_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => out, exited };
}

/** Resident memory of a process, from /proc (bytes), or 0 once it is gone. */
export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export async function createTopics(topics: string[], partitions = 6): Promise<void> {
  const admin = kafkaClient("weir-test-ship").admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: topics.map((topic) => ({ topic, numPartitions: partitions })),
      waitForLeaders: true,
    });
  } finally {
    await admin.disconnect();
  }
}

export async function deleteTopics(topics: string[]): Promise<void> {
  const admin = kafkaClient("weir-test-ship").admin();
  await admin.connect();
  try {
    await admin.deleteTopics({ topics }).catch(() => {});
  } finally {
    await admin.disconnect();
  }
}

/** Sum of the end offsets of the topics' partitions: how many messages they hold. */
export async function messageCount(topics: string[]): Promise<number> {
  const admin = kafkaClient("weir-test-ship").admin();
  await admin.connect();
  try {
    let n = 0;
    for (const t of topics) for (const p of await admin.fetchTopicOffsets(t)) n += Number(p.high) - Number(p.low);
    return n;
  } finally {
    await admin.disconnect();
  }
}

/** The shipper's YAML config for a simulator output folder, with the topics declared (tests use private copies). */
export function simulatorShipConfig(
  simDir: string,
  dataDir: string,
  topics: SimulatorTopics,
  extra: { channelMaxBytes?: string; metricsPort?: number } = {},
): string {
  return `# written by test/support/ship.ts\n${stringify(simulatorShipYaml(simDir, dataDir, topics, { ...extra, declareTopics: true }))}`;
}

/** The stream a shipped file belongs to: `/sim/gift-svc/access.log.2` -> `gift-svc/access`. */
export function streamOf(file: string): string {
  const parts = file.split("/");
  const name = (parts.at(-1) ?? "").replace(/\.log(\.\d+)?$/, "");
  return `${parts.at(-2)}/${name}`;
}

/** The ShipSource of a shipped event, whatever its schema (all of them end with it). */
export function shipSourceOf(
  schema: "AccessLog" | "AppLog" | "BehaviorEvent" | "CoinTxn" | "DeviceReport",
  value: Buffer,
): ShipSource {
  const codec = codecFor(schema);
  const rec = codec.decode(value) as { source: ShipSource | null };
  if (!rec.source) throw new Error(`a shipped ${schema} has no source`);
  return rec.source;
}

/** The port a `weir ship` started with `metrics.port: 0` serves /metrics on, read from its start-up log line. */
export async function shipMetricsPort(ship: ShipProcess, timeoutMs = 60_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = /"metricsPort":(\d+)/.exec(ship.output());
    if (m) return Number(m[1]);
    if (ship.child.exitCode !== null || ship.child.signalCode !== null)
      throw new Error(`weir ship exited before it served /metrics:\n${ship.output().slice(-3000)}`);
    if (Date.now() > deadline) throw new Error(`weir ship served no /metrics within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A metric of a Prometheus /metrics page on 127.0.0.1, summed over its label sets; 0 when it has none yet. */
export async function metricSum(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "gm"))) sum += Number(m[1]);
  return sum;
}
