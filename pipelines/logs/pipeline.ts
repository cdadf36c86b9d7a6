// `weir run logs`: the logs topology with its two sinks (Elasticsearch, ClickHouse), the index
// template installed before the first document, the retention of both stores and a periodic line of
// counters in the log, all in the worker process.

import { type ClickHouseClient, createClient } from "@clickhouse/client";
import { Client } from "@elastic/elasticsearch";
import type { Logger } from "pino";
import { ActionableError } from "../../schemas/errors.ts";
import { dailyExpiry, PartitionRetention, RetentionScheduler } from "../../sinks/clickhouse/retention.ts";
import { ClickHouseSink } from "../../sinks/clickhouse/sink.ts";
import { ident, sql } from "../../sinks/clickhouse/sql.ts";
import { clickhouseCredentials, elasticsearchClientOptions } from "../../sinks/credentials.ts";
import { IndexRetention, IndexRetentionScheduler } from "../../sinks/elasticsearch/retention.ts";
import { ElasticsearchSink } from "../../sinks/elasticsearch/sink.ts";
import { installTemplates } from "../../sinks/elasticsearch/templates.ts";
import type { Pipeline, PipelineContext } from "../types.ts";
import { DEFAULT_LOGS_CONFIG_FILE, type LogsConfig, loadLogsConfig } from "./config.ts";
import { logLineMapping } from "./documents.ts";
import type { LogLine } from "./lines.ts";
import { loadPiiKey, type PiiKey, PiiKeyError } from "./pii/key.ts";
import { PiiMasker } from "./pii/masker.ts";
import { denseLogRow, LOG_COLUMNS } from "./rows.ts";
import { logsTemplates } from "./template.ts";
import { buildLogsApp } from "./topology.ts";

/** How long the worker waits at start for Elasticsearch and ClickHouse to answer. */
const STARTUP_WAIT_MS = 60_000;
/** How often the counters are logged. */
const STATS_EVERY_MS = 60_000;

/** The PII key; without one the worker stops at start with what to do (the CLI prints an ActionableError's hint). */
function pipelineKey(env: NodeJS.ProcessEnv): PiiKey {
  try {
    return loadPiiKey(env);
  } catch (e) {
    if (e instanceof PiiKeyError) throw new ActionableError(e.message, e.hint);
    throw e;
  }
}

/** The template of an index prefix: `weir-logs` for `logs`, so each prefix has its own. */
export function templateNameOf(prefix: string): string {
  return `weir-${prefix}`;
}

export async function logsPipeline(ctx: PipelineContext): Promise<Pipeline> {
  const config = loadLogsConfig(ctx.config ?? DEFAULT_LOGS_CONFIG_FILE, ctx.env);
  const log = ctx.logger;
  const key = pipelineKey(ctx.env);
  if (key.isDevelopment) {
    log.warn(
      { key: String(key) },
      "PII tokens are made with the PUBLIC development key (WEIR_ENV=development): they protect nothing; set WEIR_PII_KEY_FILE in production",
    );
  }
  const masker = new PiiMasker(config.pii, key);
  const es = new Client(elasticsearchClientOptions(ctx.endpoints));
  const ch = createClient({ url: ctx.endpoints.clickhouseUrl, ...clickhouseCredentials(ctx.endpoints.clickhouseAuth) });
  try {
    await prepareStores(config, es, ch, ctx);
  } catch (e) {
    await es.close();
    await ch.close();
    throw e;
  }

  const esConfig = config.elasticsearch;
  const esSink = new ElasticsearchSink<LogLine>({
    name: "elasticsearch-logs",
    client: es,
    logger: log,
    flushBytes: esConfig.flushBytes,
    flushInterval: esConfig.flushInterval,
    concurrency: esConfig.concurrency,
    retries: esConfig.retries,
    ...logLineMapping(esConfig.indexPrefix),
  });
  const chConfig = config.clickhouse;
  const chSink = new ClickHouseSink<LogLine>({
    name: "clickhouse-logs",
    client: ch,
    url: ctx.endpoints.clickhouseUrl,
    database: chConfig.database,
    table: chConfig.table,
    batchSize: chConfig.batchSize,
    flushInterval: chConfig.flushInterval,
    retries: chConfig.retries,
    logger: log,
    // RowBinary: less CPU than JSONEachRow on the worker and on the server (bench/results/logs-clickhouse.md).
    // The sink checks LOG_COLUMNS against the table before its first INSERT.
    format: "RowBinary",
    columns: [...LOG_COLUMNS],
    toRow: denseLogRow,
  });
  const app = buildLogsApp({
    masker,
    sinks: [esSink, chSink],
    appId: config.appId,
    appTopic: config.topics.app,
    accessTopic: config.topics.access,
    dlqTopic: config.topics.dlq,
    commitInterval: config.stream.commitInterval,
  });

  const retention = logsRetention(config, es, ch, log);
  const schedule = { cron: config.retention.cron, timezone: "Etc/UTC", logger: log };
  const indexRetention = new IndexRetentionScheduler([retention.indices], schedule);
  const partitionRetention = new RetentionScheduler([retention.partitions], schedule);
  let statsTimer: NodeJS.Timeout | null = null;
  return {
    app,
    start() {
      indexRetention.start();
      partitionRetention.start();
      statsTimer = setInterval(() => logCounters(log, esSink, chSink, masker), STATS_EVERY_MS);
      statsTimer.unref();
    },
    async stop() {
      if (statsTimer) clearInterval(statsTimer);
      logCounters(log, esSink, chSink, masker);
      await indexRetention.stop();
      await partitionRetention.stop();
      await es.close();
      await ch.close();
    },
  };
}

