// The rule packs' quality on simulator runs: for each seed, a `weir simulate` run (files, in a
// temporary folder) replayed through a rules folder in this process (the backtest's test driver),
// scored per category against the run's ground truth (precision, recall, look-alikes flagged). Prints
// a Markdown table per seed and the worst per category, and with --explain one signal of each
// category as `weir rules explain` prints it. No Kafka, no ClickHouse.
//   node --import tsx bench/fraud/quality.ts --seeds 101,102,103 [--rules rules/packs]
//     [--duration 60s] [--rate 2000] [--users 200000] [--fraud 1] [--explain]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { parseDuration } from "../../infra/simulator/scenario.ts";
import { SIMULATE_DEFAULTS, simulate } from "../../infra/simulator/simulate.ts";
import { backtest } from "../../pipelines/fraud/backtest.ts";
import { explainSignal } from "../../pipelines/fraud/explain.ts";
import { type CategoryQuality, scoreQualityFromFile } from "../../pipelines/fraud/quality.ts";
import { compileRuleSet } from "../../pipelines/fraud/rules/compile.ts";
import { FIXTURE_HASH_KEY } from "../../pipelines/fraud/rules/test-runner.ts";

const { values } = parseArgs({
  options: {
    seeds: { type: "string", default: "101,102,103" },
    rules: { type: "string", default: "rules/packs" },
    duration: { type: "string", default: "60s" },
    rate: { type: "string", default: String(SIMULATE_DEFAULTS.rate) },
    users: { type: "string", default: String(SIMULATE_DEFAULTS.users) },
    fraud: { type: "string", default: "1" },
    explain: { type: "boolean", default: false },
  },
});

const seeds = (values.seeds as string).split(",").map((s) => Number(s.trim()));
if (seeds.some((s) => !Number.isInteger(s))) throw new Error("--seeds takes whole numbers separated by commas");
const compiled = compileRuleSet(resolve(values.rules as string));
if (!compiled.plan) throw new Error(`${values.rules} does not compile: weir rules check shows why`);
const plan = compiled.plan;
const categoryOf = new Map(plan.rules.map((r) => [r.id, r.category]));
const pct = (x: number | null) => (x === null ? "-" : `${(100 * x).toFixed(1)}%`);

const all: { seed: number; scores: CategoryQuality[] }[] = [];
for (const seed of seeds) {
  const dir = mkdtempSync(join(tmpdir(), `weir-quality-${seed}-`));
  try {
    await simulate({
      ...SIMULATE_DEFAULTS,
      seed,
      durationMs: parseDuration(values.duration as string),
      rate: Number(values.rate),
      users: Number(values.users),
      fraud: Number(values.fraud),
      out: dir,
      to: "files",
    });
    const report = backtest(plan, dir, undefined, { hashKey: FIXTURE_HASH_KEY });
    const scores = scoreQualityFromFile(report.signals, categoryOf, join(dir, "ground-truth.jsonl"));
    all.push({ seed, scores });
    console.log(`\n### seed ${seed}: ${report.events} events\n`);
    console.log(
      "| category | flagged (by type) | precision | recall (entity: found / in truth) | look-alikes flagged |",
    );
    console.log("|---|---|---|---|---|");
    for (const s of scores)
      console.log(
        `| ${s.category} | ${s.flagged} (${Object.entries(s.flaggedByType)
          .map(([t, n]) => `${t} ${n}`)
          .join(", ")}) | ${pct(s.precision)} | ${pct(s.recall)} (${s.entity}: ${s.found} / ${s.truth}) | ${
          s.lookalikes.map((l) => `${l.look} ${l.flagged}`).join(", ") || "-"
        } |`,
      );
    if (values.explain && seed === seeds[0]) {
      for (const category of new Set(scores.map((s) => s.category))) {
        const signal = report.signals.find((x) => categoryOf.get(x.ruleId) === category);
        if (!signal) continue;
        console.log(`\n#### ${category}\n\n\`\`\``);
        const rule = plan.rules.find((r) => r.id === signal.ruleId);
        for (const line of explainSignal({ ...signal, category }, rule)) console.log(line);
        console.log("```");
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`\n### worst over seeds ${seeds.join(", ")}\n`);
console.log("| category | lowest precision | lowest recall | look-alikes flagged (all seeds) |");
console.log("|---|---|---|---|");
for (const category of new Set(all.flatMap((a) => a.scores.map((s) => s.category)))) {
  const mine = all.flatMap((a) => a.scores.filter((s) => s.category === category));
  const low = (xs: (number | null)[]) => {
    const v = xs.filter((x): x is number => x !== null);
    return v.length === 0 ? null : Math.min(...v);
  };
  console.log(
    `| ${category} | ${pct(low(mine.map((s) => s.precision)))} | ${pct(low(mine.map((s) => s.recall)))} | ${mine.reduce((n, s) => n + s.lookalikesFlagged, 0)} |`,
  );
}
