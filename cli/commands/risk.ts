// weir risk signals: the fraud pipeline's signals from ClickHouse (weir.risk_signals) by event time,
// newest last, as a table or one JSON object per line (the RiskSignal fields plus category).
import { createClient } from "@clickhouse/client";
import { Command } from "commander";
import { clientEndpoints } from "../../infra/stack/config.ts";
import { StackError } from "../../infra/stack/prerequisites.ts";
import { FRAUD_DATABASE } from "../../pipelines/fraud/pipeline.ts";
import { RISK_SIGNALS_TABLE } from "../../pipelines/fraud/rows.ts";
import { readSignals } from "../../pipelines/fraud/signals-reader.ts";
import { SearchError } from "../../pipelines/logs/search/errors.ts";
import { resolveWindow } from "../../pipelines/logs/search/time.ts";
import { clickhouseCredentials } from "../../sinks/credentials.ts";
import { UsageError } from "../errors.ts";
import { printTable } from "../table.ts";

interface SignalsOptions {
  since?: string;
  from?: string;
  to?: string;
  rule?: string;
  category?: string;
  limit: string;
  json?: boolean;
  url?: string;
}

export function riskCommand(): Command {
  const risk = new Command("risk").description("the fraud pipeline's results");
  risk
    .command("signals")
    .description("signals from ClickHouse by event time: --since 1h, or --from/--to (ISO, epoch ms, now-2h)")
    .option("--since <period>", "the last period: 90s, 15m, 2h, 7d (default 1h)")
    .option("--from <time>", "from this time (ISO-8601, epoch ms, now-2h)")
    .option("--to <time>", "up to this time (default now)")
    .option("--rule <id>", "only this rule")
    .option("--category <c>", "only this category")
    .option("-n, --limit <n>", "at most this many signals (at most 100000)", "1000")
    .option("--json", "one JSON object per line: the RiskSignal fields plus category")
    .option("--url <url>", "ClickHouse HTTP URL (default: WEIR_CLICKHOUSE_URL, else the local stack)")
    .action(async (opts: SignalsOptions) => {
      let window: { from: number; to: number };
      try {
        window = resolveWindow(opts, 3600_000, Date.now());
      } catch (e) {
        if (e instanceof SearchError) throw new UsageError(e.message, e.hint);
        throw e;
      }
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) throw new UsageError("--limit takes 1 to 100000");
      // A --url of its own gets the environment's credentials only, never the local stack's.
      const endpoints = clientEndpoints(opts.url ? { ...process.env, WEIR_CLICKHOUSE_URL: opts.url } : process.env);
      const url = endpoints.clickhouseUrl;
      const database = process.env.WEIR_FRAUD_DATABASE ?? FRAUD_DATABASE;
      const client = createClient({ url, ...clickhouseCredentials(endpoints.clickhouseAuth) });
      let signals: Awaited<ReturnType<typeof readSignals>>;
      try {
        signals = await readSignals(client, database, {
          ...window,
          limit,
          ...(opts.rule ? { rule: opts.rule } : {}),
          ...(opts.category ? { category: opts.category } : {}),
        });
      } catch (e) {
        const message = (e as Error).message ?? String(e);
        if (/UNKNOWN_TABLE|doesn't exist|Table .* not exist/i.test(message))
          throw new StackError(
            `ClickHouse has no ${database}.${RISK_SIGNALS_TABLE}`,
            "apply the migrations: weir migrate",
          );
        throw new StackError(
          `ClickHouse at ${url} did not answer: ${message.split("\n")[0]}`,
          "start the local stack (weir stack up) or pass --url",
        );
      } finally {
        await client.close();
      }
      if (opts.json) {
        for (const s of signals) console.log(JSON.stringify(s));
        return;
      }
      printTable(
        ["TIME", "RULE", "CATEGORY", "SEVERITY", "ACTION", "ENTITY", "SHADOW", "EXPLANATION"],
        signals.map((s) => [
          new Date(s.ts).toISOString(),
          `${s.ruleId} v${s.ruleVersion}`,
          s.category,
          s.severity,
          s.action,
          `${s.entity.type} ${s.entity.id}`,
          s.shadow ? "shadow" : "",
          s.evidence.explanation,
        ]),
      );
      if (signals.length === limit)
        console.error(`weir: the first ${limit} signals; narrow the window or raise --limit`);
    });
  return risk;
}
