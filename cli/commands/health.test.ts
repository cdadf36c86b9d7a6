import assert from "node:assert/strict";
import { test } from "node:test";
import { colours, SPARK_BLOCKS, sparkline, sparklineBlock, timeAxis, visibleLength } from "./health.ts";

test("sparkline: the minimum is ▁, the maximum █, in between by rank of height; a gap where no data", () => {
  assert.equal(sparkline([0, 1, 2, 3, 4, 5, 6, 7]), SPARK_BLOCKS);
  assert.equal(sparkline([10, null, 80]), "▁ █");
  assert.equal(sparkline([5, 5, 5]), "▄▄▄");
  assert.equal(sparkline([0, 0]), "▁▁");
  assert.equal(sparkline([null, null]), "  ");
  assert.equal(sparkline([]), "");
  assert.equal(sparkline([0, 100, 50]), "▁█▅");
});

test("sparklineBlock: labels, minima and lines aligned, the maxima after them", () => {
  const { lines, offset } = sparklineBlock([
    { label: "QPS", values: [1, 2, 3], format: (v) => `${v}/s` },
    { label: "errors", values: [0, null, 12], format: String },
    { label: "p99", values: [1500, 2500, 90_000], format: (v) => `${v / 1000}ms` },
  ]);
  assert.deepEqual(lines, ["QPS       1/s ▁▅█ 3/s", "errors      0 ▁ █ 12", "p99     1.5ms ▁▁█ 90ms"]);
  for (const l of lines) assert.match(l.slice(offset), /^[▁▂▃▄▅▆▇█ ]{3} /);
});

test("timeAxis spans the sparkline, or gives the start alone when it is too narrow", () => {
  assert.equal(timeAxis("10:00:00", "10:14:50", 20), "10:00:00    10:14:50");
  assert.equal(timeAxis("10:00:00", "10:14:50", 10), "10:00:00");
});

test("colours only when asked; visible length ignores them", () => {
  assert.equal(colours(false).red("x"), "x");
  const red = colours(true).red("12");
  assert.equal(red, "\u001b[31m12\u001b[39m");
  assert.equal(visibleLength(red), 2);
});
