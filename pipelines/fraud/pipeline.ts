// `weir run fraud`: the risk team's rules run on the stream runtime; signals to signals.risk and
// weir.risk_signals in ClickHouse.
//
// Which rules: the snapshot deployed for this app (rules.snapshots, written by `weir rules deploy`),
// else the rules folder (`--config <dir>`, default this checkout's rules/: a fresh clone runs with no
// step of its own). The worker then follows rules.snapshots: a new snapshot is compiled here too (a
// snapshot this worker cannot compile is refused: the running set keeps running, the error is in the
// log, on /health, in weir_fraud_snapshot_refused_total and in rules.status), and every task switches
// to it at the next checkpoint boundary. What the worker runs is reported to rules.status.
import { hostname } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Counter, Gauge, type Registry } from "prom-client";
import { KafkaClient } from "../../kafka/client.ts";
import { ActionableError } from "../../schemas/errors.ts";
import type { RiskSignal, RuleSnapshot, RuleWorkerStatus } from "../../schemas/types.generated.ts";
import { ClickHouseSink } from "../../sinks/clickhouse/sink.ts";
import { clickhouseCredentials } from "../../sinks/credentials.ts";
import { ms } from "../../stream/types.ts";
import { loadPiiKey } from "../logs/pii/key.ts";
import type { Pipeline, PipelineContext } from "../types.ts";
import { BundleError, materialize, unpackBundle } from "./deploy/bundle.ts";
import { followSnapshots, RecordWriter, SNAPSHOTS_TOPIC, STATUS_TOPIC, topicExists } from "./deploy/topics.ts";
import { RuleEngine } from "./engine/rule-engine.ts";
import { registerRuleMetrics } from "./metrics.ts";
import { RISK_SIGNALS_TABLE, signalRow } from "./rows.ts";
import { compileRuleSet, formatRuleProblem } from "./rules/compile.ts";
import type { RuleSetPlan } from "./rules/plan.ts";
import { fraudTopology } from "./topology.ts";

/** The ClickHouse database of weir.risk_signals (WEIR_FRAUD_DATABASE overrides, for tests). */
export const FRAUD_DATABASE = "weir";

/** This checkout's rules/. */
export const DEFAULT_RULES_DIR = fileURLToPath(new URL("../../rules", import.meta.url));

/** How often a worker says what it runs (rules.status) and logs the rules' counters. */
export const STATUS_EVERY_MS = 30_000;

/** A rules folder or snapshot the worker cannot run; the CLI prints its message and hint. */
export class RulesError extends ActionableError {
  constructor(message: string, hint: string) {
    super(message, hint);
    this.name = "RulesError";
  }
}

/** The fraud pipeline's topics and group, as the environment sets them (tests isolate themselves with these). */
export function fraudNames(env: NodeJS.ProcessEnv) {
  const prefix = env.WEIR_FRAUD_TOPIC_PREFIX ?? "";
  return {
    appId: env.WEIR_FRAUD_APP_ID ?? "fraud",
    prefix,
    snapshots: `${prefix}${SNAPSHOTS_TOPIC}`,
    status: `${prefix}${STATUS_TOPIC}`,
    database: env.WEIR_FRAUD_DATABASE ?? FRAUD_DATABASE,
  };
}

/** The longest WEIR_FRAUD_GRACE: a rule's state is kept this much longer than its window. */
const MAX_GRACE_MS = 86_400_000;

/**
 * How far behind the watermark (the newest event time read, less the sources' 5 s out-of-orderness) a
 * record may arrive and still count in the rules' windows and sequences (WEIR_FRAUD_GRACE, default 0).
 * Records later than that are counted per rule as late and count in no state: the live result then
 * depends on the order the records arrived in. An absence fires this much later than its deadline.
 */
export function fraudGrace(env: NodeJS.ProcessEnv): number {
  const text = env.WEIR_FRAUD_GRACE?.trim();
  if (!text || text === "0") return 0;
  let grace: number;
  try {
    grace = ms(text);
  } catch {
    grace = Number.NaN;
  }
  if (!(grace >= 0 && grace <= MAX_GRACE_MS))
    throw new RulesError(
      `WEIR_FRAUD_GRACE=${JSON.stringify(text.slice(0, 40))} is not a duration from 0 to 24h`,
      "set it as e.g. 30s, 5m or 1h, or unset it for no grace",
    );
  return grace;
}

