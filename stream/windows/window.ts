// What every window kind shares: its spec, how it emits, what it emits, and the definition the DSL's
// `window(...)` takes. A window kind is one file: its spec, its processor, and the Operator factory
// its WindowDef carries; `Windows` (spec.ts) names it for users.
import type { Operator } from "../runtime/processor.ts";
import { type Duration, ms, TopologyError } from "../types.ts";
import type { Aggregator } from "./aggregator.ts";

/** A window kind's parameters, in milliseconds. */
export interface WindowSpec {
  readonly kind: string;
  /** How long after its end a window still accepts records (measured in watermark time). */
  readonly grace: number;
  /**
   * How long after it closed (its final result emitted) a window is kept, so that a late record
   * still updates it and its result is emitted again as a correction (Flink's allowed lateness). 0:
   * closed windows are dropped, late records go to the late side output.
   */
  readonly allowedLateness?: number;
  /** Closed windows kept per task for corrections, at most; the oldest are dropped first (counted). */
  readonly maxClosed?: number;
}

/** Closed windows kept per task for corrections unless `allowedLateness(d, { maxClosed })` says otherwise. */
export const DEFAULT_MAX_CLOSED_WINDOWS = 100_000;

export type EmitMode = { mode: "final" } | { mode: "early"; every: number };

/** What a windowed aggregation emits: the window, its result, and whether this is the final value. */
export interface Windowed<R> {
  start: number;
  /** Exclusive for tumbling/hopping; the last record's time + 1 for sliding and session windows. */
  end: number;
  value: R;
  final: boolean;
  /**
   * Set on a closed window's result emitted again because late records changed it (allowed
   * lateness): 1 for its first correction, 2 for the next... Absent on results emitted on time.
   */
  correction?: number;
  /**
   * On a correction: the result of the late records alone since the previous emission, so that a
   * roll-up of these results adds what changed instead of counting the window twice.
   */
  delta?: R;
}

/** Builds the aggregation operator of a window kind, its state in the store named `store`. */
export type WindowAggregateFactory<S extends WindowSpec> = (
  spec: S,
  store: string,
  emit: EmitMode,
  aggregator: Aggregator<unknown, unknown, unknown>,
) => Operator;

/** A window definition with a fluent `.grace(...)`; it knows the operator that aggregates in it. */
export class WindowDef<S extends WindowSpec = WindowSpec> {
  // Closures rather than the factory itself, so that a WindowDef<TumblingSpec> is a WindowDef.
  private readonly withGrace: (grace: number) => WindowDef<S>;
  private readonly withLateness: (lateness: number, maxClosed: number | undefined) => WindowDef<S>;
  private readonly operator: (
    store: string,
    emit: EmitMode,
    aggregator: Aggregator<unknown, unknown, unknown>,
  ) => Operator;

  constructor(
    readonly spec: S,
    factory: WindowAggregateFactory<S>,
  ) {
    this.withGrace = (grace) => new WindowDef({ ...spec, grace }, factory);
    this.withLateness = (allowedLateness, maxClosed) =>
      new WindowDef({ ...spec, allowedLateness, ...(maxClosed !== undefined ? { maxClosed } : {}) }, factory);
    this.operator = (store, emit, aggregator) => factory(spec, store, emit, aggregator);
  }

  /** How long after its end a window still accepts records (measured in watermark time). */
  grace(d: Duration): WindowDef<S> {
    return this.withGrace(ms(d));
  }

  /**
   * Keeps each window this long after it closed: a late record within it updates the window and its
   * result is emitted again (`correction`, `delta`) at the task's next checkpoint; later ones go to
   * the late side output. At most `maxClosed` closed windows per task (default 100,000), the oldest
   * dropped first. Tumbling and hopping windows.
   */
  allowedLateness(d: Duration, options: { maxClosed?: number } = {}): WindowDef<S> {
    const max = options.maxClosed;
    if (max !== undefined && (!Number.isInteger(max) || max < 1)) {
      throw new TopologyError(`allowedLateness: maxClosed must be a positive integer, got ${JSON.stringify(max)}`);
    }
    return this.withLateness(ms(d), max);
  }

  /** The operator aggregating records in these windows (may refuse an aggregator with a TopologyError). */
  aggregate(store: string, emit: EmitMode, aggregator: Aggregator<unknown, unknown, unknown>): Operator {
    return this.operator(store, emit, aggregator);
  }
}

/** Corrections of sliding and session windows (whose late records move or merge windows) are not built. */
export function noLateness(kind: string, store: string, lateness: number | undefined): void {
  if (lateness) {
    throw new TopologyError(
      `aggregate ${store}: allowedLateness is for tumbling and hopping windows; ${kind} windows take late records within grace only`,
    );
  }
}
