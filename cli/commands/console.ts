// weir console: the web console (web/) on weir's own HTTP server, with the logs API's tokens and
// limits: Logs, Health and Alerts pages, the alert board pushed live, and the webhook notifier.
// `weir console build --out <dir>` writes the static bundle.
import { resolve } from "node:path";
import { Command } from "commander";
import pino from "pino";
import { clientEndpoints } from "../../infra/stack/config.ts";
import { AlertBoard } from "../../pipelines/alerts/board.ts";
import { ALERTS_TOPIC, AlertFeed } from "../../pipelines/alerts/feed.ts";
import { NotifierService } from "../../pipelines/alerts/notifier.ts";
import { DEFAULT_SCENES_FILE, SCENES_FILE_ENV, Scenes } from "../../pipelines/alerts/scenes.ts";
import { resolveReceivers } from "../../pipelines/alerts/webhooks.ts";
import { DEFAULT_SLO_FILE, SloConfig } from "../../pipelines/health/slo.ts";
import { TokenStore } from "../../pipelines/logs/api/tokens.ts";
import { buildConsoleBundle, writeConsoleBundle } from "../../web/server/bundle.ts";
import { type ConsoleServer, serveConsole } from "../../web/server/console-server.ts";
import { UsageError } from "../errors.ts";
import { openClickHouse, openSearch } from "./logs.ts";

export const CONSOLE_PORT = 8480;

export interface ConsoleOptions {
  port: string;
  host: string;
  tokens?: string;
  config?: string;
  /** Index prefix (default: the logs config's). */
  prefix?: string;
  slo?: string;
  scenes?: string;
  url?: string;
  clickhouseUrl?: string;
  database?: string;
  alertsTopic?: string;
  notify: boolean;
}

export interface RunningConsole {
  console: ConsoleServer;
  board: AlertBoard;
  bundleSize: { js: number; css: number; jsGzip: number; cssGzip: number };
  stop(): Promise<void>;
}

/** Starts everything `weir console` runs; `npm start`'s demo calls it too. */
export async function startConsole(
  opts: ConsoleOptions,
  tokens: TokenStore,
  logger: pino.Logger,
  env: NodeJS.ProcessEnv = process.env,
): Promise<RunningConsole> {
  const port = Number(opts.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port ${opts.port} is not a port`);
  const setup = openSearch({
    ...(opts.url ? { url: opts.url } : {}),
    ...(opts.config ? { config: opts.config } : {}),
    ...(opts.prefix ? { prefix: opts.prefix } : {}),
  });
  const clickhouse = openClickHouse(opts, setup);
  const clickhouseUrl = opts.clickhouseUrl ?? clientEndpoints().clickhouseUrl;
  const scenes = Scenes.load(opts.scenes ?? env[SCENES_FILE_ENV] ?? DEFAULT_SCENES_FILE);
  const slo = SloConfig.load(opts.slo ?? DEFAULT_SLO_FILE);
  const database = opts.database ?? env.WEIR_HEALTH_DATABASE ?? "weir";
  const board = new AlertBoard({ clickhouseUrl, database, scenes });
  const brokers = clientEndpoints().kafkaBrokers;
  const topic = opts.alertsTopic ?? ALERTS_TOPIC;
  // The live feed first, then the history: an alert in between is in one or the other.
  const feed = new AlertFeed({ brokers, topic, logger, onAlert: (a) => void board.applyAlert(a) });
  await feed.start();
  await board.load();
  const poll = setInterval(() => {
    board
      .refreshActions()
      .catch((e: unknown) => logger.warn({ err: (e as Error).message }, "reading alert actions failed"));
    board.prune();
  }, 5000);
  const bundle = await buildConsoleBundle();
  const server = await serveConsole({
    logs: {
      search: setup.search,
      clickhouse,
      elasticsearchRetentionMs: setup.config.elasticsearch.retention,
      tokens,
      apiLimits: setup.config.search.api,
      ...(setup.masker ? { masker: setup.masker } : {}),
    },
    clickhouseUrl,
    healthDatabase: database,
    slo,
    board,
    bundle,
    port,
    host: opts.host,
    logger,
  });
  let notifier: NotifierService | null = null;
  if (opts.notify) {
    const { receivers, skipped } = resolveReceivers(scenes, env);
    for (const s of skipped) logger.info({ receiver: s.name, reason: s.reason }, "webhook receiver skipped");
    if (receivers.length > 0) {
      notifier = new NotifierService({ brokers, topic, board, receivers, consoleUrl: server.url, logger });
      await notifier.start();
    }
  }
  return {
    console: server,
    board,
    bundleSize: bundle.size,
    stop: async () => {
      clearInterval(poll);
      await notifier?.stop();
      await feed.stop();
      await server.close();
      await board.close();
      await Promise.all([setup.client.close(), clickhouse.close()]);
    },
  };
}

export function consoleCommand(): Command {
  const cmd = new Command("console")
    .description(
      "the web console: logs, health and alerts pages on weir's HTTP server, with the logs API's tokens (docs/console.md)",
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
  return cmd;
}
