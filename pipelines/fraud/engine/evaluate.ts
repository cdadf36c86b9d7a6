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
  /** Records more than the grace behind the watermark when they reached the rule's state. */
  late: number;
  /** Time spent evaluating, in nanoseconds (estimated from one evaluation in TIMING_SAMPLE). */
  nanos: number;
  lastError?: string;
}

export function newCounters(): RuleCounters {
  return { evaluations: 0, hits: 0, errors: 0, skipped: 0, cooledDown: 0, late: 0, nanos: 0 };
}

/**
 * One evaluation in this many is timed: reading a clock twice costs about as much as evaluating a
 * simple predicate, and the metric is a sum over millions of evaluations.
 */
export const TIMING_SAMPLE = 16;
let sampled = 0;

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
  counters.evaluations++;
  if (++sampled < TIMING_SAMPLE) return safeEvaluate(e, activation, counters) === true;
  sampled = 0;
  const t0 = performance.now();
  const v = safeEvaluate(e, activation, counters);
  counters.nanos += (performance.now() - t0) * 1e6 * TIMING_SAMPLE;
  return v === true;
}
