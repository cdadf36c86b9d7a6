// weir rules check | list: the risk team's rules folder, compiled as one snapshot exactly as the
// fraud pipeline will compile it. `check` prints every problem as `file:line:col: field: what to do`
// and fails when there is one; `list` shows what the folder holds.
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { Command } from "commander";
import { PROJECT_ROOT } from "../../infra/stack/config.ts";
import { compileRuleSet, formatRuleProblem } from "../../pipelines/fraud/rules/compile.ts";
import type { RulePlan } from "../../pipelines/fraud/rules/plan.ts";
import { formatFailure, runFixtures } from "../../pipelines/fraud/rules/test-runner.ts";
import { printTable } from "../table.ts";

/** `rules/` of the working directory when there is one, else this checkout's. */
export function defaultRulesDir(): string {
  return existsSync("rules") ? resolve("rules") : join(PROJECT_ROOT, "rules");
}

export function rulesCommand(): Command {
  const rules = new Command("rules").description(
    "the risk team's rules: check a rules folder, test its fixtures, list its rules (docs/rules.md)",
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
