// The rules one process runs: the current snapshot every stage of every task reads, the next one
// waiting for a checkpoint boundary, the per-rule counters, and the stages alive in this process (for
// the per-rule state metrics). One per worker: its tasks all switch together, because they all read
// `current`, which changes in one assignment, between two records.
import type { RuleSetPlan } from "../rules/plan.ts";
import { newCounters, type RuleCounters } from "./evaluate.ts";
import { type RuntimeSnapshot, runtimeSnapshot } from "./snapshot.ts";

/** What a stage reports of the rules' state it holds, for /metrics. */
export interface StateHolder {
  /** Entries per rule id. */
  entries(): Map<string, number>;
  /** What the rules' state operators dropped by design, per rule id and reason. */
  droppedByRule(): Map<string, Record<string, number>>;
}

export interface RuleEngineOptions {
  /** Keys the hashes of phone numbers and cards (the PII key). */
  hashKey: Buffer;
  /** How far behind the watermark a record may still count in a rule's state (ms). */
  grace: number;
}

export class RuleEngine {
  private snapshot: RuntimeSnapshot;
  private next: RuntimeSnapshot | null = null;
  private readonly counterMap = new Map<string, RuleCounters>();
  private readonly holders = new Set<StateHolder>();
  /** When the current snapshot started running (ms since the epoch). */
  since = Date.now();

  constructor(
    plan: RuleSetPlan,
    readonly options: RuleEngineOptions,
  ) {
    this.snapshot = runtimeSnapshot(plan);
    this.ensureCounters(this.snapshot);
  }

  get current(): RuntimeSnapshot {
    return this.snapshot;
  }

  /** The snapshot waiting for the next checkpoint boundary, if any. */
  get pending(): RuntimeSnapshot | null {
    return this.next;
  }

  /** Runs `plan` from the next switch point on (a later offer replaces one not yet switched to). */
  offer(plan: RuleSetPlan): RuntimeSnapshot {
    const s = runtimeSnapshot(plan);
    this.next = s;
    return s;
  }

  /**
   * A checkpoint boundary: everything processed so far is committed with the current rules. The
   * snapshot offered since becomes the current one; returns it, or null when nothing was waiting.
   */
  switchPoint(): RuntimeSnapshot | null {
    const next = this.next;
    if (!next) return null;
    this.next = null;
    this.snapshot = next;
    this.since = Date.now();
    this.ensureCounters(next);
    return next;
  }

  counters(ruleId: string): RuleCounters {
    let c = this.counterMap.get(ruleId);
    if (!c) {
      c = newCounters();
      this.counterMap.set(ruleId, c);
    }
    return c;
  }

  /** Every rule's counters since the process started (rules of earlier snapshots included). */
  allCounters(): ReadonlyMap<string, RuleCounters> {
    return this.counterMap;
  }

  register(holder: StateHolder): void {
    this.holders.add(holder);
  }

  unregister(holder: StateHolder): void {
    this.holders.delete(holder);
  }

  /** State entries per rule, over the stages alive in this process. */
  stateEntries(): Map<string, number> {
    const out = new Map<string, number>();
    for (const h of this.holders) for (const [rule, n] of h.entries()) out.set(rule, (out.get(rule) ?? 0) + n);
    return out;
  }

  /** What the rules' state dropped by design, per rule and reason, over the stages alive in this process. */
  stateDropped(): Map<string, Record<string, number>> {
    const out = new Map<string, Record<string, number>>();
    for (const h of this.holders) {
      for (const [rule, reasons] of h.droppedByRule()) {
        const sum = out.get(rule) ?? {};
        for (const [reason, n] of Object.entries(reasons)) sum[reason] = (sum[reason] ?? 0) + n;
        out.set(rule, sum);
      }
    }
    return out;
  }

  private ensureCounters(s: RuntimeSnapshot): void {
    for (const r of s.runs) r.counters = this.counters(r.rule.id);
  }
}
