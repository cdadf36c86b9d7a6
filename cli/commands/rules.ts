// weir rules check | list: the risk team's rules folder, compiled as one snapshot exactly as the
// fraud pipeline will compile it. `check` prints every problem as `file:line:col: field: what to do`
// and fails when there is one; `list` shows what the folder holds.
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { createClient } from "@clickhouse/client";
import { Command } from "commander";
import { clientEndpoints, PROJECT_ROOT } from "../../infra/stack/config.ts";
import { StackError } from "../../infra/stack/prerequisites.ts";
import { backtest } from "../../pipelines/fraud/backtest.ts";
import { explainSignal } from "../../pipelines/fraud/explain.ts";
import { FRAUD_DATABASE } from "../../pipelines/fraud/pipeline.ts";
import { compileRuleSet, formatRuleProblem } from "../../pipelines/fraud/rules/compile.ts";
import type { RulePlan } from "../../pipelines/fraud/rules/plan.ts";
import { FIXTURE_HASH_KEY, formatFailure, runFixtures } from "../../pipelines/fraud/rules/test-runner.ts";
import { readSignal } from "../../pipelines/fraud/signals-reader.ts";
import { SearchError } from "../../pipelines/logs/search/errors.ts";
import { resolveWindow } from "../../pipelines/logs/search/time.ts";
import { clickhouseCredentials } from "../../sinks/credentials.ts";
import { UsageError } from "../errors.ts";
import { printTable } from "../table.ts";
import { rulesScoreCommand } from "./rules-score.ts";

/** `rules/` of the working directory when there is one, else this checkout's. */
export function defaultRulesDir(): string {
  return existsSync("rules") ? resolve("rules") : join(PROJECT_ROOT, "rules");
}

