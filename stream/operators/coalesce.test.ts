import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { testApp } from "../testing/fixtures.ts";
import { CollectingSink, TopologyTestDriver } from "../testing/test-driver.ts";
import { json, type Rec, TopologyError } from "../types.ts";
import type { CoalescedDelta } from "./coalesce.ts";

interface Gift {
  ts: number;
  streamer: string;
  coins: number;
}

function build(period = 1000, grace = 200) {
  const app = testApp("gifts");
  const sink = new CollectingSink<CoalescedDelta>();
  app
    .stream<undefined, Gift>("gifts", { serde: json() })
    .coalesce((g) => g.coins, { name: "coins", period, grace })
    .to(sink);
  return { app, sink };
}

/** The store's rule (sinks/redis/counters.ts): a writer's delta counts once, if its end is past the last applied. */
function apply(records: Array<Rec<CoalescedDelta>>): Map<string, number> {
  const totals = new Map<string, number>();
  const applied = new Map<string, number>();
  for (const { value: d } of records) {
    const marker = `${d.key}|${d.writer}`;
    if ((applied.get(marker) ?? Number.NEGATIVE_INFINITY) >= d.end) continue;
    applied.set(marker, d.end);
    totals.set(d.key, (totals.get(d.key) ?? 0) + d.delta);
  }
  return totals;
}

test("coalesce: one delta per key and period, emitted when the newest record passes the period and its grace", () => {
  const { app, sink } = build(1000, 200);
  const d = new TopologyTestDriver(app);
  const pipe = (ts: number, streamer: string, coins: number) =>
    d.pipe("gifts", { ts, streamer, coins }, { key: streamer });
  pipe(100, "a", 1);
  pipe(500, "a", 2);
  pipe(700, "b", 5);
  pipe(1100, "a", -1); // next period; period 0 still in its grace
  assert.equal(sink.records.length, 0);
  pipe(1250, "b", 1); // newest 1250 - grace 200 >= 1000: period 0 closes
  assert.deepEqual(
    sink.records.map((r) => [r.key, r.value.delta, r.value.start, r.value.end, r.value.writer]),
    [
      ["a", 3, 0, 1000, "coins/0"],
      ["b", 5, 0, 1000, "coins/0"],
    ],
  );
  pipe(900, "a", 10); // late: period 0 is closed, it joins the oldest open period
  pipe(5000, "c", 0); // closes everything up to 4800
  assert.deepEqual(
    sink.records.slice(2).map((r) => [r.key, r.value.delta, r.value.start, r.value.end]),
    [
      ["a", 9, 1000, 2000],
      ["b", 1, 1000, 2000],
    ],
  );
});

test("coalesce: across checkpoints and crashes at any point, the deltas applied once per writer sum to every key's exact total", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          dt: fc.integer({ min: -1500, max: 400 }),
          key: fc.constantFrom("s1", "s2", "s3", "s4"),
          coins: fc.integer({ min: -3, max: 50 }),
          after: fc.constantFrom("none", "none", "none", "checkpoint", "crash"),
        }),
        { minLength: 1, maxLength: 300 },
      ),
      fc.integer({ min: 100, max: 2000 }),
      fc.integer({ min: 0, max: 1000 }),
      (steps, period, grace) => {
        const { app, sink } = build(period, grace);
        const d = new TopologyTestDriver(app, { partitions: 2 });
        const exact = new Map<string, number>();
        let t = 1_000_000;
        let newest = t;
        for (const s of steps) {
          t = Math.max(0, t + s.dt);
          newest = Math.max(newest, t);
          d.pipe("gifts", { ts: t, streamer: s.key, coins: s.coins }, { key: s.key, ts: t });
          exact.set(s.key, (exact.get(s.key) ?? 0) + s.coins);
          if (s.after === "checkpoint") d.checkpoint();
          if (s.after === "crash") d.crash();
        }
        // A record far ahead on each partition closes every period left open.
        for (let p = 0; p < 2; p++) {
          d.pipe(
            "gifts",
            { ts: newest + 10 * (period + grace), streamer: "end", coins: 0 },
            { key: `end${p}`, partition: p },
          );
        }
        const totals = apply(sink.records);
        for (const [key, n] of exact) assert.equal(totals.get(key) ?? 0, n, `${key}`);
        // Deltas are the point: never more writes than records.
        assert.ok(sink.records.length <= steps.length * 2);
      },
    ),
    { seed: 1818, numRuns: 300 },
  );
});

test("coalesce: state restored after a crash re-emits exactly the deltas emitted before it", () => {
  const { app, sink } = build(1000, 0);
  const d = new TopologyTestDriver(app);
  const pipe = (ts: number, k: string) => d.pipe("gifts", { ts, streamer: k, coins: 1 }, { key: k });
  pipe(100, "a");
  pipe(200, "b");
  d.checkpoint();
  pipe(1100, "a"); // closes period 0: a=1, b=1
  pipe(2100, "b"); // closes period 1: a=1
  const before = sink.records.map((r) => JSON.stringify(r.value));
  d.crash(); // replays 1100 and 2100 against the state of the checkpoint
  const after = sink.records.slice(before.length).map((r) => JSON.stringify(r.value));
  assert.deepEqual(after, before);
});

test("coalesce refuses a stream of two sources and a bad amount goes to the DLQ", () => {
  const app = testApp("two");
  const a = app.stream<undefined, Gift>("a", { serde: json() });
  const b = app.stream<undefined, Gift>("b", { serde: json() });
  assert.throws(
    () => a.merge(b).coalesce((g) => g.coins, { name: "c", period: "1s" }),
    (e: Error) => e instanceof TopologyError && /2 sources/.test(e.message),
  );
  const { app: ok } = build();
  const d = new TopologyTestDriver(ok);
  d.pipe("gifts", { ts: 1, streamer: "a", coins: 1.5 }, { key: "a" });
  d.pipe("gifts", { ts: 1, streamer: "a", coins: 1 }, { key: null });
  assert.deepEqual(
    d.deadLetters.map((x) => x.reason),
    ["user-code-error", "user-code-error"],
  );
});
