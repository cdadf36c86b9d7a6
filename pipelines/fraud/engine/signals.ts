// A rule that fired becomes a RiskSignal: its entity (PHONE and CARD as keyed hashes), its evidence
// (the fields the rule read, PII masked; the aggregate; the window; the source events, capped) and its
// explanation filled in. The id is derived from the rule, its version, the entity and the triggering
// event, so a replay after a crash produces the same signal, and a consumer keeps one.
import { createHash, createHmac } from "node:crypto";
import type { RiskSignal } from "../../../schemas/types.generated.ts";
import { networkOf } from "../lists/matchers.ts";
import { phoneDigits } from "../normalize.ts";
import { type RulePlan, STATE_LIMITS } from "../rules/plan.ts";
import { type RuleCounters, safeEvaluate } from "./evaluate.ts";

export interface Firing {
  rule: RulePlan;
  /** The variables the rule's expressions read: event, device, registration, aggregates, steps. */
  activation: Record<string, unknown>;
  counts: Record<string, number>;
  window: { start: number; end: number } | null;
  /** Ids of the events that made the rule fire, the triggering one last. */
  sourceEventIds: string[];
  /** Event time of the triggering event (for an absence, its deadline). */
  ts: number;
}

/** The signal of a firing, or undefined when its entity cannot be named (counted as an error). */
export function buildSignal(f: Firing, hashKey: Buffer, counters: RuleCounters): RiskSignal | undefined {
  const { rule } = f;
  const raw = safeEvaluate(rule.entity.expression, f.activation, counters);
  if (raw === undefined || raw === null || raw === "") {
    counters.errors++;
    return undefined;
  }
  const text = typeof raw === "number" ? String(Math.trunc(raw)) : String(raw);
  const entityId = rule.entity.hashed
    ? keyedHash(hashKey, rule.entity.type === "PHONE" ? phoneDigits(text) : text)
    : text;
  const trigger = f.sourceEventIds[f.sourceEventIds.length - 1] ?? "";
  const id = createHash("sha256")
    .update(`${rule.id}\u0000${rule.version}\u0000${rule.entity.type}\u0000${entityId}\u0000${trigger}`)
    .digest("hex")
    .slice(0, 32);
  const matched: Record<string, string> = {};
  for (const { path, pii } of rule.evidence) {
    const v = read(f.activation, path);
    if (v === undefined) continue;
    matched[path] = pii ? mask(path, v) : show(v);
  }
  return {
    id,
    ts: f.ts,
    ruleId: rule.id,
    ruleVersion: rule.version,
    severity: rule.severity,
    score: rule.score,
    action: rule.action,
    shadow: rule.status === "shadow",
    entity: { type: rule.entity.type, id: entityId },
    evidence: {
      matched,
      counts: f.counts,
      windowStart: f.window?.start ?? null,
      windowEnd: f.window?.end ?? null,
      sourceEventIds: f.sourceEventIds.slice(-STATE_LIMITS.maxSourceEvents),
      explanation: explain(f, counters),
    },
  };
}

/** The explanation with its placeholders filled; a placeholder that cannot be evaluated reads `?`. */
export function explain(f: Firing, counters: RuleCounters): string {
  let out = "";
  for (const part of f.rule.explanation) {
    if (part.text !== undefined) out += part.text;
    else if (part.expression) {
      const v = safeEvaluate(part.expression, f.activation, counters);
      if (v === undefined) {
        out += "?";
        continue;
      }
      // Personal data the placeholder shows as it is (a number, an address, a chat line) is masked;
      // what is derived from it (a range's label, the words found) is not.
      let text = show(v);
      for (const { path, pii } of f.rule.evidence) {
        if (!pii || !part.expression.fields.includes(path)) continue;
        const raw = read(f.activation, path);
        if (typeof raw !== "string" || raw === "") continue;
        const digits = path.endsWith(".phone") ? phoneDigits(raw) : "";
        if (text.includes(raw)) text = text.replaceAll(raw, mask(path, raw));
        if (digits.length >= 7 && text.includes(digits)) text = text.replaceAll(digits, mask(path, raw));
      }
      out += text;
    }
  }
  return out.length > 2000 ? `${out.slice(0, 1999)}…` : out;
}

export function keyedHash(key: Buffer, value: string): string {
  return createHmac("sha256", key).update(value).digest("hex").slice(0, 32);
}

/** Evidence paths split once: the rules' paths are few and read at every firing. */
const pathParts = new Map<string, string[]>();
const MAX_PATHS = 10_000;

function read(activation: Record<string, unknown>, path: string): unknown {
  let parts = pathParts.get(path);
  if (parts === undefined) {
    parts = path.split(".");
    if (pathParts.size < MAX_PATHS) pathParts.set(path, parts);
  }
  let v: unknown = activation;
  for (const part of parts) {
    if (v === null || v === undefined || typeof v !== "object") return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

function show(v: unknown): string {
  if (typeof v === "string") return v.length > 200 ? `${v.slice(0, 199)}…` : v;
  if (typeof v === "bigint") return v.toString();
  if (Array.isArray(v)) return `[${v.map((x) => show(x)).join(", ")}]`.slice(0, 200);
  if (v instanceof Map) return show(Object.fromEntries(v));
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : String(Math.round(v * 100) / 100);
  return typeof v === "object" && v !== null ? JSON.stringify(v).slice(0, 200) : String(v);
}

/** Personal data in evidence: a phone's operator prefix, an address's network, a text's length. */
function mask(path: string, v: unknown): string {
  if (typeof v !== "string") return "[masked]";
  if (path.endsWith(".phone")) {
    const d = phoneDigits(v);
    return d.length >= 7 ? `${d.slice(0, 3)}********` : "[masked]";
  }
  if (path.endsWith("ip") || path.endsWith("Ip")) return networkOf(v, v.includes(":") ? 64 : 24) || "[masked]";
  return `[${[...v].length} characters masked]`;
}
