// The closures (pipelines/fraud/cel/closure.ts) against cel-js, on real events: every expression of
// the benchmark's rule set and of the repository's rules/ (conditions, each term of a conjunction,
// keys, aggregated values, entities), on every simulator event of its stream, joined as the pipeline
// joins them (the latest device report, the registration facts), must give the same value as cel-js
// interpreting it, or fail where cel-js fails. Prints how many evaluations the closures decided alone.
//
//   node --import tsx bench/fraud/closures.ts --sim /tmp/fraud-sim [--rules 100] [--events 20000]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { readSimulatorEvents } from "../../pipelines/fraud/backtest.ts";
import type { StreamName } from "../../pipelines/fraud/cel/environment.ts";
import type { CompiledExpression } from "../../pipelines/fraud/cel/expression.ts";
import { registrationFacts } from "../../pipelines/fraud/engine/stage.ts";
import { compileRuleSet, formatRuleProblem } from "../../pipelines/fraud/rules/compile.ts";
import type { RulePlan, RuleSetPlan } from "../../pipelines/fraud/rules/plan.ts";
import { FIXTURE_HASH_KEY } from "../../pipelines/fraud/rules/test-runner.ts";
import { benchFlags } from "../support/flags.ts";
import { writeBenchRules } from "./rules.ts";

interface Use {
  rule: string;
  stream: StreamName;
  expression: CompiledExpression;
  /** Variables other than the event and its joins (steps, `after`, aggregates): filled with other events / numbers. */
  others: Record<string, StreamName | "number">;
}

function uses(plan: RuleSetPlan): Use[] {
  const out: Use[] = [];
  const add = (rule: RulePlan, stream: StreamName, e: CompiledExpression | undefined, others: Use["others"] = {}) => {
    if (!e) return;
    out.push({ rule: rule.id, stream, expression: e, others });
    for (const c of e.conjuncts ?? []) out.push({ rule: rule.id, stream, expression: c, others });
  };
  for (const rule of plan.rules) {
    const s = rule.shape;
    switch (s.kind) {
      case "match":
        add(rule, s.stream, s.when);
        add(rule, s.stream, rule.entity.expression);
        break;
      case "aggregate": {
        add(rule, s.stream, s.when);
        const numbers = Object.fromEntries(s.aggregates.map((a) => [a.name, "number" as const]));
        for (const a of s.aggregates) {
          add(rule, s.stream, a.where);
          add(rule, s.stream, a.of);
          add(rule, s.stream, a.by);
        }
        add(rule, s.stream, s.condition, numbers);
        add(rule, s.stream, rule.entity.expression, numbers);
        break;
      }
      case "sequence": {
        const earlier: Use["others"] = {};
        for (const step of s.steps) {
          add(rule, step.stream, step.when, { ...earlier });
          add(rule, step.stream, step.by);
          earlier[step.name] = step.stream;
        }
        const last = s.steps[s.steps.length - 1];
        if (last) add(rule, last.stream, rule.entity.expression, earlier);
        break;
      }
      case "absence":
        add(rule, s.after.stream, s.after.when);
        add(rule, s.after.stream, s.after.by);
        add(rule, s.missing.stream, s.missing.when, { after: s.after.stream });
        add(rule, s.missing.stream, s.missing.by);
        add(rule, s.after.stream, rule.entity.expression);
        break;
    }
  }
  return out;
}

type Outcome = { ok: true; value: unknown } | { ok: false };

function outcome(f: () => unknown): Outcome {
  try {
    return { ok: true, value: f() };
  } catch {
    return { ok: false };
  }
}

function same(a: Outcome, b: Outcome): boolean {
  if (!a.ok || !b.ok) return a.ok === b.ok;
  return Object.is(a.value, b.value) || JSON.stringify(a.value) === JSON.stringify(b.value);
}

function main(): void {
  const { flag, num } = benchFlags();
  const simDir = flag("sim") ?? "/tmp/fraud-sim";
  const limit = num("events", 20_000);
  const dir = mkdtempSync(join(tmpdir(), "weir-closures-"));
  try {
    const sets: Array<[string, string]> = [
      ["bench", join(dir, "bench")],
      ["rules/", fileURLToPath(new URL("../../rules", import.meta.url))],
    ];
    writeBenchRules(join(dir, "bench"), num("rules", 100));
    const events = readSimulatorEvents(simDir, new Set<StreamName>(["behavior", "coin", "device", "access"])).slice(
      0,
      limit,
    );
    let mismatches = 0;
    for (const [name, rulesDir] of sets) {
      const r = compileRuleSet(rulesDir);
      if (!r.plan) throw new Error(`${name} does not compile:\n${r.problems.map(formatRuleProblem).join("\n")}`);
      const all = uses(r.plan);
      const withClosure = all.filter((u) => u.expression.closure);
      const devices = new Map<string, unknown>();
      const registrations = new Map<number, unknown>();
      const lastOf = new Map<StreamName, unknown>();
      let evaluations = 0;
      let decided = 0;
      for (const ev of events) {
        const e = ev.record as Record<string, unknown>;
        if (ev.stream === "device") devices.set(String(e.deviceId), e);
        if (ev.stream === "behavior" && e.type === "REGISTER" && e.success === true)
          registrations.set(e.uid as number, registrationFacts(e, FIXTURE_HASH_KEY));
        for (const u of withClosure) {
          if (u.stream !== ev.stream) continue;
          const act: Record<string, unknown> = {
            event: e,
            device: devices.get(String(e.deviceId)) ?? null,
            registration: registrations.get(e.uid as number) ?? null,
          };
          for (const [v, s] of Object.entries(u.others))
            act[v] = s === "number" ? (evaluations % 7) * 3 : (lastOf.get(s) ?? null);
          const fast = outcome(() => u.expression.evaluate(act));
          const slow = outcome(() => u.expression.interpreted(act));
          evaluations++;
          if (fast.ok && slow.ok) decided++;
          if (!same(fast, slow)) {
            mismatches++;
            if (mismatches <= 20)
              console.log(
                `MISMATCH ${u.rule}: ${u.expression.text} on ${ev.stream} event ${String(e.id)}: closures ${JSON.stringify(fast, big)}, cel-js ${JSON.stringify(slow, big)}`,
              );
          }
        }
        lastOf.set(ev.stream, e);
      }
      console.log(
        `${name}: ${all.length} expressions, ${withClosure.length} with closures; ${evaluations.toLocaleString("en")} evaluations on ${events.length.toLocaleString("en")} events, ${decided.toLocaleString("en")} with a value`,
      );
    }
    console.log(mismatches === 0 ? "closures and cel-js agree on every evaluation" : `${mismatches} mismatches`);
    if (mismatches > 0) process.exitCode = 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const big = (_k: string, v: unknown) => (typeof v === "bigint" ? `${v}n` : v);

if (import.meta.url === `file://${process.argv[1]}`) main();
