import assert from "node:assert/strict";
import { test } from "node:test";
import { AliasTable, Rng, zipfWeights } from "./random.ts";

test("the same seed gives the same stream; another seed another one", () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const c = new Rng(43);
  const sa = Array.from({ length: 100 }, () => a.u32());
  assert.deepEqual(
    Array.from({ length: 100 }, () => b.u32()),
    sa,
  );
  assert.notDeepEqual(
    Array.from({ length: 100 }, () => c.u32()),
    sa,
  );
});

test("uniform draws cover [0, 1) evenly", () => {
  const rng = new Rng(7);
  const buckets = new Array(10).fill(0);
  for (let i = 0; i < 100_000; i++) buckets[Math.floor(rng.next() * 10)]++;
  for (const b of buckets) assert.ok(Math.abs(b - 10_000) < 500, `bucket ${b}`);
});

test("the alias table draws in proportion to the weights", () => {
  const rng = new Rng(1);
  const table = new AliasTable([1, 2, 3, 4, 0]);
  const counts = [0, 0, 0, 0, 0];
  const n = 200_000;
  for (let i = 0; i < n; i++) {
    const k = table.sample(rng);
    counts[k] = (counts[k] ?? 0) + 1;
  }
  for (const [i, w] of [1, 2, 3, 4, 0].entries())
    assert.ok(Math.abs((counts[i] as number) / n - w / 10) < 0.005, `index ${i}: ${counts[i]}`);
});

test("Zipf popularity: the top rank dominates the tail as 1/rank^s says", () => {
  const rng = new Rng(3);
  const table = new AliasTable(zipfWeights(1000, 1.1));
  const counts = new Array(1000).fill(0);
  for (let i = 0; i < 300_000; i++) counts[table.sample(rng)]++;
  const ratio = counts[0] / counts[9];
  assert.ok(Math.abs(ratio - 10 ** 1.1) / 10 ** 1.1 < 0.15, `rank1/rank10 = ${ratio}`);
});

test("log-normal draws have the requested median; exponential the requested mean", () => {
  const rng = new Rng(5);
  const xs = Array.from({ length: 50_001 }, () => rng.logNormal(20, 0.8)).sort((a, b) => a - b);
  assert.ok(Math.abs((xs[25_000] as number) - 20) < 1, `median ${xs[25_000]}`);
  let sum = 0;
  for (let i = 0; i < 50_000; i++) sum += rng.exponential(4);
  assert.ok(Math.abs(sum / 50_000 - 0.25) < 0.01, `mean ${sum / 50_000}`);
});
