// `weir run fraud`: the rules of a rules folder (`--config <dir>`, default this checkout's rules/),
// compiled as one snapshot, run on the stream runtime; signals to signals.risk and weir.risk_signals
// in ClickHouse. A folder with any problem is refused at start with every problem (`weir rules check`
// shows the same).
import { fileURLToPath } from "node:url";
import type { RiskSignal } from "../../schemas/types.generated.ts";
import { ClickHouseSink } from "../../sinks/clickhouse/sink.ts";
import { loadPiiKey } from "../logs/pii/key.ts";
import type { Pipeline, PipelineContext } from "../types.ts";
import { registerRuleMetrics } from "./metrics.ts";
import { RISK_SIGNALS_TABLE, signalRow } from "./rows.ts";
import { compileRuleSet, formatRuleProblem } from "./rules/compile.ts";
import { fraudTopology } from "./topology.ts";

/** The ClickHouse database of weir.risk_signals (WEIR_FRAUD_DATABASE overrides, for tests). */
export const FRAUD_DATABASE = "weir";

/** This checkout's rules/. */
export const DEFAULT_RULES_DIR = fileURLToPath(new URL("../../rules", import.meta.url));

/** A rules folder the worker cannot run; the CLI prints its message and hint. */
export class RulesError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
    this.name = "RulesError";
  }
}
/** How often the per-rule counters are logged. */
const STATS_EVERY_MS = 60_000;

export function fraudPipeline(ctx: PipelineContext): Pipeline {
  const dir = ctx.config ?? DEFAULT_RULES_DIR;
  const result = compileRuleSet(dir);
  if (!result.plan) {
    throw new RulesError(
      `the rules in ${dir} have ${result.problems.length} problem(s):\n${result.problems.slice(0, 20).map(formatRuleProblem).join("\n")}`,
      "fix them (weir rules check shows them all), then start again",
    );
  }
  // A missing key throws a PiiKeyError with its hint, which the CLI prints.
  const key = loadPiiKey(ctx.env).bytes();
  const plan = result.plan;
  const categoryOf = new Map(plan.rules.map((r) => [r.id, r.category]));
  const clickhouse = new ClickHouseSink<RiskSignal>({
    url: ctx.endpoints.clickhouseUrl,
    database: ctx.env.WEIR_FRAUD_DATABASE ?? FRAUD_DATABASE,
    name: "clickhouse-risk-signals",
    table: RISK_SIGNALS_TABLE,
    batchSize: 1000,
    toRow: (rec) => signalRow(rec.value, categoryOf.get(rec.value.ruleId) ?? ""),
    logger: ctx.logger,
  });
  const { app, counters } = fraudTopology(plan, {
    hashKey: key,
    signalSinks: [clickhouse],
    ...(ctx.env.WEIR_FRAUD_APP_ID ? { appId: ctx.env.WEIR_FRAUD_APP_ID } : {}),
    ...(ctx.env.WEIR_FRAUD_TOPIC_PREFIX ? { topicPrefix: ctx.env.WEIR_FRAUD_TOPIC_PREFIX } : {}),
  });
  const log = ctx.logger;
  let timer: NodeJS.Timeout | undefined;
  return {
    app,
    registerMetrics(registry) {
      registerRuleMetrics(registry, counters, plan.version);
    },
    start() {
      log.info(
        { snapshot: plan.version, rules: plan.rules.length, streams: plan.streams, enrich: plan.enrich },
        `running rule snapshot ${plan.version} from ${dir}`,
      );
      timer = setInterval(() => {
        const rules = Object.fromEntries(
          [...counters].map(([id, c]) => [
            id,
            {
              evaluations: c.evaluations,
              hits: c.hits,
              errors: c.errors,
              skipped: c.skipped,
              cooledDown: c.cooledDown,
            },
          ]),
        );
        log.info({ snapshot: plan.version, rules }, "rule counters");
      }, STATS_EVERY_MS);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
    },
  };
}
