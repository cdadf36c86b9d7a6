import assert from "node:assert/strict";
import { test } from "node:test";
import { TakenRecords } from "./taken-records.ts";

test("records are dropped in take order up to a seq, across the ring's growth and wrap-around", () => {
  const taken = new TakenRecords();
  let next = 1;
  let dropped = 0;
  // Take 700, commit 600, repeatedly: the ring wraps, then grows past 1024 with its head mid-array.
  for (let round = 0; round < 10; round++) {
    for (let k = 0; k < 700 + round * 100; k++, next++) taken.push(next, next * 10);
    const upto = next - 100;
    const n = taken.dropUpTo(upto);
    dropped += n;
    assert.equal(dropped, upto);
    assert.equal(taken.lastEnd, upto * 10);
    assert.equal(taken.count, next - 1 - upto);
  }
  assert.equal(taken.dropUpTo(0), 0, "nothing at or below an old seq is left");
  taken.clear();
  assert.equal(taken.count, 0);
  assert.equal(taken.dropUpTo(next), 0);
});
