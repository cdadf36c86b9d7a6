// weir console: the web console (web/) on weir's own HTTP server, with the logs API's tokens and
// limits: Logs, Health, Alerts, Risk and Hot keys pages, the alert board pushed live, and the webhook notifier.
// `weir console build --out <dir>` writes the static bundle.
import { resolve } from "node:path";
import { Command } from "commander";
import pino from "pino";
import { ALERTS_TOPIC } from "../../pipelines/alerts/feed.ts";
import { SCENES_FILE_ENV } from "../../pipelines/alerts/scenes.ts";
import { TokenStore } from "../../pipelines/logs/api/tokens.ts";
import { buildConsoleBundle, writeConsoleBundle } from "../../web/server/bundle.ts";
import { CONSOLE_OPENAPI } from "../../web/server/openapi.ts";
import { CONSOLE_PORT, type ConsoleOptions, startConsole } from "../../web/server/start.ts";

export function consoleCommand(): Command {
  const cmd = new Command("console")
    .description(
      "the web console: logs, health, alerts, risk and hot keys pages on weir's HTTP server, with the logs API's tokens (docs/console.md)",
    )
    .option("--port <port>", "port (0: any free one)", String(CONSOLE_PORT))
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--tokens <file>", "YAML file of token hashes and their services (default: WEIR_LOGS_TOKENS_FILE)")
    .option("--config <logs.yaml>", "the logs pipeline's configuration (index prefix, PII, limits)")
    .option("--prefix <prefix>", "index prefix (default: the logs config's)")
    .option("--slo <slo.yaml>", "the health pipeline's objectives (default pipelines/health/slo.yaml)")
    .option(
      "--scenes <scenes.yaml>",
      `business scenes, people on duty, receivers (default: ${SCENES_FILE_ENV}, else pipelines/alerts/scenes.yaml)`,
    )
    .option("--url <url>", "Elasticsearch URL (default: WEIR_ES_URL, else the local stack)")
    .option("--clickhouse-url <url>", "ClickHouse HTTP URL (default: WEIR_CLICKHOUSE_URL, else the local stack)")
    .option("--database <name>", "database of the health and alert tables (default weir)")
    .option("--alerts-topic <topic>", `the health alerts' topic (default ${ALERTS_TOPIC})`)
    .option("--rules <dir>", "the rules folder signals are explained with (default: this checkout's rules/)")
    .option("--fraud-database <name>", "database of weir.risk_signals (default: WEIR_FRAUD_DATABASE, else weir)")
    .option("--signals-topic <topic>", "the risk signals' topic (default signals.risk)")
    .option("--hotkeys-topic <topic>", "the hot-key lists' topic (default hotkeys.top)")
    .option("--marks-topic <topic>", "the hot-key marks' topic (default hotkeys.marks)")
    .option("--no-notify", "do not send alerts to the scenes' webhook receivers")
    .action(async (opts: ConsoleOptions) => {
      const logger = pino({ name: "weir-console" });
      const tokens = TokenStore.fromEnv(process.env, opts.tokens);
      const running = await startConsole(opts, tokens, logger);
      logger.info({ url: running.console.url, bundle: running.bundleSize }, `console on ${running.console.url}`);
      await new Promise<void>((r) => {
        process.once("SIGINT", r);
        process.once("SIGTERM", r);
      });
      await running.stop();
    });
  cmd
    .command("build")
    .description("write the console's static bundle (index.html, assets/) into a folder")
    .requiredOption("--out <dir>", "where to write it")
    .action(async (o: { out: string }) => {
      const bundle = await buildConsoleBundle();
      for (const f of writeConsoleBundle(bundle, resolve(o.out))) console.log(f);
      const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
      console.log(
        `script ${kb(bundle.size.js)} (${kb(bundle.size.jsGzip)} gzipped), stylesheet ${kb(bundle.size.css)} (${kb(bundle.size.cssGzip)} gzipped), built in ${Math.round(bundle.buildMs)} ms`,
      );
    });
  cmd
    .command("openapi")
    .description("print the console's OpenAPI 3.1 document (what docs/console-api.openapi.json holds)")
    .action(() => console.log(JSON.stringify(CONSOLE_OPENAPI, null, 2)));
  return cmd;
}
