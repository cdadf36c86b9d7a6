// Evaluating a rule's expression on one event: a field missing at run time (a null read as a string,
// an enrichment without the field) is an error counted for the rule, never a crash of the worker.
import type { CompiledExpression } from "../cel/expression.ts";

/** What one rule did, per worker: its /metrics series and `weir rules test`'s report. */
export interface RuleCounters {
  evaluations: number;
  hits: number;
  errors: number;
  /** Events not evaluated because an enrichment the rule reads was not known yet. */
  skipped: number;
  /** Signals held back by the rule's cool-down. */
  cooledDown: number;
  /** Time spent evaluating, in nanoseconds. */
  nanos: number;
  lastError?: string;
}

export function newCounters(): RuleCounters {
  return { evaluations: 0, hits: 0, errors: 0, skipped: 0, cooledDown: 0, nanos: 0 };
}

/** The expression's value, or undefined when it failed (counted). */
export function safeEvaluate(
  e: CompiledExpression,
  activation: Record<string, unknown>,
  counters: RuleCounters,
): unknown {
  try {
    return e.evaluate(activation);
  } catch (err) {
    counters.errors++;
    counters.lastError = String((err as Error).message ?? err).split("\n")[0];
    return undefined;
  }
}

/** Whether a condition holds; false (counted) when it cannot be evaluated. */
export function holds(e: CompiledExpression, activation: Record<string, unknown>, counters: RuleCounters): boolean {
  const t0 = process.hrtime.bigint();
  counters.evaluations++;
  const v = safeEvaluate(e, activation, counters);
  counters.nanos += Number(process.hrtime.bigint() - t0);
  return v === true;
}
