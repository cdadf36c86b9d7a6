// weir rules check | list: the risk team's rules folder, compiled as one snapshot exactly as the
// fraud pipeline will compile it. `check` prints every problem as `file:line:col: field: what to do`
// and fails when there is one; `list` shows what the folder holds.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { hostname, tmpdir, userInfo } from "node:os";
import { join, resolve } from "node:path";
import { createClient } from "@clickhouse/client";
import { Command } from "commander";
import { clientEndpoints, PROJECT_ROOT } from "../../infra/stack/config.ts";
import { StackError } from "../../infra/stack/prerequisites.ts";
import { backtest, backtestKafka } from "../../pipelines/fraud/backtest.ts";
import { BundleError } from "../../pipelines/fraud/deploy/bundle.ts";
import { diffSnapshots, snapshotOf } from "../../pipelines/fraud/deploy/deploy.ts";
import { KafkaClient, RecordWriter, readSnapshots, readStatuses } from "../../pipelines/fraud/deploy/topics.ts";
import { explainSignal } from "../../pipelines/fraud/explain.ts";
import { compileSnapshot, FRAUD_DATABASE, fraudNames, STATUS_EVERY_MS } from "../../pipelines/fraud/pipeline.ts";
import { compileRuleSet, formatRuleProblem } from "../../pipelines/fraud/rules/compile.ts";
import type { RulePlan, RuleSetPlan } from "../../pipelines/fraud/rules/plan.ts";
import { FIXTURE_HASH_KEY, formatFailure, runFixtures } from "../../pipelines/fraud/rules/test-runner.ts";
import { compareRules, readSignal } from "../../pipelines/fraud/signals-reader.ts";
import { SearchError } from "../../pipelines/logs/search/errors.ts";
import { parsePeriod, resolveWindow } from "../../pipelines/logs/search/time.ts";
import type { RuleSnapshot, RuleWorkerStatus } from "../../schemas/types.generated.ts";
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
      "replay events through a rule set: the event topics of a period (--from/--to) against the deployed set, or a simulator run (--sim); per-rule signals, and precision and recall per category with a ground truth",
    )
    .option("--from <time>", "replay the event topics from this time (ISO-8601, epoch ms, now-2h)")
    .option("--to <time>", "... up to this time (default now)")
    .option("--since <period>", "replay the last period of the event topics: 1h, 24h, 7d")
    .option("--sim <dir>", "replay the output folder of a weir simulate run instead (its manifest.json and logs)")
    .option("--rules <dir>", "the candidate rules folder (default: ./rules, else this checkout's rules/)")
    .option(
      "--against <dir>",
      "compare with this rules folder (default with --from/--to: the snapshot deployed, else this checkout's rules/)",
    )
    .option("--no-diff", "no comparison with another set")
    .option("--truth <file>", "a simulator run's ground truth: precision and recall per category (with --sim: its own)")
    .option("--no-truth", "no precision and recall")
    .option("--limit <n>", "only the first n events (--sim)")
    .option("--json", "the report as one JSON object")
    .action(
      async (opts: {
        sim?: string;
        from?: string;
        to?: string;
        since?: string;
        rules?: string;
        against?: string;
        diff: boolean;
        truth?: string | boolean;
        limit?: string;
        json?: boolean;
      }) => {
        const root = opts.rules ? resolve(opts.rules) : defaultRulesDir();
        const result = compileRuleSet(root);
        if (!result.plan) {
          for (const p of result.problems) console.log(formatRuleProblem(p));
          console.error(`weir: ${result.problems.length} problem(s) in ${root}: weir rules check shows them`);
          process.exitCode = 1;
          return;
        }
        const plan = result.plan;
        if (opts.sim) {
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
          const report = backtest(plan, simDir, truth, { hashKey: FIXTURE_HASH_KEY, limit });
          if (opts.json) {
            console.log(JSON.stringify({ ...report, signals: report.signals.length }));
            return;
          }
          console.log(
            `${report.events} events, ${Math.round(report.eventsPerSecond)} events/s (rules snapshot ${plan.version})\n`,
          );
          printBacktest(report);
          return;
        }
        if (!opts.from && !opts.since)
          throw new UsageError(
            "give the period to replay (--since 24h, or --from and --to) or a simulator run (--sim <dir>)",
          );
        let window: { from: number; to: number };
        try {
          window = resolveWindow(opts, 3600_000, Date.now());
        } catch (e) {
          if (e instanceof SearchError) throw new UsageError(e.message, e.hint);
          throw e;
        }
        const names = fraudNames(process.env);
        const kafka = rulesKafka("backtest");
        let against: { plan: RuleSetPlan; what: string } | null = null;
        if (opts.diff) against = await comparedSet(kafka, names, opts.against);
        const truth = typeof opts.truth === "string" ? resolve(opts.truth) : undefined;
        const r = await kafkaCall(
          () =>
            backtestKafka(plan, against?.plan ?? null, {
              kafka,
              topicPrefix: names.prefix,
              ...window,
              hashKey: FIXTURE_HASH_KEY,
              ...(truth ? { truthFile: truth } : {}),
            }),
          `${names.prefix}events.*`,
        );
        if (opts.json) {
          const slim = (b: typeof r.candidate) => ({ ...b, signals: b.signals.length });
          console.log(
            JSON.stringify({
              from: window.from,
              to: window.to,
              seconds: r.seconds,
              candidate: { version: plan.version, ...slim(r.candidate) },
              ...(r.deployed && against
                ? { against: { version: against.plan.version, what: against.what, ...slim(r.deployed) } }
                : {}),
              ...(r.diff ? { diff: r.diff } : {}),
            }),
          );
          return;
        }
        console.log(
          `${r.candidate.events} events of ${names.prefix}events.* from ${new Date(window.from).toISOString()} to ${new Date(window.to).toISOString()} in ${r.seconds.toFixed(1)} s (${Math.round(r.candidate.events / Math.max(r.seconds, 1e-9))} events/s, Kafka reads included), rules snapshot ${plan.version}${against ? ` against ${against.what}` : ""}\n`,
        );
        printBacktest(r.candidate);
        if (r.diff && against) {
          console.log(`\nagainst ${against.what}: entities each rule flagged`);
          printTable(
            ["RULE", "IN", "SIGNALS", "ENTITIES", "WAS SIGNALS", "WAS ENTITIES", "BOTH", "ONLY NEW", "ONLY OLD"],
            r.diff
              .filter(
                (x) =>
                  x.in !== "both" || x.onlyCandidate + x.onlyDeployed > 0 || x.candidate.signals !== x.deployed.signals,
              )
              .map((x) => [
                x.rule,
                x.in === "both" ? "both" : x.in === "candidate" ? "new" : "removed",
                String(x.candidate.signals),
                String(x.candidate.entities),
                String(x.deployed.signals),
                String(x.deployed.entities),
                String(x.both),
                String(x.onlyCandidate),
                String(x.onlyDeployed),
              ]),
          );
          const same = r.diff.filter(
            (x) =>
              x.in === "both" && x.onlyCandidate + x.onlyDeployed === 0 && x.candidate.signals === x.deployed.signals,
          );
          if (same.length > 0) console.log(`${same.length} other rules flagged the same entities`);
        }
      },
    );

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
    .command("deploy")
    .description(
      "compile a rules folder as one snapshot and publish it: every worker of weir run fraud switches to it at a checkpoint",
    )
    .argument("[dir]", "the rules folder (default: ./rules, else this checkout's rules/)")
    .option("--dry-run", "compile and compare with the deployed snapshot; publish nothing")
    .option("--wait <period>", "wait up to this long for the running workers to switch (or refuse), e.g. 60s")
    .action(async (dir: string | undefined, opts: { dryRun?: boolean; wait?: string }) => {
      const root = dir ? resolve(dir) : defaultRulesDir();
      const result = compileRuleSet(root);
      if (!result.plan) {
        for (const p of result.problems) console.log(formatRuleProblem(p));
        console.error(
          `weir: ${result.problems.length} problem${result.problems.length === 1 ? "" : "s"} in ${dir ?? root}: nothing deployed; the workers keep running what they run`,
        );
        process.exitCode = 1;
        return;
      }
      const waitMs = opts.wait ? parsePeriodOption(opts.wait, "--wait") : 0;
      const names = fraudNames(process.env);
      const kafka = rulesKafka("deploy");
      const writer = new RecordWriter(kafka);
      try {
        let snapshot: ReturnType<typeof snapshotOf>;
        try {
          snapshot = snapshotOf(root, result.plan, names.appId, `${userInfo().username}@${hostname()}`);
        } catch (e) {
          if (e instanceof BundleError) throw new UsageError(e.message);
          throw e;
        }
        const deployed =
          (await kafkaCall(() => readSnapshots(kafka, names.snapshots), names.snapshots)).get(names.appId) ?? null;
        const diff = diffSnapshots(deployed, snapshot);
        console.log(
          `snapshot ${snapshot.version} of ${root}: ${result.plan.rules.length} rules; deployed for ${names.appId} now: ${deployed ? `${deployed.version} (by ${deployed.deployedBy}, ${new Date(Number(deployed.deployedAt)).toISOString()})` : "nothing (workers run their rules folder)"}`,
        );
        const shown = diff.changes.filter((c) => c.change !== "unchanged");
        if (shown.length > 0)
          printTable(
            ["RULE", "CHANGE", "VERSION", "STATUS", "STATE"],
            shown.map((c) => [
              c.id,
              c.change,
              c.from !== undefined && c.to !== undefined && c.from !== c.to
                ? `${c.from} -> ${c.to}`
                : String(c.to ?? c.from),
              c.status,
              c.change === "changed"
                ? c.state === "kept"
                  ? "kept"
                  : "starts empty"
                : c.change === "added"
                  ? "starts empty"
                  : c.change === "removed"
                    ? "dropped"
                    : "",
            ]),
          );
        else console.log(deployed?.version === snapshot.version ? "nothing changed" : "no rule changed");
        if (diff.unbumped.length > 0) {
          console.error(
            `weir: ${diff.unbumped.join(", ")} changed without a new version: signals carry the version, so give each a new one; nothing deployed`,
          );
          process.exitCode = 1;
          return;
        }
        if (opts.dryRun) {
          console.log("dry run: nothing deployed");
          return;
        }
        await kafkaCall(() => writer.snapshot(names.snapshots, snapshot), names.snapshots);
        console.log(`deployed ${snapshot.version} to ${names.snapshots} for ${names.appId}`);
        if (waitMs > 0) {
          const outcome = await waitForWorkers(kafka, names, snapshot.version, waitMs);
          if (!outcome) process.exitCode = 1;
        }
      } finally {
        await writer.close();
      }
    });

  rules
    .command("status")
    .description("the rule snapshot deployed, and the one each worker of weir run fraud runs (or refused)")
    .option("--json", "one JSON object: the deployed snapshot and each worker's status")
    .action(async (opts: { json?: boolean }) => {
      const names = fraudNames(process.env);
      const kafka = rulesKafka("status");
      const deployed = (await kafkaCall(() => readSnapshots(kafka, names.snapshots), names.snapshots)).get(names.appId);
      const workers = await workerStatuses(kafka, names);
      if (opts.json) {
        const { bundle: _bundle, ...meta } = deployed ?? ({} as Record<string, unknown>);
        console.log(JSON.stringify({ app: names.appId, deployed: deployed ? meta : null, workers }));
        return;
      }
      console.log(
        deployed
          ? `deployed for ${names.appId}: ${deployed.version}, ${deployed.rules.length} rules, by ${deployed.deployedBy} at ${new Date(Number(deployed.deployedAt)).toISOString()} from ${deployed.source}`
          : `nothing deployed for ${names.appId}: workers run the rules folder they started with`,
      );
      if (workers.length === 0) {
        console.log("no worker has reported (weir run fraud)");
        return;
      }
      printTable(
        ["WORKER", "HOST", "PID", "STATE", "VERSION", "RULES", "SINCE", "LAST SEEN", "REFUSED"],
        workers.map((w) => [
          w.instance,
          w.host,
          String(w.pid),
          w.live,
          `${w.version}${deployed && w.version !== deployed.version && w.live === "running" ? " (not the deployed one)" : ""}`,
          String(w.rules),
          new Date(Number(w.since)).toISOString(),
          `${Math.round((Date.now() - Number(w.ts)) / 1000)} s ago`,
          w.refusedVersion ? `${w.refusedVersion}: ${w.refusedError}` : "",
        ]),
      );
    });

  rules
    .command("compare")
    .description(
      "a rule's hits (a shadow candidate) against the rule it replaces, over a period of live signals in ClickHouse",
    )
    .argument("<rule>", "the candidate rule's id")
    .option(
      "--replaces <rule>",
      "the rule to compare with (default: the candidate's replaces, in the rules folder or the deployed snapshot)",
    )
    .option("--rules <dir>", "where to find the candidate's replaces (default: ./rules, else this checkout's rules/)")
    .option("--since <period>", "the last period of event time: 90m, 24h, 7d (default 1h)")
    .option("--from <time>", "from this time (ISO-8601, epoch ms, now-2h)")
    .option("--to <time>", "up to this time (default now)")
    .option("--json", "the comparison as one JSON object")
    .option("--url <url>", "ClickHouse HTTP URL (default: WEIR_CLICKHOUSE_URL, else the local stack)")
    .action(
      async (
        rule: string,
        opts: {
          replaces?: string;
          rules?: string;
          since?: string;
          from?: string;
          to?: string;
          json?: boolean;
          url?: string;
        },
      ) => {
        let window: { from: number; to: number };
        try {
          window = resolveWindow(opts, 3600_000, Date.now());
        } catch (e) {
          if (e instanceof SearchError) throw new UsageError(e.message, e.hint);
          throw e;
        }
        const replaces = opts.replaces ?? (await replacedRule(rule, opts.rules));
        // A --url of its own gets the environment's credentials only, never the local stack's.
        const endpoints = clientEndpoints(opts.url ? { ...process.env, WEIR_CLICKHOUSE_URL: opts.url } : process.env);
        const url = endpoints.clickhouseUrl;
        const client = createClient({ url, ...clickhouseCredentials(endpoints.clickhouseAuth) });
        let c: Awaited<ReturnType<typeof compareRules>>;
        try {
          c = await compareRules(client, fraudNames(process.env).database, { rule, replaces, ...window });
        } catch (e) {
          throw new StackError(
            `ClickHouse at ${url} did not answer: ${String((e as Error).message).split("\n")[0]}`,
            "start the local stack (weir stack up), apply the migrations (weir migrate) or pass --url",
          );
        } finally {
          await client.close();
        }
        if (opts.json) {
          console.log(JSON.stringify(c));
          return;
        }
        console.log(
          `${rule}${c.ruleShadow ? " (shadow)" : ""} against ${replaces}, event time ${new Date(c.from).toISOString()} .. ${new Date(c.to).toISOString()}`,
        );
        printTable(
          ["RULE", "SIGNALS", "ENTITIES"],
          [
            [rule, String(c.signals.rule), String(c.entities.rule)],
            [replaces, String(c.signals.replaces), String(c.entities.replaces)],
          ],
        );
        console.log(
          `entities flagged by both: ${c.both}; only by ${rule}: ${c.onlyRule}; only by ${replaces}: ${c.onlyReplaces}`,
        );
        if (c.samples.onlyRule.length > 0) console.log(`only ${rule}: ${c.samples.onlyRule.join(", ")}`);
        if (c.samples.onlyReplaces.length > 0) console.log(`only ${replaces}: ${c.samples.onlyReplaces.join(", ")}`);
        if (c.entities.rule + c.entities.replaces === 0)
          console.log("neither rule has signals in the period (is the candidate deployed? try a longer --since)");
      },
    );

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