/**
 * What retention deletes: the daily indices `<indexPrefix>-*` a day after their day plus
 * `elasticsearch.retention`, and the logs table's day partitions likewise after `clickhouse.retention`.
 */
export function logsRetention(
  config: LogsConfig,
  es: Client,
  ch: ClickHouseClient,
  logger: Logger,
): { indices: IndexRetention; partitions: PartitionRetention } {
  const dryRun = config.retention.dryRun;
  return {
    indices: new IndexRetention({
      client: es,
      rules: [{ pattern: `${config.elasticsearch.indexPrefix}-*`, keep: config.elasticsearch.retention }],
      logger,
      dryRun,
    }),
    partitions: new PartitionRetention({
      client: ch,
      database: config.clickhouse.database,
      table: config.clickhouse.table,
      isExpired: dailyExpiry(config.clickhouse.retention),
      logger,
      dryRun,
    }),
  };
}

function logCounters(
  log: Logger,
  esSink: ElasticsearchSink<LogLine>,
  chSink: ClickHouseSink<LogLine>,
  masker: PiiMasker,
): void {
  const e = esSink.stats;
  const c = chSink.stats;
  log.info(
    {
      elasticsearch: {
        indexed: e.docsIndexed,
        duplicates: e.duplicates,
        rejected: e.rejectedByType,
        retries: e.retries,
      },
      clickhouse: { rows: c.rowsWritten, inserts: c.inserts, rejected: c.rejected, retries: c.retries },
      piiMasked: masker.takeCounts(),
    },
    "logs pipeline counters (since start; PII values masked since the last line)",
  );
}

/**
 * Before the first record: the index template (a daily index created without it would be mapped by
 * guesswork for the whole day) and the ClickHouse table. Both stores get STARTUP_WAIT_MS to answer,
 * so a worker started with the stack does not die of a server still booting.
 */
async function prepareStores(config: LogsConfig, es: Client, ch: ClickHouseClient, ctx: PipelineContext) {
  const prefix = config.elasticsearch.indexPrefix;
  const templates = logsTemplates({
    prefix,
    name: templateNameOf(prefix),
    shards: config.elasticsearch.shards,
    replicas: config.elasticsearch.replicas,
  });
  await untilAnswered(
    "Elasticsearch",
    ctx.endpoints.elasticsearchUrl,
    () => installTemplates(es, templates, { logger: ctx.logger }),
    ctx.logger,
  );
  const { database, table } = config.clickhouse;
  const exists = await untilAnswered(
    "ClickHouse",
    ctx.endpoints.clickhouseUrl,
    async () => {
      const rs = await ch.query({ query: sql`EXISTS TABLE ${ident(database, table)}`, format: "TabSeparated" });
      return (await rs.text()).trim() === "1";
    },
    ctx.logger,
  );
  if (!exists) {
    throw new ActionableError(
      `the ClickHouse table ${database}.${table} does not exist`,
      database === "weir" && table === "logs"
        ? "create it with `weir migrate` (infra/clickhouse/002_logs.sql)"
        : `create it with infra/clickhouse/002_logs.sql's statement, naming ${database}.${table}`,
    );
  }
}

async function untilAnswered<T>(what: string, url: string, call: () => Promise<T>, log: Logger): Promise<T> {
  const deadline = Date.now() + STARTUP_WAIT_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (e) {
      if (!isUnreachable(e) || Date.now() >= deadline) {
        if (!isUnreachable(e)) throw e;
        throw new ActionableError(
          `${what} at ${url} did not answer within ${STARTUP_WAIT_MS / 1000} s: ${(e as Error).message}`,
          "start it (`weir stack up` for the local stack) or point WEIR_ES_URL / WEIR_CLICKHOUSE_URL at it",
        );
      }
      log.warn({ store: what, url, attempt, err: (e as Error).message }, `waiting for ${what}`);
      await new Promise((r) => setTimeout(r, Math.min(5000, 500 * attempt)));
    }
  }
}

/** Connection failures and servers still starting; anything else is a real answer. */
function isUnreachable(e: unknown): boolean {
  const name = (e as { name?: string })?.name ?? "";
  const code =
    (e as { code?: string; cause?: { code?: string } })?.code ?? (e as { cause?: { code?: string } })?.cause?.code;
  const status = (e as { meta?: { statusCode?: number } })?.meta?.statusCode;
  return (
    name === "ConnectionError" ||
    name === "NoLivingConnectionsError" ||
    name === "TimeoutError" ||
    status === 503 ||
    code === "ECONNREFUSED" ||
    code === "ECONNRESET" ||
    code === "ETIMEDOUT" ||
    /ECONNREFUSED|ECONNRESET|socket hang up/.test(String((e as Error)?.message))
  );
}
