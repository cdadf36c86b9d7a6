// weir logs search | trace | context | tail | histogram: on-call search over the logs in Elasticsearch,
// for people (aligned, coloured, one line per log line) and scripts (--json). `serve` runs the same
// searches as an HTTP API with bearer tokens; `token` makes a token; `openapi` prints the API's document.

import { Client } from "@elastic/elasticsearch";
import { Command, Option } from "commander";
import pino from "pino";
import { clientEndpoints } from "../../infra/stack/config.ts";
import { StackError } from "../../infra/stack/prerequisites.ts";
import { OPENAPI } from "../../pipelines/logs/api/openapi.ts";
import { serveLogsApi } from "../../pipelines/logs/api/server.ts";
import { hashToken, newToken, TokenStore, TokensError } from "../../pipelines/logs/api/tokens.ts";
import { DEFAULT_LOGS_CONFIG_FILE, type LogsConfig, loadLogsConfig } from "../../pipelines/logs/config.ts";
import { loadPiiKey, PiiKeyError } from "../../pipelines/logs/pii/key.ts";
import { PiiMasker } from "../../pipelines/logs/pii/masker.ts";
import { QueryError } from "../../pipelines/logs/query/query.ts";
import {
  ClickHouseLogHistogram,
  chooseHistogramStore,
  type HistogramStore,
} from "../../pipelines/logs/search/clickhouse-histogram.ts";
import { searchUserXml } from "../../pipelines/logs/search/clickhouse-search-user.ts";
import { SearchError } from "../../pipelines/logs/search/errors.ts";
import {
  colours,
  formatContext,
  formatHistogram,
  formatHits,
  formatTime,
  formatTrace,
  type LineFormat,
} from "../../pipelines/logs/search/format.ts";
import type { LogHit } from "../../pipelines/logs/search/hit.ts";
import { INDEX_PREFIX_ENV } from "../../pipelines/logs/search/indices.ts";
import { parseInterval } from "../../pipelines/logs/search/interval.ts";
import { type SearchLimits, searchLimits } from "../../pipelines/logs/search/limits.ts";
import {
  DEFAULT_CONTEXT_LINES,
  DEFAULT_SEARCH_LIMIT,
  type HistogramResult,
  LogSearch,
} from "../../pipelines/logs/search/search.ts";
import { DEFAULT_TAIL_BACKLOG, LogTail, TAIL_POLL_MS } from "../../pipelines/logs/search/tail.ts";
import { formatPeriod, resolveWindow } from "../../pipelines/logs/search/time.ts";
import { elasticsearchClientOptions } from "../../sinks/credentials.ts";
import { UsageError } from "../errors.ts";

interface CommonOptions {
  url?: string;
  prefix?: string;
  config?: string;
  json?: boolean;
  utc?: boolean;
}

interface FilterOptions extends CommonOptions {
  since?: string;
  from?: string;
  to?: string;
  service: string[];
  level: string[];
}

const MINUTE = 60_000;
/** The search user's password, for a ClickHouse whose search user has one (the local stack's has none). */

