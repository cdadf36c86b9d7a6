import assert from "node:assert/strict";
import { test } from "node:test";
import { Rng } from "./random.ts";
import { Schedule, TimingWheel } from "./timing.ts";

test("the wheel hands items out in time order, and only once their millisecond has passed", () => {
  const wheel = new TimingWheel<string, number>(1000, 1024);
  wheel.push(1005.9, "c", 3);
  wheel.push(1001.2, "a", 1);
  wheel.push(1005.1, "d", 4); // same ms as "c": after it, in push order
  wheel.push(1002, "b", 2);
  const out: string[] = [];
  wheel.drain(1005.5, (a) => out.push(a));
  assert.deepEqual(out, ["a", "b"]);
  wheel.drain(1006, (a, b) => out.push(`${a}${b}`));
  assert.deepEqual(out, ["a", "b", "c3", "d4"]);
});

test("the wheel reuses its buckets across laps; drainAll empties it", () => {
  const wheel = new TimingWheel<number, null>(0, 16);
  const out: number[] = [];
  for (let t = 0; t < 100; t += 3) {
    wheel.push(t + 10, t, null);
    wheel.drain(t, (a) => out.push(a));
  }
  wheel.drainAll((a) => out.push(a));
  assert.deepEqual(
    out,
    Array.from({ length: 34 }, (_, i) => i * 3),
  );
  assert.throws(() => new TimingWheel(0, 1000), /power of two/);
});

test("the schedule runs steps by time, ties in the order they were added", () => {
  const schedule = new Schedule();
  const rng = new Rng(9);
  const ran: string[] = [];
  const times = Array.from({ length: 200 }, () => rng.int(50));
  times.forEach((t, i) => {
    schedule.add(t, () => ran.push(`${t}:${i}`));
  });
  assert.equal(schedule.size, 200);
  while (schedule.size > 0) schedule.next()();
  const expected = times.map((t, i) => [t, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  assert.deepEqual(
    ran,
    expected.map(([t, i]) => `${t}:${i}`),
  );
  assert.equal(schedule.peek(), Number.POSITIVE_INFINITY);
});
