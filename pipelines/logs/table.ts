// The logs table's DDL as `weir migrate` builds it: 002_logs.sql's CREATE TABLE, then the migrations
// that alter it (005_logs_url.sql), for a database and table of the caller's choice (tests, benches,
// a second deployment). Applying 002 alone would make a table the pipeline cannot write to.
import { readFileSync } from "node:fs";
import { splitStatements } from "../../sinks/clickhouse/migrate.ts";

/** The migrations that make or change weir.logs, in the order `weir migrate` applies them. */
export const LOGS_TABLE_MIGRATIONS = ["002_logs.sql", "005_logs_url.sql"] as const;

/** Every statement of those files, for `database` (default weir) and `table` (default logs). */
export function logsTableStatements(database = "weir", table = "logs"): string[] {
  return LOGS_TABLE_MIGRATIONS.flatMap((file) =>
    splitStatements(
      readFileSync(new URL(`../../infra/clickhouse/${file}`, import.meta.url), "utf8")
        .replaceAll("CREATE DATABASE IF NOT EXISTS weir", `CREATE DATABASE IF NOT EXISTS ${database}`)
        .replaceAll("weir.logs", `${database}.${table}`),
    ),
  );
}
