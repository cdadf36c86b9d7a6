// Starts what `weir console` runs (and `npm start`'s demo, and the browser tests): the logs search
// as the logs pipeline stores (its config, index prefix and PII key), the alert board following
// alerts.health, the console's server with its bundle, and the webhook notifier.
import { Client } from "@elastic/elasticsearch";
import type pino from "pino";
import { clientEndpoints } from "../../infra/stack/config.ts";
import { AlertBoard } from "../../pipelines/alerts/board.ts";
import { ALERTS_TOPIC, AlertFeed } from "../../pipelines/alerts/feed.ts";
import { NotifierService } from "../../pipelines/alerts/notifier.ts";
import { DEFAULT_SCENES_FILE, SCENES_FILE_ENV, Scenes } from "../../pipelines/alerts/scenes.ts";
import { resolveReceivers } from "../../pipelines/alerts/webhooks.ts";
import { DEFAULT_RULES_DIR, FRAUD_DATABASE } from "../../pipelines/fraud/pipeline.ts";
import { DEFAULT_SLO_FILE, SloConfig } from "../../pipelines/health/slo.ts";
import { HotKeysClient } from "../../pipelines/hotkeys/client/hot-keys-client.ts";
import type { TokenStore } from "../../pipelines/logs/api/tokens.ts";
import { DEFAULT_LOGS_CONFIG_FILE, loadLogsConfig } from "../../pipelines/logs/config.ts";
import { loadPiiKey, PiiKeyError } from "../../pipelines/logs/pii/key.ts";
import { PiiMasker } from "../../pipelines/logs/pii/masker.ts";
import { ClickHouseLogHistogram } from "../../pipelines/logs/search/clickhouse-histogram.ts";
import { searchLimits } from "../../pipelines/logs/search/limits.ts";
import { LogSearch } from "../../pipelines/logs/search/search.ts";
import { ActionableError } from "../../schemas/errors.ts";
import { elasticsearchClientOptions } from "../../sinks/credentials.ts";
import { buildConsoleBundle } from "./bundle.ts";
import { type ConsoleServer, serveConsole } from "./console-server.ts";
import { hotKeysRoutes } from "./hotkeys.ts";
import { CONSOLE_OPENAPI } from "./openapi.ts";
import { RiskConsole, SIGNALS_TOPIC } from "./risk.ts";

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
  /** The rules folder signals are explained with (default: this checkout's rules/). */
  rules?: string;
  /** Database of weir.risk_signals (default WEIR_FRAUD_DATABASE, else weir). */
  fraudDatabase?: string;
  signalsTopic?: string;
  hotkeysTopic?: string;
  marksTopic?: string;
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
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new ActionableError(`--port ${opts.port} is not a port`, "give a number from 0 (any free port) to 65535");
  const clickhouseUrl = opts.clickhouseUrl ?? env.WEIR_CLICKHOUSE_URL ?? clientEndpoints().clickhouseUrl;
  const setup = openStores(opts, clickhouseUrl, env);
  const clickhouse = setup.histogram;
  const scenes = Scenes.load(opts.scenes ?? env[SCENES_FILE_ENV] ?? DEFAULT_SCENES_FILE);
  const slo = SloConfig.load(opts.slo ?? DEFAULT_SLO_FILE);
  const database = opts.database ?? env.WEIR_HEALTH_DATABASE ?? "weir";
  const endpoints = clientEndpoints(env);
  const clickhouseAuth = endpoints.clickhouseAuth;
  const board = new AlertBoard({ clickhouseUrl, clickhouseAuth, database, scenes });
  const brokers = endpoints.kafkaBrokers;
  const security = endpoints.kafkaSecurity;
  const topic = opts.alertsTopic ?? ALERTS_TOPIC;
  // The live feed first, then the history: an alert in between is in one or the other.
  const feed = new AlertFeed({ brokers, security, topic, logger, onAlert: (a) => void board.applyAlert(a) });
  await feed.start();
  await board.load();
  const poll = setInterval(() => {
    board
      .refreshActions()
      .catch((e: unknown) => logger.warn({ err: (e as Error).message }, "reading alert actions failed"));
    board.prune();
  }, 5000);
  const risk = new RiskConsole({
    clickhouseUrl,
    database: opts.fraudDatabase ?? env.WEIR_FRAUD_DATABASE ?? FRAUD_DATABASE,
    rulesDir: opts.rules ?? DEFAULT_RULES_DIR,
    brokers,
    topic: opts.signalsTopic ?? SIGNALS_TOPIC,
    logger,
  });
  await risk.start();
  const hotkeys = new HotKeysClient({
    brokers,
    clientId: "weir-console-hotkeys",
    ...(opts.hotkeysTopic ? { topic: opts.hotkeysTopic } : {}),
    ...(opts.marksTopic ? { marksTopic: opts.marksTopic } : {}),
    onError: (e) => logger.warn({ err: e.message }, "following the hot keys failed"),
  });
  await hotkeys.start();
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
    clickhouseAuth,
    healthDatabase: database,
    slo,
    board,
    bundle,
    port,
    host: opts.host,
    logger,
    openapi: CONSOLE_OPENAPI,
    extraRoutes: [
      ...risk.routes(),
      ...hotKeysRoutes({ client: hotkeys, brokers, ...(opts.marksTopic ? { marksTopic: opts.marksTopic } : {}) }),
    ],
  });
  let notifier: NotifierService | null = null;
  if (opts.notify) {
    const { receivers, skipped } = resolveReceivers(scenes, env);
    for (const s of skipped) logger.info({ receiver: s.name, reason: s.reason }, "webhook receiver skipped");
    if (receivers.length > 0) {
      notifier = new NotifierService({ brokers, security, topic, board, receivers, consoleUrl: server.url, logger });
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
      await risk.stop();
      await hotkeys.close();
      await board.close();
      await Promise.all([setup.client.close(), clickhouse.close()]);
    },
  };
}

/** The logs search and ClickHouse histogram as `weir logs serve` opens them. */
function openStores(opts: ConsoleOptions, clickhouseUrl: string, env: NodeJS.ProcessEnv) {
  const config = loadLogsConfig(opts.config ?? DEFAULT_LOGS_CONFIG_FILE, env);
  let masker: PiiMasker | undefined;
  try {
    masker = new PiiMasker(config.pii, loadPiiKey(env));
  } catch (e) {
    // Without the key every query works but one holding PII, which says which variable to set.
    if (!(e instanceof PiiKeyError)) throw e;
  }
  // A --url of its own gets the environment's credentials only, never the local stack's.
  const endpoints = clientEndpoints(opts.url ? { ...env, WEIR_ES_URL: opts.url } : env);
  const url = endpoints.elasticsearchUrl;
  const limits = searchLimits(config.search.limits);
  const client = new Client({
    ...elasticsearchClientOptions(endpoints, "search"),
    requestTimeout: limits.timeoutMs + 20_000,
    maxRetries: 1,
  });
  const search = new LogSearch({
    client,
    prefix: opts.prefix ?? config.elasticsearch.indexPrefix,
    pii: masker,
    url,
    limits,
  });
  const histogram = new ClickHouseLogHistogram({
    url: clickhouseUrl,
    database: config.clickhouse.database,
    table: config.clickhouse.table,
    pii: masker,
    user: config.search.clickhouse.user,
    password: endpoints.clickhouseSearchPassword,
    limits,
  });
  return { search, client, config, masker, histogram };
}
