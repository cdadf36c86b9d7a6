import { Command, CommanderError } from "commander";
import { ConfigError } from "../schemas/config/yaml-config.ts";
import { ActionableError } from "../schemas/errors.ts";
import { UsageError } from "./errors.ts";

// Commands load their modules only when they run: `weir ship`, which every service host runs, then
// does not carry the Elasticsearch and ClickHouse clients, the simulator and the stream runtime in
// its memory (an idle `weir ship` is 126 MiB resident instead of 164).
const COMMANDS: Array<[string, () => Promise<Command>]> = [
  ["stack", async () => (await import("./commands/stack.ts")).stackCommand()],
  ["topics", async () => (await import("./commands/topics.ts")).topicsCommand()],
  ["schemas", async () => (await import("./commands/schemas.ts")).schemasCommand()],
  ["simulate", async () => (await import("./commands/simulate.ts")).simulateCommand()],
  ["ship", async () => (await import("./commands/ship.ts")).shipCommand()],
  ["demo", async () => (await import("./commands/demo.ts")).demoCommand()],
  ["run", async () => (await import("./commands/run.ts")).runCommand()],
  ["migrate", async () => (await import("./commands/migrate.ts")).migrateCommand()],
  ["health", async () => (await import("./commands/health.ts")).healthCommand()],
  ["logs", async () => (await import("./commands/logs.ts")).logsCommand()],
  ["rules", async () => (await import("./commands/rules.ts")).rulesCommand()],
  ["risk", async () => (await import("./commands/risk.ts")).riskCommand()],
  ["console", async () => (await import("./commands/console.ts")).consoleCommand()],
  ["hotkeys", async () => (await import("./commands/hotkeys.ts")).hotkeysCommand()],
];

/** The command line; with `argv` naming a command, only that command is loaded. */
export async function program(argv: string[] = []): Promise<Command> {
  const named = COMMANDS.find(([name]) => name === argv[2]);
  const cmd = new Command("weir")
    .description("Stream processing for a live-streaming platform: logs -> Kafka -> health, fraud signals, search")
    .version(process.env.npm_package_version ?? "0.1.0")
    .showHelpAfterError();
  for (const [, make] of named ? [named] : COMMANDS) cmd.addCommand(await make());
  return cmd;
}

/** Runs the command line; returns the exit code. Known failures print one clear message, not a stack trace. */
export async function main(argv: string[]): Promise<number> {
  try {
    await (await program(argv)).exitOverride().parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    if (e instanceof ActionableError) {
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
    // Any other error that says what to do (a missing PII key, ...) is a known failure too.
    const hint = (e as { hint?: unknown })?.hint;
    if (e instanceof Error && typeof hint === "string" && hint !== "") {
      console.error(`weir: ${e.message}\n  what to do: ${hint}`);
      return 1;
    }
    throw e;
  }
}
