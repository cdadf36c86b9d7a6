// weir migrate: applies infra/clickhouse/*.sql to a ClickHouse server, each file once, in name order
// (sinks/clickhouse/migrate.ts). Also run by `weir stack up`.

import { join, resolve } from "node:path";
import { Command } from "commander";
import { clientEndpoints, PROJECT_ROOT } from "../../infra/stack/config.ts";
import { classify } from "../../sinks/clickhouse/errors.ts";
import { MigrationError, type MigrationResult, migrate } from "../../sinks/clickhouse/migrate.ts";
import type { ClickHouseAuth } from "../../sinks/credentials.ts";

export const MIGRATIONS_DIR = join(PROJECT_ROOT, "infra", "clickhouse");

export function migrateCommand(): Command {
  return new Command("migrate")
    .description("apply the ClickHouse migrations (infra/clickhouse/*.sql) not applied yet, in name order")
    .option("--url <url>", "ClickHouse HTTP URL (default: WEIR_CLICKHOUSE_URL, else the local stack)")
    .option("--dry-run", "show what would be applied, change nothing")
    .option("--dir <folder>", "the migrations folder (default: infra/clickhouse of this checkout)")
    .action(async (opts: { url?: string; dryRun?: boolean; dir?: string }) => {
      const result = await applyMigrations(opts.url, !!opts.dryRun, opts.dir ? resolve(opts.dir) : MIGRATIONS_DIR);
      if (result) printMigrated(result);
    });
}

/**
 * `weir migrate`, also run by `weir stack up`. A refused or failed migration, or a server that does
 * not answer, is printed with what to do (exit code 1) and gives undefined.
 */
export async function applyMigrations(
  url: string | undefined,
  dryRun: boolean,
  dir = MIGRATIONS_DIR,
  auth?: ClickHouseAuth,
): Promise<MigrationResult | undefined> {
  // A --url of its own gets the environment's credentials only, never the local stack's.
  const endpoints = clientEndpoints(url ? { ...process.env, WEIR_CLICKHOUSE_URL: url } : process.env);
  const target = endpoints.clickhouseUrl;
  try {
    return await migrate({ url: target, dir, dryRun, auth: auth ?? endpoints.clickhouseAuth });
  } catch (e) {
    if (e instanceof MigrationError) {
      console.error(`weir: ${e.message}${e.hint ? `\n  what to do: ${e.hint}` : ""}`);
    } else if (classify(e).code === null) {
      console.error(
        `weir: ClickHouse at ${target} did not answer (${(e as Error).message})\n  what to do: start the local stack (weir stack up) or pass --url`,
      );
    } else throw e;
    process.exitCode = 1;
    return undefined;
  }
}

export function printMigrated(result: MigrationResult): void {
  const verb = result.dryRun ? "would apply" : "applied";
  for (const f of result.applied) {
    console.log(
      `migrate: ${verb} ${f.name} (${f.statements.length} statement${f.statements.length === 1 ? "" : "s"}, sha256 ${f.sha256.slice(0, 12)})`,
    );
  }
  if (result.applied.length === 0) console.log(`migrate: all ${result.unchanged.length} migrations already applied`);
  for (const name of result.missing) console.log(`migrate: ${name} is recorded as applied but no longer in the folder`);
}