export function logsCommand(): Command {
  const logs = new Command("logs").description(
    "search the logs in Elasticsearch: search, trace, context, tail, histogram; serve them as an HTTP API",
  );

  withFilters(
    withCommon(
      logs
        .command("search")
        .description("lines matching a query, newest first (query language: docs/logs-query.md)")
        .argument("[query...]", "e.g. 'level:error \"upstream did not answer\"' (empty: every line)")
        .option("--since <period>", "the last period: 90s, 15m, 2h, 7d (default 15m)")
        .option("-n, --limit <n>", `lines to show (at most 10000)`, String(DEFAULT_SEARCH_LIMIT)),
    ),
  ).action(async (words: string[], opts: FilterOptions & { limit: string }) => {
    const now = Date.now();
    await withSearch(opts, async (search) => {
      const window = resolveWindow(opts, 15 * MINUTE, now);
      const result = await search.search({
        ...filterOf(words, opts),
        ...window,
        limit: integerOption(opts.limit, "--limit"),
      });
      if (opts.json) return printJsonLines(result.hits);
      const f = lineFormat(opts);
      for (const line of formatHits(result.hits, f)) console.log(line);
      const total = `${result.total.relation === "gte" ? "more than " : ""}${result.total.value.toLocaleString("en-US")}`;
      console.error(
        f.colours.dim(
          result.hits.length === 0
            ? `no lines between ${span(window.from, window.to, opts)}`
            : `${result.hits.length} of ${total} lines between ${span(window.from, window.to, opts)}, newest first; the lines around one: weir logs context <id>`,
        ),
      );
    });
  });

  withCommon(
    logs
      .command("trace")
      .description("every line of one trace across services, oldest first, indented by call depth")
      .argument("<trace-id>", "the trace id")
      .option("--since <period>", "how far back to look (default 24h)")
      .option("--from <time>", "start of the window (ISO time, epoch ms, now-2d)")
      .option("--to <time>", "end of the window (default now)")
      .option("--limit <n>", "at most this many lines", "10000"),
  ).action(
    async (traceId: string, opts: CommonOptions & { since?: string; from?: string; to?: string; limit: string }) => {
      const now = Date.now();
      await withSearch(opts, async (search) => {
        const window = resolveWindow(opts, 24 * 60 * MINUTE, now);
        const result = await search.trace({ traceId, ...window, limit: integerOption(opts.limit, "--limit") });
        if (opts.json) return printJsonLines(result.lines);
        const f = lineFormat(opts);
        if (result.lines.length === 0) {
          console.error(
            `no lines of trace ${traceId} between ${span(window.from, window.to, opts)} (look further back with --since 7d)`,
          );
          return;
        }
        for (const line of formatTrace(result, f)) console.log(line);
      });
    },
  );

  withCommon(
    logs
      .command("context")
      .description("the lines before and after one line in the same file, in file order")
      .argument("<hit-id>", "a line's id: the last column of `weir logs search`")
      .option("-n, --lines <n>", "lines before and lines after", String(DEFAULT_CONTEXT_LINES))
      .option("-B, --before <n>", "lines before (instead of -n)")
      .option("-A, --after <n>", "lines after (instead of -n)"),
  ).action(async (hitId: string, opts: CommonOptions & { lines: string; before?: string; after?: string }) => {
    await withSearch(opts, async (search) => {
      const n = integerOption(opts.lines, "--lines", 0);
      const result = await search.context({
        hitId,
        before: opts.before !== undefined ? integerOption(opts.before, "--before", 0) : n,
        after: opts.after !== undefined ? integerOption(opts.after, "--after", 0) : n,
      });
      if (opts.json) return printJsonLines(result.lines);
      for (const line of formatContext(result, lineFormat(opts))) console.log(line);
    });
  });

  withCommon(
    logs
      .command("tail")
      .description("new lines as they become searchable (Ctrl-C stops)")
      .argument("[query...]", "only lines matching this query")
      .option("-q, --query <query>", "only lines matching this query (instead of the argument)")
      .option("--service <name>", "only this service (repeatable)", collect, [])
      .option("--level <level>", "only these levels: error, warn,error, warn+ (repeatable)", collect, [])
      .option("-n, --lines <n>", "lines already there to show first", String(DEFAULT_TAIL_BACKLOG)),
  ).action(
    async (
      words: string[],
      opts: CommonOptions & { query?: string; service: string[]; level: string[]; lines: string },
    ) => {
      if (opts.query !== undefined && words.length > 0) {
        throw new UsageError("the query is given twice", "give it as the argument or with --query, not both");
      }
      await withSearch(opts, async (search) => {
        const tail = new LogTail(search, {
          query: opts.query ?? words.join(" "),
          services: opts.service,
          levels: opts.level,
          backlog: integerOption(opts.lines, "--lines", 0),
        });
        const f = lineFormat(opts);
        const print = (lines: readonly LogHit[]) => {
          if (opts.json) printJsonLines(lines);
          else for (const line of formatHits(lines, f)) console.log(line);
        };
        print(await tail.start());
        console.error(f.colours.dim(`-- following new lines (every ${TAIL_POLL_MS} ms); Ctrl-C stops`));
        const ac = new AbortController();
        const stop = () => ac.abort();
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
        try {
          while (!ac.signal.aborted) {
            try {
              await tail.follow(print, ac.signal);
            } catch (e) {
              if (!(e instanceof SearchError) || e.kind !== "unavailable") throw e;
              console.error(f.colours.yellow(`weir: ${e.message}; trying again in 2 s`));
              await new Promise((r) => setTimeout(r, 2000));
            }
          }
        } finally {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
        }
      });
    },
  );

  withFilters(
    withCommon(
      logs
        .command("histogram")
        .description("matching lines per interval, as bars")
        .argument("[query...]", "only lines matching this query")
        .option("--since <period>", "the last period (default 1h)")
        .option("--interval <period>", "bucket width, e.g. 1m (default: a round one giving about 60 bars)")
        .addOption(
          new Option(
            "--store <store>",
            "where to count: auto is Elasticsearch, or ClickHouse for windows older than Elasticsearch keeps",
          )
            .choices(["auto", "elasticsearch", "clickhouse"])
            .default("auto"),
        )
        .option("--clickhouse-url <url>", "ClickHouse HTTP URL (default: WEIR_CLICKHOUSE_URL, else the local stack)"),
    ),
  ).action(
    async (
      words: string[],
      opts: FilterOptions & { interval?: string; store: HistogramStore | "auto"; clickhouseUrl?: string },
    ) => {
      const now = Date.now();
      await withSearch(opts, async (search, setup) => {
        const window = resolveWindow(opts, 60 * MINUTE, now);
        const request = {
          ...filterOf(words, opts),
          ...window,
          intervalMs:
            opts.interval !== undefined
              ? parseInterval(opts.interval, window.from, window.to, setup.limits.maxBuckets)
              : undefined,
        };
        const store = chooseHistogramStore(opts.store, window.from, now, setup.config.elasticsearch.retention, true);
        let result: HistogramResult;
        if (store === "clickhouse") {
          const ch = openClickHouse(opts, setup);
          try {
            result = await ch.histogram(request);
          } finally {
            await ch.close();
          }
        } else result = await search.histogram(request);
        if (opts.json) {
          console.log(JSON.stringify(result));
          return;
        }
        const f = lineFormat(opts);
        console.log(
          f.colours.dim(
            `${result.total.toLocaleString("en-US")} lines between ${span(window.from, window.to, opts)}, per ${formatPeriod(result.intervalMs)}${store === "clickhouse" ? " (ClickHouse)" : ""}`,
          ),
        );
        for (const line of formatHistogram(result, f)) console.log(line);
      });
    },
  );

  logs
    .command("serve")
    .description(
      "serve search, trace, context, histogram and tail as an HTTP API with bearer tokens (docs/logs-search.md)",
    )
    .option("--port <port>", "port (0: any free one)", "8470")
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--tokens <file>", "YAML file of token hashes and their services (default: WEIR_LOGS_TOKENS_FILE)")
    .option("--url <url>", "Elasticsearch URL (default: WEIR_ES_URL, else the local stack)")
    .option(
      "--clickhouse-url <url>",
      "ClickHouse HTTP URL, for long histograms (default: WEIR_CLICKHOUSE_URL, else the local stack)",
    )
    .option("--prefix <prefix>", `index prefix (default: the logs config's, ${INDEX_PREFIX_ENV})`)
    .option("--config <logs.yaml>", "the logs pipeline's configuration: index prefix, PII, ClickHouse table, retention")
    .action(
      async (opts: {
        port: string;
        host: string;
        tokens?: string;
        url?: string;
        clickhouseUrl?: string;
        prefix?: string;
        config?: string;
      }) => {
        const logger = pino({ name: "weir-logs-api" });
        const tokens = cli(() => TokenStore.fromEnv(process.env, opts.tokens));
        const setup = openSearch(opts);
        if (setup.developmentKey)
          logger.warn("PII tokens use the public development key (WEIR_ENV=development): not for real data");
        const clickhouse = openClickHouse(opts, setup);
        const api = await serveLogsApi({
          search: setup.search,
          clickhouse,
          elasticsearchRetentionMs: setup.config.elasticsearch.retention,
          tokens,
          port: integerOption(opts.port, "--port", 0),
          host: opts.host,
          logger,
          apiLimits: setup.config.search.api,
          masker: setup.masker,
        });
        logger.info(
          { url: api.url, tokens: tokens.size, prefix: setup.search.indices.prefix },
          `logs API listening on ${api.url}`,
        );
        await new Promise<void>((resolve) => {
          process.once("SIGINT", resolve);
          process.once("SIGTERM", resolve);
        });
        await api.close();
        await Promise.all([setup.client.close(), clickhouse.close()]);
      },
    );

  logs
    .command("token")
    .description("make a new API token; prints it once, and the entry (its hash) for the tokens file")
    .requiredOption("--name <name>", "who or what holds it (shown in the API's logs)")
    .option("--service <name>", "a service it may read (repeatable; default: all)", collect, [])
    .option("--json", "print JSON")
    .action((opts: { name: string; service: string[]; json?: boolean }) => {
      const token = newToken();
      const entry = {
        name: opts.name,
        sha256: hashToken(token),
        services: opts.service.length > 0 ? opts.service : "*",
      };
      // Checked the way the server will read it (JSON is YAML).
      TokenStore.parse(JSON.stringify({ tokens: [entry] }), "the new token's entry");
      if (opts.json) {
        console.log(JSON.stringify({ token, entry }));
        return;
      }
      console.log(`token (give it to ${opts.name}; only its hash is kept):\n  ${token}\n`);
      console.log("entry for the tokens file (WEIR_LOGS_TOKENS_FILE), under `tokens:`:");
      console.log(
        `  - name: ${opts.name}\n    sha256: ${entry.sha256}\n    services: ${JSON.stringify(entry.services)}`,
      );
    });

  logs
    .command("clickhouse-user")
    .description(
      "print the users.d file of the read-only ClickHouse user searches run as, its profile and quota (weir stack up installs it locally)",
    )
    .action(() => {
      process.stdout.write(searchUserXml());
    });

  logs
    .command("openapi")
    .description("print the API's OpenAPI 3.1 document (what docs/logs-api.openapi.json holds)")
    .action(() => {
      console.log(JSON.stringify(OPENAPI, null, 2));
    });

  return logs;
}