/** A snapshot's rules compiled in `dir` (its files written there first); the problems otherwise. */
export function compileSnapshot(s: RuleSnapshot, dir: string): { plan?: RuleSetPlan; error?: string } {
  try {
    materialize(unpackBundle(s.bundle), dir);
  } catch (e) {
    if (e instanceof BundleError) return { error: e.message };
    throw e;
  }
  const r = compileRuleSet(dir);
  if (!r.plan) {
    const shown = r.problems.slice(0, 10).map(formatRuleProblem).join("; ");
    return { error: `${r.problems.length} problem(s): ${shown}` };
  }
  if (r.plan.version !== s.version)
    return { error: `its files compile to version ${r.plan.version}, not the ${s.version} it claims` };
  return { plan: r.plan };
}

interface Refusal {
  version: string;
  error: string;
  at: number;
}

export async function fraudPipeline(ctx: PipelineContext): Promise<Pipeline> {
  const names = fraudNames(ctx.env);
  const grace = fraudGrace(ctx.env);
  const log = ctx.logger;
  const instance = ctx.instance ?? String(process.pid);
  // A missing key throws a PiiKeyError with its hint, which the CLI prints.
  const key = loadPiiKey(ctx.env).bytes();
  const kafka = new KafkaClient({
    brokers: ctx.endpoints.kafkaBrokers,
    clientId: `${names.appId}-rules-${instance}`,
    logger: log,
  });
  const snapshotsDir = (version: string) => join(ctx.dataDir, "fraud-rules", names.appId, version);

  // The snapshot deployed for this app, if any; else the folder.
  let follower: ReturnType<typeof followSnapshots> | null = null;
  let source = "";
  let deployedPlan: RuleSetPlan | undefined;
  const offered: RuleSnapshot[] = [];
  let wake: (() => void) | null = null;
  if (await topicExists(kafka, names.snapshots)) {
    follower = followSnapshots(kafka, names.snapshots, names.appId, (s, initial) => {
      if (initial) return;
      offered.push(s);
      wake?.();
    });
    const deployed = await follower.caughtUp;
    if (deployed) {
      const r = compileSnapshot(deployed, snapshotsDir(deployed.version));
      if (!r.plan) {
        await follower.stop();
        throw new RulesError(
          `the rule snapshot ${deployed.version} deployed for ${names.appId} (by ${deployed.deployedBy}) does not compile here: ${r.error}`,
          "deploy a snapshot that does (weir rules deploy <dir> checks it first); the other workers keep running theirs",
        );
      }
      deployedPlan = r.plan;
      source = `deployed by ${deployed.deployedBy} from ${deployed.source}`;
    }
  } else {
    log.warn(
      { topic: names.snapshots },
      `${names.snapshots} does not exist: running the rules folder, and no deploy will reach this worker (weir topics apply creates it)`,
    );
  }
  let plan: RuleSetPlan;
  if (deployedPlan) plan = deployedPlan;
  else {
    const dir = ctx.config ?? DEFAULT_RULES_DIR;
    const result = compileRuleSet(dir);
    if (!result.plan) {
      await follower?.stop();
      throw new RulesError(
        `the rules in ${dir} have ${result.problems.length} problem(s):\n${result.problems.slice(0, 20).map(formatRuleProblem).join("\n")}`,
        "fix them (weir rules check shows them all), then start again",
      );
    }
    plan = result.plan;
    source = `folder ${dir}`;
  }

  const engine = new RuleEngine(plan, { hashKey: key, grace });
  const categories = new Map<string, string>();
  const remember = (p: RuleSetPlan) => {
    for (const r of p.rules) categories.set(r.id, r.category);
  };
  remember(plan);
  const clickhouse = new ClickHouseSink<RiskSignal>({
    url: ctx.endpoints.clickhouseUrl,
    ...clickhouseCredentials(ctx.endpoints.clickhouseAuth),
    database: names.database,
    name: "clickhouse-risk-signals",
    table: RISK_SIGNALS_TABLE,
    batchSize: 1000,
    toRow: (rec) => signalRow(rec.value, categories.get(rec.value.ruleId) ?? ""),
    logger: log,
  });
  const { app, streams } = fraudTopology(engine, {
    hashKey: key,
    signalSinks: [clickhouse],
    appId: names.appId,
    topicPrefix: names.prefix,
  });

  let runningSource = source;
  let pendingSource: string | null = null;
  let refused: Refusal | null = null;
  let switches = 0;
  let refusals = 0;
  const writer = new RecordWriter(kafka);
  const status = (state: "running" | "stopped"): RuleWorkerStatus => ({
    worker: `${names.appId}/${instance}`,
    app: names.appId,
    instance,
    host: hostname(),
    pid: process.pid,
    state,
    version: engine.current.version,
    source: runningSource,
    since: engine.since,
    rules: engine.current.runs.length,
    refusedVersion: refused?.version ?? null,
    refusedError: refused?.error ?? null,
    refusedAt: refused?.at ?? null,
    ts: Date.now(),
  });
  const report = (state: "running" | "stopped" = "running") =>
    writer.status(names.status, status(state)).catch((e) => {
      log.warn({ err: (e as Error).message, topic: names.status }, "could not report this worker's rules");
    });

  /** A snapshot that arrived: compiled here, offered for the next checkpoint, or refused. */
  const consider = (s: RuleSnapshot) => {
    if (s.version === engine.current.version && !engine.pending) return;
    if (s.version === engine.pending?.version) return;
    const started = Date.now();
    const r = compileSnapshot(s, snapshotsDir(s.version));
    let error = r.error;
    const missing = r.plan ? [...new Set(r.plan.rules.flatMap((x) => x.streams))].filter((x) => !streams.has(x)) : [];
    if (r.plan && missing.length > 0)
      error = `its rules read ${missing.join(", ")}, which this worker's topology does not read: restart the workers to run it`;
    if (!r.plan || error) {
      refused = { version: s.version, error: error ?? "it does not compile", at: Date.now() };
      refusals++;
      log.error(
        { version: s.version, deployedBy: s.deployedBy, error: refused.error, running: engine.current.version },
        `refused rule snapshot ${s.version}: ${refused.error}; still running ${engine.current.version}`,
      );
      void report();
      return;
    }
    engine.offer(r.plan);
    remember(r.plan);
    pendingSource = `deployed by ${s.deployedBy} from ${s.source}`;
    log.info(
      { version: s.version, compileMs: Date.now() - started, rules: r.plan.rules.length },
      `rule snapshot ${s.version} compiled; every task switches to it at the next checkpoint`,
    );
  };

  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  return {
    app,
    registerMetrics(registry: Registry) {
      registerRuleMetrics(registry, engine);
      new Gauge({
        name: "weir_fraud_snapshot_info",
        help: "The rule snapshot this worker runs (value 1), by version",
        labelNames: ["version"],
        registers: [registry],
        collect() {
          this.reset();
          this.set({ version: engine.current.version }, 1);
        },
      });
      new Counter({
        name: "weir_fraud_snapshot_switches_total",
        help: "Rule snapshots this worker switched to since it started",
        registers: [registry],
        collect() {
          this.reset();
          this.inc(switches);
        },
      });
      new Counter({
        name: "weir_fraud_snapshot_refused_total",
        help: "Deployed rule snapshots this worker refused (they did not compile here); it kept running its own",
        registers: [registry],
        collect() {
          this.reset();
          this.inc(refusals);
        },
      });
    },
    onCheckpoint() {
      const next = engine.switchPoint();
      if (!next) return;
      switches++;
      runningSource = pendingSource ?? runningSource;
      pendingSource = null;
      // A snapshot deployed after the refused one runs: the refusal is history (the log keeps it).
      refused = null;
      log.info(
        { version: next.version, rules: next.runs.length },
        `switched every task to rule snapshot ${next.version}`,
      );
      void report();
    },
    health() {
      return {
        rules: {
          version: engine.current.version,
          source: runningSource,
          since: new Date(engine.since).toISOString(),
          ...(engine.pending ? { switching: engine.pending.version } : {}),
          ...(refused
            ? { refused: { version: refused.version, error: refused.error, at: new Date(refused.at).toISOString() } }
            : {}),
          followsDeploys: follower !== null,
        },
      };
    },
    async start() {
      log.info(
        { snapshot: plan.version, rules: plan.rules.length, streams: [...streams], source },
        `running rule snapshot ${plan.version} (${source})`,
      );
      // Snapshots that arrived meanwhile, then each new one, compiled off the hot path of a batch.
      const drain = () => {
        while (offered.length > 0 && !stopped) consider(offered.shift() as RuleSnapshot);
      };
      wake = () => setImmediate(drain);
      drain();
      await report();
      timer = setInterval(() => {
        void report();
        const rules = Object.fromEntries(
          [...engine.allCounters()].map(([id, c]) => [
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
        log.info({ snapshot: engine.current.version, rules }, "rule counters");
      }, STATUS_EVERY_MS);
      timer.unref();
    },
    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      await follower?.stop();
      await report("stopped");
      await writer.close();
    },
  };
}
