// weir rules score: a rule set replayed over a simulator run (as `weir rules backtest` does), its
// signals scored per category against the run's ground truth: entities flagged by type, precision,
// recall on the category's entity, and the genuine look-alikes flagged (pipelines/fraud/quality.ts).
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { Command } from "commander";
import { backtest } from "../../pipelines/fraud/backtest.ts";
import { type CategoryQuality, scoreQualityFromFile } from "../../pipelines/fraud/quality.ts";
import { compileRuleSet, formatRuleProblem } from "../../pipelines/fraud/rules/compile.ts";
import { FIXTURE_HASH_KEY } from "../../pipelines/fraud/rules/test-runner.ts";
import { UsageError } from "../errors.ts";
import { printTable } from "../table.ts";

interface ScoreOptions {
  sim: string;
  truth?: string;
  rules?: string;
  json?: boolean;
  minPrecision?: string;
  minRecall?: string;
}

export function rulesScoreCommand(defaultRulesDir: () => string): Command {
  return new Command("score")
    .description(
      "a simulator run through a rule set, scored per category against its ground truth: flagged by type, precision, recall, look-alikes flagged",
    )
    .requiredOption("--sim <dir>", "the output folder of a weir simulate run (its manifest.json and logs)")
    .option("--truth <file>", "the run's ground truth (default: <sim>/ground-truth.jsonl)")
    .option("--rules <dir>", "the rules folder (default: ./rules, else this checkout's rules/)")
    .option("--json", "the scores as one JSON object")
    .option("--min-precision <x>", "exit 1 when a category with signals is below this precision (0 to 1)")
    .option("--min-recall <x>", "exit 1 when a category with truth is below this recall (0 to 1)")
    .action((opts: ScoreOptions) => {
      const simDir = resolve(opts.sim);
      if (!existsSync(join(simDir, "manifest.json")))
        throw new UsageError(
          `${simDir} is not the output of weir simulate (no manifest.json)`,
          "weir simulate --out <dir> first",
        );
      const truth = opts.truth ? resolve(opts.truth) : join(simDir, "ground-truth.jsonl");
      if (!existsSync(truth)) throw new UsageError(`no ground truth at ${truth}`, "give --truth <file>");
      const minPrecision = threshold(opts.minPrecision, "--min-precision");
      const minRecall = threshold(opts.minRecall, "--min-recall");
      const root = opts.rules ? resolve(opts.rules) : defaultRulesDir();
      const result = compileRuleSet(root);
      if (!result.plan) {
        for (const p of result.problems) console.log(formatRuleProblem(p));
        console.error(`weir: ${result.problems.length} problem(s) in ${root}: weir rules check shows them`);
        process.exitCode = 1;
        return;
      }
      const report = backtest(result.plan, simDir, undefined, { hashKey: FIXTURE_HASH_KEY });
      const categoryOf = new Map(result.plan.rules.map((r) => [r.id, r.category]));
      const scores = scoreQualityFromFile(report.signals, categoryOf, truth);
      const failing = scores.filter(
        (s) =>
          (minPrecision !== undefined && s.precision !== null && s.precision < minPrecision) ||
          (minRecall !== undefined && s.recall !== null && s.recall < minRecall),
      );
      if (opts.json) console.log(JSON.stringify({ events: report.events, snapshot: result.plan.version, scores }));
      else printScores(scores);
      if (failing.length > 0) {
        console.error(`weir: below the thresholds: ${failing.map((s) => s.category).join(", ")}`);
        process.exitCode = 1;
      }
    });
}

function threshold(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const x = Number(text);
  if (!Number.isFinite(x) || x < 0 || x > 1) throw new UsageError(`${flag} takes a share between 0 and 1, e.g. 0.95`);
  return x;
}

const pct = (x: number | null) => (x === null ? "-" : `${(100 * x).toFixed(1)}%`);

export function printScores(scores: readonly CategoryQuality[]): void {
  printTable(
    [
      "CATEGORY",
      "FLAGGED",
      "BY TYPE",
      "RIGHT",
      "PRECISION",
      "ENTITY",
      "IN TRUTH",
      "FOUND",
      "RECALL",
      "LOOK-ALIKES FLAGGED",
    ],
    scores.map((s) => [
      s.category,
      String(s.flagged),
      Object.entries(s.flaggedByType)
        .map(([t, n]) => `${t} ${n}`)
        .join(", ") || "-",
      String(s.right),
      pct(s.precision),
      s.entity,
      String(s.truth),
      String(s.found),
      pct(s.recall),
      s.lookalikes.length === 0 ? "-" : s.lookalikes.map((l) => `${l.look} ${l.flagged}/${l.of}`).join(", "),
    ]),
  );
}
