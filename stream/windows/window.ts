// What every window kind shares: its spec, how it emits, what it emits, and the definition the DSL's
// `window(...)` takes. A window kind is one file: its spec, its processor, and the Operator factory
// its WindowDef carries; `Windows` (spec.ts) names it for users.
import type { Operator } from "../runtime/processor.ts";
import { type Duration, ms } from "../types.ts";
import type { Aggregator } from "./aggregator.ts";

/** A window kind's parameters, in milliseconds. */
export interface WindowSpec {
  readonly kind: string;
  /** How long after its end a window still accepts records (measured in watermark time). */
  readonly grace: number;
}

export type EmitMode = { mode: "final" } | { mode: "early"; every: number };

/** What a windowed aggregation emits: the window, its result, and whether this is the final value. */
export interface Windowed<R> {
  start: number;
  /** Exclusive for tumbling/hopping; the last record's time + 1 for sliding and session windows. */
  end: number;
  value: R;
  final: boolean;
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
    this.operator = (store, emit, aggregator) => factory(spec, store, emit, aggregator);
  }

  /** How long after its end a window still accepts records (measured in watermark time). */
  grace(d: Duration): WindowDef<S> {
    return this.withGrace(ms(d));
  }

  /** The operator aggregating records in these windows (may refuse an aggregator with a TopologyError). */
  aggregate(store: string, emit: EmitMode, aggregator: Aggregator<unknown, unknown, unknown>): Operator {
    return this.operator(store, emit, aggregator);
  }
}
