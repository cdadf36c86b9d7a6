import assert from "node:assert/strict";
import { test } from "node:test";
import { Rng } from "./random.ts";
import { RunIds, runTagOf } from "./run-ids.ts";

test("ids carry the run's tag and one counter across prefixes", () => {
  const ids = new RunIds("0a1b2c3d");
  assert.deepEqual([ids.next("q-"), ids.next("b-"), ids.next("q-")], ["q-0a1b2c3d-0", "b-0a1b2c3d-1", "q-0a1b2c3d-2"]);
  assert.equal(runTagOf(7, 1000), runTagOf(7, 1000));
  assert.notEqual(runTagOf(7, 1000), runTagOf(7, 1001));
  assert.match(runTagOf(7, 1000), /^[0-9a-f]{8}$/);
});

test("a trace id is the tag and the last 24 of 32 random hex digits: the rng moves as for a random id", () => {
  const a = new Rng(5);
  const b = new Rng(5);
  const trace = new RunIds("0a1b2c3d").trace(a);
  assert.equal(trace, `0a1b2c3d${b.hex(32).slice(8)}`);
  assert.equal(a.next(), b.next());
});
