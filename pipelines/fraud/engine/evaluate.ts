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

/**
 * An event's activation whose results are shared by every rule evaluating the same expression on it:
 * rules of one pack repeat their conditions and keys (five thresholds over one window, a macro in
 * every rule), and an expression that reads only the event and its joins has one value per event.
 */
const SHARED = Symbol("shared results");
const FAILED = Symbol("failed");
type Shared = Map<string, unknown>;
interface Failure {
  [FAILED]: true;
  message: string;
}
const EVENT_ROOTS: ReadonlySet<string> = new Set(["event", "device", "registration"]);
const sharable = new WeakMap<CompiledExpression, boolean>();

/** The activation of one event (its event, device report and registration), sharing results between rules. */
export function eventActivation(
  event: unknown,
  device: unknown,
  registration: unknown,
): Record<string, unknown> & { [SHARED]: Shared } {
  return { event, device, registration, [SHARED]: new Map() };
}

function isSharable(e: CompiledExpression): boolean {
  let ok = sharable.get(e);
  if (ok === undefined) {
    ok = e.variables.every((v) => EVENT_ROOTS.has(v));
    sharable.set(e, ok);
  }
  return ok;
}

/** The expression's value, or undefined when it failed (counted). */
export function safeEvaluate(
  e: CompiledExpression,
  activation: Record<string, unknown>,
  counters: RuleCounters,
): unknown {
  const shared = (activation as { [SHARED]?: Shared })[SHARED];
  if (shared === undefined || !isSharable(e)) return evaluateCounted(e, activation, counters);
  const v = e.conjuncts ? conjunction(e.conjuncts, activation, shared) : sharedValue(e, activation, shared);
  if (v !== null && typeof v === "object" && FAILED in v) {
    counters.errors++;
    counters.lastError = (v as Failure).message;
    return undefined;
  }
  return v;
}

/** CEL's `&&` over terms evaluated once per event: false if any term is false, else an error if any failed. */
function conjunction(
  terms: readonly CompiledExpression[],
  activation: Record<string, unknown>,
  shared: Shared,
): unknown {
  let failure: unknown;
  for (let i = 0; i < terms.length; i++) {
    const v = sharedValue(terms[i] as CompiledExpression, activation, shared);
    if (v === false) return false;
    if (v !== true)
      failure ??=
        v !== null && typeof v === "object" && FAILED in v
          ? v
          : ({ [FAILED]: true, message: "no such overload: a term of && is not a bool" } satisfies Failure);
  }
  return failure ?? true;
}

function sharedValue(e: CompiledExpression, activation: Record<string, unknown>, shared: Shared): unknown {
  let v = shared.get(e.text);
  if (v === undefined && !shared.has(e.text)) {
    try {
      v = e.evaluate(activation);
    } catch (err) {
      v = { [FAILED]: true, message: String((err as Error).message ?? err).split("\n")[0] ?? "" } satisfies Failure;
    }
    shared.set(e.text, v);
  }
  return v;
}

function evaluateCounted(e: CompiledExpression, activation: Record<string, unknown>, counters: RuleCounters): unknown {
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
