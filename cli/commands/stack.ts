import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Command, Option } from "commander";
import { resolveStackConfig, stackEndpoints } from "../../infra/stack/config.ts";
import { LocalStack, type ServiceStatus } from "../../infra/stack/local-stack.ts";
import { StackError } from "../../infra/stack/prerequisites.ts";
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
    .action(async () => {
      const { local, rows } = await stackUp();
      printStatus(rows);
      const endpoints = stackEndpoints(local.cfg);
      console.log(`\nKafka          ${endpoints.kafkaBrokers.join(",")}`);
      console.log(`Elasticsearch  ${endpoints.elasticsearchUrl}`);
      console.log(
        `ClickHouse     ${endpoints.clickhouseUrl}  (native protocol 127.0.0.1:${local.cfg.clickhouse.tcpPort})`,
      );
      console.log(`Redis          ${endpoints.redisUrl}`);
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

/** Brings the local stack up, makes its Kafka match the topic catalog and applies the ClickHouse migrations. */
export async function stackUp(): Promise<{ local: LocalStack; rows: ServiceStatus[] }> {
  const local = new LocalStack(resolveStackConfig());
  const rows = await local.up();
  printApplied(await applyCatalog(stackEndpoints(local.cfg).kafkaBrokers.join(","), false), false);
  const migrated = await applyMigrations(stackEndpoints(local.cfg).clickhouseUrl, false);
  if (migrated) printMigrated(migrated);
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
