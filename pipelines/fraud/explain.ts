// `weir rules explain <signal-id>`: a signal read as a risk analyst would: the rule that fired (from the
// rules folder, with a warning when the folder holds another version), each of its expressions with the
// values the signal's evidence recorded for the fields it reads, the aggregate, the window, the events.
import type { RiskSignal } from "../../schemas/types.generated.ts";
import type { CompiledExpression } from "./cel/expression.ts";
import { inRuleWords } from "./cel/expression.ts";
import type { RulePlan } from "./rules/plan.ts";

export function explainSignal(s: RiskSignal & { category?: string }, rule: RulePlan | undefined): string[] {
  const out: string[] = [];
  const when = new Date(s.ts).toISOString();
  out.push(`signal ${s.id} at ${when}${s.shadow ? " (shadow: recorded, not acted on)" : ""}`);
  out.push(
    `  rule ${s.ruleId} v${s.ruleVersion}${s.category ? ` (${s.category})` : ""}: ${s.severity}, score ${s.score}, action ${s.action}`,
  );
  out.push(`  entity: ${s.entity.type} ${s.entity.id}`);
  out.push(`  explanation: ${s.evidence.explanation}`);
  if (!rule) {
    out.push(`  the rules folder has no rule ${s.ruleId} any more: the evidence alone follows`);
  } else {
    if (rule.version !== s.ruleVersion)
      out.push(`  the rules folder holds version ${rule.version}; the signal came from version ${s.ruleVersion}`);
    out.push(`  defined at ${rule.source.file}:${rule.source.line}`);
    for (const [label, e] of expressionsOf(rule)) {
      out.push(`  ${label}: ${shown(e)}`);
      for (const f of e.fields) {
        const v = s.evidence.matched[f];
        if (v !== undefined) out.push(`      ${f} = ${v}`);
      }
    }
  }
  const counts = Object.entries(s.evidence.counts);
  if (counts.length > 0) out.push(`  counts: ${counts.map(([k, v]) => `${k} = ${v}`).join(", ")}`);
  if (s.evidence.windowStart !== null && s.evidence.windowEnd !== null)
    out.push(
      `  window: ${new Date(s.evidence.windowStart).toISOString()} .. ${new Date(s.evidence.windowEnd).toISOString()}`,
    );
  out.push(`  events: ${s.evidence.sourceEventIds.join(", ") || "-"}`);
  if (!rule) for (const [k, v] of Object.entries(s.evidence.matched)) out.push(`      ${k} = ${v}`);
  return out;
}

/** The rule's expressions as they ran (macros expanded), labelled by where they sit in the rule. */
function expressionsOf(rule: RulePlan): Array<[string, CompiledExpression]> {
  const s = rule.shape;
  const out: Array<[string, CompiledExpression]> = [];
  switch (s.kind) {
    case "match":
      out.push([`when (${s.stream})`, s.when]);
      break;
    case "aggregate":
      if (s.when) out.push([`when (${s.stream})`, s.when]);
      for (const a of s.aggregates) {
        out.push([`${a.name} = ${a.fn} by`, a.by]);
        if (a.of) out.push([`${a.name} of`, a.of]);
        if (a.where) out.push([`${a.name} where`, a.where]);
      }
      out.push(["condition", s.condition]);
      break;
    case "sequence":
      for (const st of s.steps) out.push([`step ${st.name} (${st.stream})`, st.when]);
      break;
    case "absence":
      out.push([`after (${s.after.stream})`, s.after.when]);
      out.push([`and no (${s.missing.stream})`, s.missing.when]);
      break;
  }
  out.push([`entity ${rule.entity.type}`, rule.entity.expression]);
  return out;
}

function shown(e: CompiledExpression): string {
  return inRuleWords(e.text.replace(/\s+/g, " ").trim());
}