function withCommon(c: Command): Command {
  return c
    .option("--json", "print JSON: one line per log line (histogram: one document)")
    .option("--utc", "times in UTC (default: local time)")
    .option("--url <url>", "Elasticsearch URL (default: WEIR_ES_URL, else the local stack)")
    .option("--prefix <prefix>", `index prefix (default: the logs config's, ${INDEX_PREFIX_ENV})`)
    .option(
      "--config <logs.yaml>",
      "the logs pipeline's configuration: index prefix, PII settings (default: pipelines/logs/logs.yaml)",
    );
}

function withFilters(c: Command): Command {
  return c
    .option("--from <time>", "start of the window instead of --since (ISO time, epoch ms, now-2h)")
    .option("--to <time>", "end of the window (default now)")
    .option("--service <name>", "only this service (repeatable)", collect, [])
    .option("--level <level>", "only these levels: error, warn,error, warn+ (repeatable)", collect, []);
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function filterOf(words: string[], opts: FilterOptions) {
  return { query: words.join(" "), services: opts.service, levels: opts.level };
}

function integerOption(text: string, name: string, min = 1): number {
  if (!/^\d+$/.test(text) || Number(text) < min) {
    throw new UsageError(`${name} ${text} is not a whole number${min > 0 ? ` of at least ${min}` : ""}`);
  }
  return Number(text);
}

function lineFormat(opts: CommonOptions): LineFormat {
  const tty = !!process.stdout.isTTY;
  return {
    utc: !!opts.utc,
    width: tty ? process.stdout.columns : undefined,
    colours: colours(tty && !process.env.NO_COLOR),
  };
}

function span(from: number, to: number, opts: CommonOptions): string {
  return `${formatTime(from, !!opts.utc).slice(0, 19)} and ${formatTime(to, !!opts.utc).slice(0, 19)}${opts.utc ? " UTC" : ""}`;
}

function printJsonLines(lines: readonly LogHit[]): void {
  if (lines.length === 0) return;
  process.stdout.write(`${lines.map((l) => JSON.stringify(l)).join("\n")}\n`);
}

interface SearchSetup {
  search: LogSearch;
  client: Client;
  config: LogsConfig;
  limits: SearchLimits;
  masker: PiiMasker | undefined;
  developmentKey: boolean;
}

/**
 * The search as the logs pipeline stores: its configuration (WEIR_LOGS_* applied) gives the index
 * prefix and the PII settings, and its key (WEIR_PII_KEY_FILE, WEIR_PII_KEY) turns a phone number typed
 * in a query into the token stored. Without a key, a query holding PII is refused by the query
 * compiler, which says which variable to set; every other query works.
 */
function openSearch(opts: CommonOptions): SearchSetup {
  const config = loadLogsConfig(opts.config ?? DEFAULT_LOGS_CONFIG_FILE, process.env);
  let masker: PiiMasker | undefined;
  let developmentKey = false;
  try {
    const key = loadPiiKey();
    masker = new PiiMasker(config.pii, key);
    developmentKey = key.isDevelopment;
  } catch (e) {
    if (!(e instanceof PiiKeyError)) throw e;
  }
  // A --url of its own gets the environment's credentials only, never the local stack's.
  const endpoints = clientEndpoints(opts.url ? { ...process.env, WEIR_ES_URL: opts.url } : process.env);
  const url = endpoints.elasticsearchUrl;
  const limits = searchLimits(config.search.limits);
  // The client waits longer than Elasticsearch's own `timeout`, so the search's timeout is what answers.
  const client = new Client({
    ...elasticsearchClientOptions(endpoints, "search"),
    requestTimeout: limits.timeoutMs + 20_000,
    maxRetries: 1,
  });
  const search = cli(
    () => new LogSearch({ client, prefix: opts.prefix ?? config.elasticsearch.indexPrefix, pii: masker, url, limits }),
  );
  return { search, client, config, limits, masker, developmentKey };
}

function openClickHouse(opts: { clickhouseUrl?: string }, setup: SearchSetup): ClickHouseLogHistogram {
  const endpoints = clientEndpoints(
    opts.clickhouseUrl ? { ...process.env, WEIR_CLICKHOUSE_URL: opts.clickhouseUrl } : process.env,
  );
  const password = endpoints.clickhouseSearchPassword;
  return new ClickHouseLogHistogram({
    url: endpoints.clickhouseUrl,
    database: setup.config.clickhouse.database,
    table: setup.config.clickhouse.table,
    pii: setup.masker,
    user: setup.config.search.clickhouse.user,
    ...(password !== undefined ? { password } : {}),
    limits: setup.limits,
  });
}

async function withSearch(
  opts: CommonOptions,
  run: (search: LogSearch, setup: SearchSetup) => Promise<void>,
): Promise<void> {
  const setup = openSearch(opts);
  try {
    await run(setup.search, setup);
  } catch (e) {
    throw cliError(e);
  } finally {
    await setup.client.close();
  }
}

function cli<T>(run: () => T): T {
  try {
    return run();
  } catch (e) {
    throw cliError(e);
  }
}

/** What a user can act on, as the CLI's one-line errors (main.ts prints them without a stack trace). */
function cliError(e: unknown): unknown {
  if (e instanceof QueryError) return new UsageError(e.message, e.hint);
  if (e instanceof SearchError)
    return e.kind === "unavailable" ? new StackError(e.message, e.hint) : new UsageError(e.message, e.hint);
  if (e instanceof TokensError || e instanceof PiiKeyError) return new UsageError(e.message, e.hint);
  return e;
}
