// A stack of a test's own, beside the shared one: another folder, other ports, the same downloads.
// Tests that freeze, kill or reconfigure servers run them here, never on the shared stack other
// tests use. `weir stack up` starts it as a user would; `down()` stops every process it started.
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  PROJECT_ROOT,
  resolveStackConfig,
  type StackConfig,
  type StackEndpoints,
  type StackServiceKind,
  stackEndpoints,
} from "../../infra/stack/config.ts";
import { LocalStack } from "../../infra/stack/local-stack.ts";
import { stackConfig } from "./stack.ts";

export interface PrivateStackOptions {
  services?: StackServiceKind[];
  /** Kafka brokers (3: a cluster). Default 1. */
  brokers?: number;
  /** SASL/SCRAM + TLS on Kafka, passwords on ClickHouse. */
  security?: boolean;
  /** Kafka's heap per broker. Default 512m. */
  kafkaHeap?: string;
  /** Where the stack lives; default a new folder under the system's temp folder, removed by down(). */
  dir?: string;
}

export interface PrivateStack {
  /** The environment that points weir (commands, clients) at this stack and nothing else. */
  env: NodeJS.ProcessEnv;
  /**
   * That environment with the stack's Kafka named as a remote cluster is: WEIR_KAFKA_BROKERS and, with
   * security on, WEIR_KAFKA_CA_FILE, WEIR_KAFKA_USERNAME and WEIR_KAFKA_PASSWORD_FILE (what a weir
   * process on another machine would be given). Tests' own clients and kcat read the same.
   */
  kafkaEnv: NodeJS.ProcessEnv;
  cfg: StackConfig;
  endpoints: StackEndpoints;
  local: LocalStack;
  /** Runs `weir <args>` against this stack. */
  weir(args: string[], extraEnv?: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }>;
  /** Stops every server of the stack and (unless `keep`) deletes its folder. */
  down(keep?: boolean): Promise<void>;
}

/** `n` free loopback ports in a row from some base, `step` apart, plus `extra` other free ports. */
async function freeRun(n: number, step: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 20_000);
    const ports = Array.from({ length: n }, (_, i) => base + i * step);
    if ((await Promise.all(ports.map(isFree))).every(Boolean)) return base;
  }
  throw new Error(`no ${n} free ports in a row`);
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen({ port, host: "127.0.0.1", exclusive: true }, () => s.close(() => resolve(true)));
  });
}

export async function startPrivateStack(options: PrivateStackOptions = {}): Promise<PrivateStack> {
  const brokers = options.brokers ?? 1;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), "weir-private-stack-"));
  chmodSync(dir, 0o755); // the servers' unprivileged user must reach it
  const kafkaBase = await freeRun(2 * brokers, 1);
  const other = await freeRun(4, 1);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    WEIR_STACK_CONFIG: "",
    WEIR_STACK_DIR: dir,
    WEIR_STACK_DOWNLOADS: stackConfig.paths.downloads,
    WEIR_STACK_SERVICES: (options.services ?? ["kafka", "elasticsearch", "clickhouse"]).join(","),
    WEIR_STACK_BROKERS: String(brokers),
    WEIR_STACK_SECURITY: options.security ? "true" : "false",
    WEIR_KAFKA_PORT: String(kafkaBase),
    WEIR_KAFKA_CONTROLLER_PORT: String(kafkaBase + 1),
    WEIR_KAFKA_HEAP: options.kafkaHeap ?? "512m",
    WEIR_ES_PORT: String(other),
    WEIR_ES_TRANSPORT_PORT: String(other + 1),
    WEIR_ES_HEAP_MIN: "512m",
    WEIR_ES_HEAP_MAX: "512m",
    WEIR_CH_HTTP_PORT: String(other + 2),
    WEIR_CH_TCP_PORT: String(other + 3),
  };
  // Clients started with this environment find this stack, not a cluster named elsewhere.
  for (const k of ["WEIR_KAFKA_BROKERS", "WEIR_ES_URL", "WEIR_CLICKHOUSE_URL", "WEIR_TOPICS_ENV"]) delete env[k];
  const cfg = resolveStackConfig(env);
  const local = new LocalStack(cfg, () => {});
  const weir = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) =>
    new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(process.execPath, [join(PROJECT_ROOT, "cli", "weir.mjs"), ...args], {
        cwd: PROJECT_ROOT,
        env: { ...env, ...extraEnv },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      child.stdout.on("data", (d) => {
        out += d;
      });
      child.stderr.on("data", (d) => {
        out += d;
      });
      child.on("close", (code) => resolve({ code, out }));
    });
  const kafkaEnv: NodeJS.ProcessEnv = {
    ...env,
    WEIR_KAFKA_BROKERS: stackEndpoints(cfg).kafkaBrokers.join(","),
    ...(options.security
      ? {
          WEIR_KAFKA_CA_FILE: join(dir, "tls", "ca.pem"),
          WEIR_KAFKA_USERNAME: "weir",
          WEIR_KAFKA_PASSWORD_FILE: join(dir, "secrets", "kafka-weir.password"),
        }
      : {}),
  };
  const stack: PrivateStack = {
    env,
    kafkaEnv,
    cfg,
    endpoints: stackEndpoints(cfg),
    local,
    weir,
    async down(keep = false) {
      await local.down();
      if (!keep && !options.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
  const up = await weir(["stack", "up"]);
  if (up.code !== 0) {
    await stack.down(true);
    throw new Error(`weir stack up of a private stack in ${dir} failed:\n${up.out.slice(-4000)}`);
  }
  return stack;
}