function printBacktest(report: ReturnType<typeof backtest>): void {
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
}

/** The set a backtest compares with: a folder given, the snapshot deployed, or this checkout's rules/. */
async function comparedSet(
  kafka: KafkaClient,
  names: ReturnType<typeof fraudNames>,
  against: string | undefined,
): Promise<{ plan: RuleSetPlan; what: string }> {
  const folder = (dir: string, what: string) => {
    const r = compileRuleSet(dir);
    if (!r.plan) throw new UsageError(`${dir} has ${r.problems.length} problem(s): weir rules check ${dir} shows them`);
    return { plan: r.plan, what: `${what} ${r.plan.version}` };
  };
  if (against) return folder(resolve(against), `the rules of ${against}`);
  let deployed: RuleSnapshot | undefined;
  try {
    deployed = (await readSnapshots(kafka, names.snapshots)).get(names.appId);
  } catch {
    deployed = undefined;
  }
  if (!deployed) return folder(join(PROJECT_ROOT, "rules"), "this checkout's rules/ (nothing deployed)");
  const dir = mkdtempSync(join(tmpdir(), "weir-backtest-deployed-"));
  try {
    const r = compileSnapshot(deployed, dir);
    if (!r.plan) throw new UsageError(`the deployed snapshot ${deployed.version} does not compile here: ${r.error}`);
    return { plan: r.plan, what: `the deployed snapshot ${deployed.version}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The rule a candidate replaces: from the rules folder, else from the snapshot deployed. */
async function replacedRule(rule: string, rulesDir: string | undefined): Promise<string> {
  const root = rulesDir ? resolve(rulesDir) : defaultRulesDir();
  const inFolder = compileRuleSet(root).rules.find((r) => r.id === rule)?.replaces;
  if (inFolder) return inFolder;
  const names = fraudNames(process.env);
  try {
    const deployed = (await readSnapshots(rulesKafka("compare"), names.snapshots)).get(names.appId);
    const found = deployed?.rules.find((r) => r.id === rule)?.replaces;
    if (found) return found;
  } catch {
    // no Kafka, or no snapshots topic: the folder was the only place to look
  }
  throw new UsageError(
    `${rule} replaces no rule in ${root} nor in the snapshot deployed for ${names.appId}`,
    "name the rule to compare with: --replaces <rule id>",
  );
}

/** A worker's status as weir rules status shows it: `live` says whether it still runs. */
interface WorkerView extends RuleWorkerStatus {
  /** running: a member of the group; gone: its status says running but it left the group (killed) or went silent. */
  live: "running" | "stopped" | "gone";
}

/** The workers of an app, checked against the consumer group's members (a killed worker writes no last status). */
async function workerStatuses(kafka: KafkaClient, names: ReturnType<typeof fraudNames>): Promise<WorkerView[]> {
  const all = await kafkaCall(() => readStatuses(kafka, names.status), names.status);
  const admin = kafka.native.admin();
  await admin.connect();
  let members: Set<string> | null = null;
  try {
    const { groups } = await admin.describeGroups([names.appId]);
    members = new Set((groups[0]?.members ?? []).map((m) => m.clientId));
  } catch {
    members = null;
  } finally {
    await admin.disconnect();
  }
  const live = (w: RuleWorkerStatus): WorkerView["live"] => {
    if (w.state === "stopped") return "stopped";
    if (Date.now() - Number(w.ts) > 3 * STATUS_EVERY_MS) return "gone";
    if (members && !members.has(`${w.app}-${w.instance}`)) return "gone";
    return "running";
  };
  return [...all.values()]
    .filter((w) => w.app === names.appId)
    .map((w) => ({ ...w, live: live(w) }))
    .sort((a, b) => a.instance.localeCompare(b.instance));
}

/** Polls rules.status until every running worker runs `version` or has refused it. */
async function waitForWorkers(
  kafka: KafkaClient,
  names: ReturnType<typeof fraudNames>,
  version: string,
  waitMs: number,
): Promise<boolean> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const workers = (await workerStatuses(kafka, names)).filter((w) => w.live === "running");
    const switched = workers.filter((w) => w.version === version);
    const refused = workers.filter((w) => w.refusedVersion === version);
    if (workers.length > 0 && switched.length + refused.length === workers.length) {
      for (const w of switched)
        console.log(`  ${w.instance} runs ${version} since ${new Date(Number(w.since)).toISOString()}`);
      for (const w of refused) console.log(`  ${w.instance} REFUSED ${version}: ${w.refusedError}`);
      return refused.length === 0;
    }
    if (Date.now() >= deadline) {
      console.error(
        `weir: after ${Math.round(waitMs / 1000)} s, ${switched.length} of ${workers.length} running workers run ${version}${workers.length === 0 ? " (none has reported: is weir run fraud running?)" : ""}`,
      );
      return false;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function rulesKafka(what: string): KafkaClient {
  return new KafkaClient({ brokers: clientEndpoints().kafkaBrokers, clientId: `weir-rules-${what}` });
}

/** A Kafka call whose failure is the user's to fix: the topic or the broker. */
async function kafkaCall<T>(fn: () => Promise<T>, topic: string): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const message = String((e as Error).message ?? e).split("\n")[0] ?? "";
    throw new StackError(
      `Kafka: ${message} (topic ${topic})`,
      /does not host|not exist|UNKNOWN_TOPIC/i.test(message)
        ? `create the catalog's topics: weir topics apply`
        : "start the local stack (weir stack up) or set WEIR_KAFKA_BROKERS",
    );
  }
}

function parsePeriodOption(text: string, what: string): number {
  try {
    return parsePeriod(text, what);
  } catch (e) {
    if (e instanceof SearchError) throw new UsageError(e.message, e.hint);
    throw e;
  }
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