export function rulesCommand(): Command {
  const rules = new Command("rules").description(
    "the risk team's rules: check a rules folder, test its fixtures, list its rules, backtest them, explain a signal (docs/rules.md)",
  );

  rules
    .command("check")
    .description("compile a rules folder as one snapshot; every problem as file:line:col: field: what to do")
    .argument("[dir]", "the rules folder (default: ./rules, else this checkout's rules/)")
    .action((dir: string | undefined) => {
      const root = dir ? resolve(dir) : defaultRulesDir();
      const result = compileRuleSet(root);
      if (!result.plan) {
        for (const p of result.problems) console.log(formatRuleProblem(p));
        console.error(
          `weir: ${result.problems.length} problem${result.problems.length === 1 ? "" : "s"} in ${dir ?? root}; nothing can be deployed until they are fixed`,
        );
        process.exitCode = 1;
        return;
      }
      const plan = result.plan;
      const by = (s: string) => plan.rules.filter((r) => r.status === s).length;
      const fixtures = plan.rules.reduce((n, r) => n + r.fixtures.length, 0);
      console.log(
        `${dir ?? root}: ${plan.rules.length} rules (${by("active")} active, ${by("shadow")} shadow, ${by("disabled")} disabled), ` +
          `${fixtures} fixtures, ${plan.lists.length} lists, ${plan.macros.length} macros, ${plan.patterns} regular expressions: ok (snapshot ${plan.version})`,
      );
    });

  rules
    .command("test")
    .description("run every rule's fixtures through the fraud pipeline on the stream runtime's test driver")
    .argument("[dir]", "the rules folder (default: ./rules, else this checkout's rules/)")
    .option("--rule <id>", "only the rules whose id starts with this")
    .action((dir: string | undefined, opts: { rule?: string }) => {
      const root = dir ? resolve(dir) : defaultRulesDir();
      const result = compileRuleSet(root);
      if (!result.plan) {
        for (const p of result.problems) console.log(formatRuleProblem(p));
        console.error(
          `weir: ${result.problems.length} problem(s) in ${dir ?? root}: weir rules check shows them; nothing was tested`,
        );
        process.exitCode = 1;
        return;
      }
      const results = runFixtures(result.plan, opts.rule ? (r) => r.id.startsWith(opts.rule as string) : undefined);
      const failed = results.filter((r) => !r.passed);
      for (const f of failed) console.log(formatFailure(f));
      const rules = new Set(results.map((r) => r.rule)).size;
      console.log(
        `${results.length - failed.length} passed, ${failed.length} failed (${results.length} fixtures of ${rules} rules)`,
      );
      if (failed.length > 0) process.exitCode = 1;
    });

  rules
    .command("backtest")
    .description(
      "replay a simulator run's events through a rule set: per-rule signals, and precision and recall per category",
    )
    .requiredOption("--sim <dir>", "the output folder of a weir simulate run (its manifest.json and logs)")
    .option("--rules <dir>", "the rules folder (default: ./rules, else this checkout's rules/)")
    .option("--truth <file>", "the run's ground truth (default: <sim>/ground-truth.jsonl when it exists)")
    .option("--no-truth", "no precision and recall")
    .option("--limit <n>", "only the first n events")
    .option("--json", "the report as one JSON object")
    .action((opts: { sim: string; rules?: string; truth?: string | boolean; limit?: string; json?: boolean }) => {
      const root = opts.rules ? resolve(opts.rules) : defaultRulesDir();
      const result = compileRuleSet(root);
      if (!result.plan) {
        for (const p of result.problems) console.log(formatRuleProblem(p));
        console.error(`weir: ${result.problems.length} problem(s) in ${root}: weir rules check shows them`);
        process.exitCode = 1;
        return;
      }
      const simDir = resolve(opts.sim);
      const truth =
        opts.truth === false
          ? undefined
          : typeof opts.truth === "string"
            ? resolve(opts.truth)
            : existsSync(join(simDir, "ground-truth.jsonl"))
              ? join(simDir, "ground-truth.jsonl")
              : undefined;
      const limit = opts.limit ? Number(opts.limit) : 0;
      if (!Number.isInteger(limit) || limit < 0) throw new UsageError("--limit takes a whole number of events");
      if (!existsSync(join(simDir, "manifest.json")))
        throw new UsageError(
          `${simDir} is not the output of weir simulate (no manifest.json)`,
          "weir simulate --out <dir> first",
        );
      const report = backtest(result.plan, simDir, truth, { hashKey: FIXTURE_HASH_KEY, limit });
      if (opts.json) {
        console.log(JSON.stringify({ ...report, signals: report.signals.length }));
        return;
      }
      console.log(
        `${report.events} events, ${Math.round(report.eventsPerSecond)} events/s (rules snapshot ${result.plan.version})\n`,
      );
      printTable(
        ["RULE", "CATEGORY", "STATUS", "SIGNALS", "ENTITIES", "EVALUATIONS", "ERRORS", "SKIPPED"],
        report.rules.map((r) => [
          r.rule,
          r.category,
          r.status,
          String(r.signals),
          String(r.entities),
          String(r.counters.evaluations),
          String(r.counters.errors),
          String(r.counters.skipped),
        ]),
      );
      if (report.shadows.length > 0) {
        console.log("");
        printTable(
          ["RULE", "REPLACES", "BOTH", "ONLY NEW", "ONLY OLD"],
          report.shadows.map((c) => [c.rule, c.replaces, String(c.both), String(c.onlyNew), String(c.onlyOld)]),
        );
      }
      if (report.scores) {
        console.log("");
        const pct = (x: number | null) => (x === null ? "-" : `${(100 * x).toFixed(1)}%`);
        printTable(
          ["CATEGORY", "ENTITY", "FLAGGED", "RIGHT", "PRECISION", "IN TRUTH", "FOUND", "RECALL"],
          report.scores.map((s) => [
            s.category,
            s.entity,
            String(s.flagged),
            String(s.truePositives),
            pct(s.precision),
            String(s.truth),
            String(s.found),
            pct(s.recall),
          ]),
        );
      }
    });

  rules.addCommand(rulesScoreCommand(defaultRulesDir));

  rules
    .command("explain")
    .description(
      "a signal from ClickHouse, read with its rule: each expression with the values it saw, the counts, the events",
    )
    .argument("<signal-id>", "the signal's id (weir risk signals shows them)")
    .option("--rules <dir>", "the rules folder (default: ./rules, else this checkout's rules/)")
    .option("--since <period>", "look for the signal in the last period of event time (default 30d)", "30d")
    .option("--url <url>", "ClickHouse HTTP URL (default: WEIR_CLICKHOUSE_URL, else the local stack)")
    .action(async (id: string, opts: { rules?: string; since: string; url?: string }) => {
      let from: number;
      try {
        from = resolveWindow({ since: opts.since }, 0, Date.now()).from;
      } catch (e) {
        if (e instanceof SearchError) throw new UsageError(e.message, e.hint);
        throw e;
      }
      // A --url of its own gets the environment's credentials only, never the local stack's.
      const endpoints = clientEndpoints(opts.url ? { ...process.env, WEIR_CLICKHOUSE_URL: opts.url } : process.env);
      const url = endpoints.clickhouseUrl;
      const client = createClient({ url, ...clickhouseCredentials(endpoints.clickhouseAuth) });
      let signal: Awaited<ReturnType<typeof readSignal>>;
      try {
        signal = await readSignal(client, process.env.WEIR_FRAUD_DATABASE ?? FRAUD_DATABASE, id, from);
      } catch (e) {
        throw new StackError(
          `ClickHouse at ${url} did not answer: ${String((e as Error).message).split("\n")[0]}`,
          "start the local stack (weir stack up), apply the migrations (weir migrate) or pass --url",
        );
      } finally {
        await client.close();
      }
      if (!signal)
        throw new UsageError(`no signal ${id} in the last ${opts.since}`, "check the id, or give a longer --since");
      const root = opts.rules ? resolve(opts.rules) : defaultRulesDir();
      const rule = compileRuleSet(root).rules.find((r) => r.id === signal.ruleId);
      for (const line of explainSignal(signal, rule)) console.log(line);
    });

  rules
    .command("list")
    .description("the rules of a folder: id, version, category, status, severity, action, owner")
    .argument("[dir]", "the rules folder (default: ./rules, else this checkout's rules/)")
    .option("--json", "one JSON object per rule and line")
    .action((dir: string | undefined, opts: { json?: boolean }) => {
      const root = dir ? resolve(dir) : defaultRulesDir();
      const result = compileRuleSet(root);
      const rows = [...result.rules].sort((a, b) => a.id.localeCompare(b.id));
      if (opts.json) for (const r of rows) console.log(JSON.stringify(ruleSummary(r)));
      else
        printTable(
          ["ID", "VERSION", "CATEGORY", "KIND", "STATUS", "SEVERITY", "SCORE", "ACTION", "ENTITY", "OWNER"],
          rows.map((r) => [
            r.id,
            String(r.version),
            r.category,
            r.shape.kind,
            r.status,
            r.severity,
            String(r.score),
            r.action,
            r.entity.type,
            r.owner,
          ]),
        );
      if (result.problems.length > 0) {
        console.error(
          `weir: ${result.problems.length} problem${result.problems.length === 1 ? "" : "s"} in ${dir ?? root} (weir rules check shows them); rules with problems are not listed`,
        );
        process.exitCode = 1;
      }
    });

  return rules;
}

function ruleSummary(r: RulePlan) {
  return {
    id: r.id,
    version: r.version,
    category: r.category,
    kind: r.shape.kind,
    status: r.status,
    severity: r.severity,
    score: r.score,
    action: r.action,
    entity: r.entity.type,
    owner: r.owner,
    streams: r.streams,
    file: r.source.file,
    line: r.source.line,
  };
}
