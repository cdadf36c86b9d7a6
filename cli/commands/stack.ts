import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Command, Option } from "commander";
import { localKafkaSecurity, resolveStackConfig, stackEndpoints } from "../../infra/stack/config.ts";
import { LocalStack, type ServiceStatus } from "../../infra/stack/local-stack.ts";
import { StackError } from "../../infra/stack/prerequisites.ts";
import { readSecret } from "../../infra/stack/security.ts";
import { UsageError } from "../errors.ts";
import { formatBytes, printTable } from "../table.ts";
import { applyMigrations, printMigrated } from "./migrate.ts";
import { applyCatalog, printApplied } from "./topics.ts";

export function stackCommand(): Command {
  const stack = new Command("stack").description(
    "the local Kafka, Elasticsearch, ClickHouse and Redis (no Docker; state under .stack/, ports from weir-stack.yaml or WEIR_* variables)",
  );

  stack
    .command("up")
    .description(
      "install what is missing, start what is not running, wait until all four answer, apply the topic catalog and the ClickHouse migrations",
    )
    .option("--brokers <n>", "Kafka brokers: 1, or 3 for a KRaft cluster (kafka.brokers, WEIR_STACK_BROKERS)")
    .action(async (opts: { brokers?: string }) => {
      if (opts.brokers !== undefined) {
        if (!/^[1-9]$/.test(opts.brokers))
          throw new UsageError(`--brokers ${opts.brokers}`, "give a broker count such as 1 or 3");
        process.env.WEIR_STACK_BROKERS = opts.brokers;
      }
      const { local, rows } = await stackUp();
      printStatus(rows);
      const endpoints = stackEndpoints(local.cfg);
      const runs = new Set(local.cfg.services);
      console.log("");
      if (runs.has("kafka")) console.log(`Kafka          ${endpoints.kafkaBrokers.join(",")}`);
      if (runs.has("elasticsearch")) console.log(`Elasticsearch  ${endpoints.elasticsearchUrl}`);
      if (runs.has("clickhouse"))
        console.log(
          `ClickHouse     ${endpoints.clickhouseUrl}  (native protocol 127.0.0.1:${local.cfg.clickhouse.tcpPort})`,
        );
      if (runs.has("redis")) console.log(`Redis          ${endpoints.redisUrl}`);
      console.log(`State          ${local.cfg.paths.root}`);
    });

  stack
    .command("down")
    .description("stop all four servers (SIGTERM, then SIGKILL after a grace period)")
    .action(async () => {
      await new LocalStack(resolveStackConfig()).down();
    });

  stack
    .command("status")
    .description("health, version, ports and memory of each server; exit code 1 unless all are healthy")
    .option("--json", "print JSON")
    .action(async (opts: { json?: boolean }) => {
      const rows = await new LocalStack(resolveStackConfig()).status();
      if (opts.json) console.log(JSON.stringify(rows, null, 2));
      else printStatus(rows);
      if (!rows.every((r) => r.healthy)) process.exitCode = 1;
    });

  stack
    .command("logs")
    .description("show a server's log")
    .argument("<service>", "kafka, elasticsearch, clickhouse or redis")
    .option("-f, --follow", "keep printing new lines")
    .option("-n, --lines <n>", "lines to show", "100")
    .addOption(new Option("--stdout", "the process's own stdout/stderr instead of its server log"))
    .action(async (name: string, opts: { follow?: boolean; lines: string; stdout?: boolean }) => {
      const local = new LocalStack(resolveStackConfig());
      const svc = local.service(name);
      const file = opts.stdout ? join(local.cfg.paths.service(svc.name), "logs", "stdout.log") : svc.serverLog();
      if (!existsSync(file)) throw new StackError(`${file} does not exist yet`, "start the stack: weir stack up");
      const args = ["-n", opts.lines, ...(opts.follow ? ["-F"] : []), file];
      await new Promise<void>((resolve) => spawn("tail", args, { stdio: "inherit" }).on("close", () => resolve()));
    });

  stack
    .command("reset")
    .description("stop the stack and delete its data, configs and logs (downloads are kept)")
    .action(async () => {
      await new LocalStack(resolveStackConfig()).reset();
    });

  return stack;
}

/**
 * Brings the local stack up, makes its Kafka match the topic catalog (environment `local` for one
 * broker, `cluster` for more) and applies the ClickHouse migrations, for the servers it runs.
 */
export async function stackUp(): Promise<{ local: LocalStack; rows: ServiceStatus[] }> {
  const local = new LocalStack(resolveStackConfig());
  const rows = await local.up();
  const endpoints = stackEndpoints(local.cfg);
  if (local.cfg.services.includes("kafka")) {
    const environment = local.cfg.kafka.brokers > 1 ? "cluster" : "local";
    const security = local.cfg.security ? localKafkaSecurity(local.cfg) : undefined;
    printApplied(await applyCatalog(endpoints.kafkaBrokers.join(","), false, environment, security), false);
  }
  if (local.cfg.services.includes("clickhouse")) {
    const auth = local.cfg.security
      ? { username: "default", password: readSecret(local.cfg, "clickhouse-default") }
      : undefined;
    const migrated = await applyMigrations(endpoints.clickhouseUrl, false, undefined, auth);
    if (migrated) printMigrated(migrated);
  }
  return { local, rows };
}

function printStatus(rows: ServiceStatus[]): void {
  const table = rows.map((r) => [
    r.service,
    r.running ? (r.healthy ? "healthy" : "unhealthy") : "stopped",
    r.version,
    Object.entries(r.ports)
      .map(([k, v]) => `${k} ${v}`)
      .join(", "),
    r.pid ? String(r.pid) : "-",
    r.running ? formatBytes(r.rss) : "-",
    r.detail,
  ]);
  printTable(["SERVICE", "STATE", "VERSION", "PORTS", "PID", "RSS", "DETAIL"], table);
}
