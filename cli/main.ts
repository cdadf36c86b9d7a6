import { Command, CommanderError } from "commander";
import { StackError } from "../infra/stack/prerequisites.ts";
import { ConfigError } from "../schemas/config/yaml-config.ts";
import { demoCommand } from "./commands/demo.ts";
import { healthCommand } from "./commands/health.ts";
import { logsCommand } from "./commands/logs.ts";
import { migrateCommand } from "./commands/migrate.ts";
import { runCommand } from "./commands/run.ts";
import { schemasCommand } from "./commands/schemas.ts";
import { shipCommand } from "./commands/ship.ts";
import { simulateCommand } from "./commands/simulate.ts";
import { stackCommand } from "./commands/stack.ts";
import { topicsCommand } from "./commands/topics.ts";
import { UsageError } from "./errors.ts";

export function program(): Command {
  return new Command("weir")
    .description("Stream processing for a live-streaming platform: logs -> Kafka -> health, fraud signals, search")
    .version(process.env.npm_package_version ?? "0.1.0")
    .showHelpAfterError()
    .addCommand(stackCommand())
    .addCommand(topicsCommand())
    .addCommand(schemasCommand())
    .addCommand(simulateCommand())
    .addCommand(shipCommand())
    .addCommand(demoCommand())
    .addCommand(runCommand())
    .addCommand(migrateCommand())
    .addCommand(healthCommand())
    .addCommand(logsCommand());
}

/** Runs the command line; returns the exit code. Known failures print one clear message, not a stack trace. */
export async function main(argv: string[]): Promise<number> {
  try {
    await program().exitOverride().parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    if (e instanceof StackError) {
      console.error(`weir: ${e.message}${e.hint ? `\n  what to do: ${e.hint}` : ""}`);
      return 1;
    }
    if (e instanceof UsageError) {
      console.error(`weir: ${e.message}${e.hint ? `\n  what to do: ${e.hint}` : ""}`);
      return 2;
    }
    if (e instanceof ConfigError) {
      console.error(`weir: invalid configuration\n${e.message}`);
      return 2;
    }
    throw e;
  }
}
