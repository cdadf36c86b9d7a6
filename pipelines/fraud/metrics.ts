// Per-rule metrics on the worker's /metrics, read from the rules' counters when scraped (nothing is
// done per event for them): evaluations, signals, errors (a field missing at run time), events
// skipped for a missing enrichment, signals held back by the cool-down, evaluation time. A rule's
// state entries are the stream runtime's weir_stream_state_entries of its stores (named after it).
import { Counter, type Registry } from "prom-client";
import type { RuleCounters } from "./engine/evaluate.ts";

export function registerRuleMetrics(
  registry: Registry,
  counters: ReadonlyMap<string, RuleCounters>,
  snapshot: string,
): void {
  const series: Array<[string, string, (c: RuleCounters) => number]> = [
    ["weir_fraud_rule_evaluations_total", "Expressions of the rule evaluated", (c) => c.evaluations],
    ["weir_fraud_rule_signals_total", "Signals the rule emitted (after the cool-down)", (c) => c.hits],
    ["weir_fraud_rule_errors_total", "Evaluations that failed (a field missing or null at run time)", (c) => c.errors],
    [
      "weir_fraud_rule_skipped_total",
      "Events not evaluated: an enrichment the rule reads was not known",
      (c) => c.skipped,
    ],
    ["weir_fraud_rule_cooled_down_total", "Signals held back by the rule's cool-down", (c) => c.cooledDown],
    ["weir_fraud_rule_evaluation_seconds_total", "Time spent evaluating the rule's conditions", (c) => c.nanos / 1e9],
  ];
  for (const [name, help, read] of series) {
    new Counter({
      name,
      help,
      labelNames: ["rule", "snapshot"],
      registers: [registry],
      collect() {
        this.reset();
        for (const [rule, c] of counters) this.inc({ rule, snapshot }, read(c));
      },
    });
  }
}
