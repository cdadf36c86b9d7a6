import assert from "node:assert/strict";
import { test } from "node:test";
import { Registry } from "prom-client";
import { sinkCounter, sinkCounterBy, sinkGauge, sinkHistogram } from "./metrics.ts";

test("two sinks of one kind in one registry: each metric once, a series per sink", async () => {
  const registry = new Registry();
  const counts = { a: 3, b: 5 };
  for (const name of ["a", "b"] as const) {
    const labels = { sink: name, table: `db.${name}` };
    sinkCounter(registry, "x_rows_total", "Rows.", labels, () => counts[name]);
    sinkGauge(registry, "x_pending", "Pending.", labels, () => counts[name] * 10);
    sinkCounterBy(registry, "x_rejected_total", "Rejected.", labels, ["error_type"], () => [
      [{ error_type: "bad" }, counts[name] + 1],
    ]);
    sinkHistogram(registry, "x_seconds", "Seconds.", labels, [1, 2]).observe(counts[name] / 2);
  }
  counts.a = 4; // read when scraped, not when registered
  const text = await registry.metrics();
  assert.equal(text.match(/^# TYPE x_rows_total counter$/gm)?.length, 1);
  assert.match(text, /^x_rows_total\{sink="a",table="db\.a"\} 4$/m);
  assert.match(text, /^x_rows_total\{sink="b",table="db\.b"\} 5$/m);
  assert.match(text, /^x_pending\{sink="b",table="db\.b"\} 50$/m);
  assert.match(text, /^x_rejected_total\{sink="a",table="db\.a",error_type="bad"\} 5$/m);
  assert.match(text, /^x_seconds_count\{sink="a",table="db\.a"\} 1$/m);
  assert.match(text, /^x_seconds_bucket\{le="2",sink="b",table="db\.b"\} 0$/m);
});

test("a second registry gets metrics of its own", async () => {
  const one = new Registry();
  const two = new Registry();
  sinkCounter(one, "y_total", "Y.", { sink: "s" }, () => 1);
  sinkCounter(two, "y_total", "Y.", { sink: "s" }, () => 2);
  assert.match(await one.metrics(), /^y_total\{sink="s"\} 1$/m);
  assert.match(await two.metrics(), /^y_total\{sink="s"\} 2$/m);
});
