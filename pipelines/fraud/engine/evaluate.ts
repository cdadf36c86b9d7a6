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
 *
 * Each distinct text of a sharable expression has a slot (interned once, when first evaluated); an
 * activation has an epoch (a number no other activation has), and a slot's value is this event's when
 * the slot was stamped with its epoch. No map and no array per event: the values live in the slots
 * until another event's evaluation overwrites them (events interleaved through the stages only
 * recompute).
 */
const EPOCH = Symbol("epoch");
const FAILED = Symbol("failed");
interface Failure {
  [FAILED]: true;
  message: string;
}
const EVENT_ROOTS: ReadonlySet<string> = new Set(["event", "device", "registration"]);
/** The slot of each sharable expression (-1: not sharable), kept on the expression itself. */
const SLOT = Symbol("share slot");
type Slotted = CompiledExpression & { [SLOT]?: number };
const slotOfText = new Map<string, number>();
const slotValues: unknown[] = [];
/** Distinct texts given a slot at most (a process that reloads rule sets forever stops sharing new ones). */
const MAX_SLOTS = 65_536;
let slotStamps = new Float64Array(64);
let nextEpoch = 1;

/** The activation of one event (its event, device report and registration), sharing results between rules. */
export function eventActivation(
  event: unknown,
  device: unknown,
  registration: unknown,
): Record<string, unknown> & { [EPOCH]: number } {
  return { event, device, registration, [EPOCH]: nextEpoch++ };
}

/**
 * `base` with one more variable (a rule's aggregate): its event's shared results stay shared. Cheaper
 * than a spread, which copies the symbol-keyed epoch by a slower path.
 */
export function withVariable(base: Record<string, unknown>, name: string, value: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {
    event: base.event,
    device: base.device,
    registration: base.registration,
  };
  const epoch = (base as { [EPOCH]?: number })[EPOCH];
  if (epoch !== undefined) (out as { [EPOCH]?: number })[EPOCH] = epoch;
  out[name] = value;
  return out;
}

function slotOf(e: Slotted): number {
  let slot = e[SLOT];
  if (slot === undefined) {
    if (e.variables.every((v) => EVENT_ROOTS.has(v))) {
      slot = slotOfText.get(e.text);
      if (slot === undefined && slotOfText.size >= MAX_SLOTS) slot = -1;
      else if (slot === undefined) {
        slot = slotOfText.size;
        slotOfText.set(e.text, slot);
        if (slot >= slotStamps.length) {
          const grown = new Float64Array(slotStamps.length * 2);
          grown.set(slotStamps);
          slotStamps = grown;
        }
        slotValues[slot] = undefined;
      }
    } else slot = -1;
    e[SLOT] = slot;
    for (const c of e.conjuncts ?? []) slotOf(c);
  }
  return slot;
}

/** The expression's value, or undefined when it failed (counted). */
export function safeEvaluate(
  e: CompiledExpression,
  activation: Record<string, unknown>,
  counters: RuleCounters,
): unknown {
  const epoch = (activation as { [EPOCH]?: number })[EPOCH];
  if (epoch === undefined || slotOf(e) < 0) return evaluateCounted(e, activation, counters);
  const v = e.conjuncts ? conjunction(e.conjuncts, activation, epoch) : sharedValue(e, activation, epoch);
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
  epoch: number,
): unknown {
  let failure: unknown;
  for (let i = 0; i < terms.length; i++) {
    const v = sharedValue(terms[i] as CompiledExpression, activation, epoch);
    if (v === false) return false;
    if (v !== true)
      failure ??=
        v !== null && typeof v === "object" && FAILED in v
          ? v
          : ({ [FAILED]: true, message: "no such overload: a term of && is not a bool" } satisfies Failure);
  }
  return failure ?? true;
}

function sharedValue(e: Slotted, activation: Record<string, unknown>, epoch: number): unknown {
  const slot = e[SLOT] as number;
  if (slotStamps[slot] === epoch) return slotValues[slot];
  let v: unknown;
  try {
    v = e.evaluate(activation);
  } catch (err) {
    v = { [FAILED]: true, message: String((err as Error).message ?? err).split("\n")[0] ?? "" } satisfies Failure;
  }
  slotValues[slot] = v;
  slotStamps[slot] = epoch;
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
