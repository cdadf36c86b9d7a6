// Per-rule metrics on the worker's /metrics, read from the rules' counters when scraped (nothing is
// done per event for them): evaluations, signals, errors (a field missing at run time), events
// skipped for a missing enrichment, signals held back by the cool-down, records late for the rule's
// state, evaluation time (estimated from a sample), the state entries the rule holds in this worker's
// tasks and what its state dropped by design (caps, records behind the window). Labelled with the rule
// and the snapshot the worker runs now.
import { Counter, Gauge, type Registry } from "prom-client";
import type { RuleCounters } from "./engine/evaluate.ts";
import type { RuleEngine } from "./engine/rule-engine.ts";

export function registerRuleMetrics(registry: Registry, engine: RuleEngine): void {
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
    [
      "weir_fraud_rule_late_total",
      "Records more than the grace behind the watermark at the rule's state",
      (c) => c.late,
    ],
    [
      "weir_fraud_rule_evaluation_seconds_total",
      "Time spent evaluating the rule's conditions (estimated from one evaluation in 16)",
      (c) => c.nanos / 1e9,
    ],
  ];
  for (const [name, help, read] of series) {
    new Counter({
      name,
      help,
      labelNames: ["rule", "snapshot"],
      registers: [registry],
      collect() {
        this.reset();
        const snapshot = engine.current.version;
        for (const [rule, c] of engine.allCounters()) this.inc({ rule, snapshot }, read(c));
      },
    });
  }
  new Gauge({
    name: "weir_fraud_rule_state_entries",
    help: "Keys the rule holds state for, over this worker's tasks",
    labelNames: ["rule", "snapshot"],
    registers: [registry],
    collect() {
      this.reset();
      const snapshot = engine.current.version;
      for (const [rule, n] of engine.stateEntries()) this.set({ rule, snapshot }, n);
    },
  });
  new Gauge({
    name: "weir_fraud_rule_state_dropped",
    help: "What the rule's state dropped by design (a cap, a record behind its window), by reason, over this worker's tasks",
    labelNames: ["rule", "reason"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [rule, reasons] of engine.stateDropped())
        for (const [reason, n] of Object.entries(reasons)) this.set({ rule, reason }, n);
    },
  });
}
