import assert from "node:assert/strict";
import { test } from "node:test";
import { DDSketch } from "@datadog/sketches-js";
import { compareText, isoSeconds, LatencySketch } from "./health-reader.ts";

function encoded(values: number[]): string {
  const s = new DDSketch({ relativeAccuracy: 0.01 });
  for (const v of values) s.accept(v);
  return Buffer.from(s.toProto()).toString("base64");
}

test("LatencySketch: merged rows answer like one sketch of every value, within 1%", () => {
  const all: number[] = [];
  const merged = new LatencySketch();
  for (let w = 0; w < 60; w++) {
    const values = Array.from({ length: 100 }, (_, i) => 1000 + ((i * 31 + w * 7) % 100) * (w === 42 ? 5000 : 100));
    all.push(...values);
    merged.add(encoded(values));
  }
  assert.equal(merged.count, 6000);
  const sorted = all.sort((a, b) => a - b);
  for (const q of [0.5, 0.9, 0.99, 0.999]) {
    const exact = sorted[Math.floor(q * (sorted.length - 1))] as number;
    const got = merged.quantile(q) as number;
    assert.ok(Math.abs(got - exact) <= 0.01 * exact, `q${q}: ${got} vs ${exact}`);
  }
});

test("LatencySketch: empty and undecodable sketches are skipped; merging leaves the source alone", () => {
  const a = new LatencySketch();
  assert.equal(a.quantile(0.99), null);
  a.add("");
  a.add(encoded([]));
  assert.equal(a.count, 0);
  a.add("not a sketch!");
  a.add(Buffer.from([0xff, 0xff, 0xff]).toString("base64"));
  assert.equal(a.unreadable, 2);
  a.add(encoded([10_000]));
  const total = new LatencySketch();
  total.merge(a);
  total.add(encoded([20_000, 30_000]));
  assert.equal(a.count, 1);
  assert.equal(total.count, 3);
  assert.equal(total.unreadable, 2);
  assert.ok(Math.abs((a.quantile(1) as number) - 10_000) <= 100);
});

test("isoSeconds and compareText", () => {
  assert.equal(isoSeconds(Date.UTC(2026, 2, 14, 10, 5, 0, 999)), "2026-03-14T10:05:00Z");
  assert.deepEqual(["/room/{id}", "/room/list", "/Room"].sort(compareText), ["/Room", "/room/list", "/room/{id}"]);
});
