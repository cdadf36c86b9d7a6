// Allowed lateness: closed windows kept for corrections (window-aggregate.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { type Ev, evSerde, fmt, testApp, windowedSerde } from "../testing/fixtures.ts";
import { TopologyTestDriver } from "../testing/test-driver.ts";
import type { Rec } from "../types.ts";
import { Windows } from "./spec.ts";
import type { Windowed } from "./window.ts";

function sumApp(lateness: string | number, maxClosed?: number, early = false) {
  const app = testApp();
  const w = app.stream<undefined, Ev>("in", { serde: evSerde }).window(
    Windows.tumbling("1s")
      .grace("500ms")
      .allowedLateness(lateness, maxClosed ? { maxClosed } : {}),
  );
  (early ? w.emitEarly(0) : w)
    .aggregate<number>({ init: () => 0, add: (a, e) => a + (e.n ?? 1) }, { name: "sums" })
    .to("out", { serde: windowedSerde<number>() });
  return app;
}

function results(d: TopologyTestDriver): string[] {
  return d.output("out", (b) => windowedSerde<number>().decode(b)).map(fmt);
}

const ev = (ts: number, n = 1, user = "a"): [string, Ev, { key: string }] => ["in", { ts, user, n }, { key: user }];

test("a late record within the allowed lateness corrects its closed window at the next checkpoint: the result again, with the delta", () => {
  const d = new TopologyTestDriver(sumApp("1m"));
  d.pipe(...ev(100, 1));
  d.pipe(...ev(900, 2));
  d.pipe(...ev(2_000, 4)); // watermark 1999: [0,1000) closed at 1499
  assert.deepEqual(results(d), ["a@0..1000=3"]);
  d.pipe(...ev(500, 10));
  d.pipe(...ev(700, 20));
  assert.deepEqual(results(d), ["a@0..1000=3"], "held until the checkpoint");
  assert.equal(d.deadLetters.length, 0);
  d.checkpoint();
  assert.deepEqual(results(d), ["a@0..1000=3", "a@0..1000=33!1 +30"], "one correction for both late records");
  d.pipe(...ev(999, 100));
  d.checkpoint();
  d.checkpoint();
  assert.deepEqual(results(d).slice(2), ["a@0..1000=133!2 +100"]);
  const task = d.allTasks()[0];
  assert.deepEqual(task?.corrections(), { records: 3, emitted: 2, kept: 1, evicted: 0 });
  assert.equal(task?.counters.late, 0);
  assert.equal(task?.openWindows(), 1, "the open window [2000,3000); the kept one is not open");
});

test("a window that only late records make: its first result is a correction whose delta is the whole window", () => {
  const d = new TopologyTestDriver(sumApp("1m"));
  d.pipe(...ev(5_000, 1));
  d.pipe(...ev(1_500, 7, "b"));
  d.checkpoint();
  assert.deepEqual(results(d), ["b@1000..2000=7!1 +7"]);
});

test("beyond the allowed lateness a record is late (DLQ, counted), and the window's state is gone", () => {
  const d = new TopologyTestDriver(sumApp("10s"));
  d.pipe(...ev(100, 1));
  d.pipe(...ev(11_498, 1)); // watermark 11497: [0,1000) kept until 999 + 500 + 10000 = 11499
  d.pipe(...ev(200, 1));
  d.checkpoint();
  assert.deepEqual(results(d), ["a@0..1000=1", "a@0..1000=2!1 +1"]);
  d.pipe(...ev(11_501, 1)); // watermark 11500: dropped
  d.pipe(...ev(300, 1));
  d.checkpoint();
  assert.equal(results(d).length, 2);
  assert.deepEqual(
    d.deadLetters.map((x) => x.reason),
    ["late-event"],
  );
  assert.equal(d.allTasks()[0]?.counters.late, 1);
  assert.equal(d.allTasks()[0]?.store("sums").has("0|a"), false);
});

test("without allowed lateness nothing is kept after the final result (as before)", () => {
  const d = new TopologyTestDriver(sumApp(0));
  for (let i = 0; i < 20; i++) d.pipe(...ev(i * 1000 + 1, 1, `u${i % 3}`));
  d.pipe(...ev(100, 1));
  d.checkpoint();
  assert.equal(d.allTasks()[0]?.store("sums").size, 2, "the two windows still within grace");
  assert.equal(d.allTasks()[0]?.openWindows(), 2);
  assert.equal(d.deadLetters.length, 1);
});

test("maxClosed bounds the kept windows: the oldest go first, counted, and windows up to them take no corrections", () => {
  const d = new TopologyTestDriver(sumApp("1h", 3));
  for (let i = 0; i < 6; i++) d.pipe(...ev(i * 1000 + 100, 1));
  d.pipe(...ev(7_000, 1)); // closes [0,1000) ... [5000,6000): 6 closed windows, 3 kept
  const task = d.allTasks()[0];
  assert.deepEqual(task?.corrections(), { records: 0, emitted: 0, kept: 3, evicted: 3 });
  d.pipe(...ev(2_500, 1, "b")); // [2000,3000) was dropped for room: late, even for another key
  d.pipe(...ev(3_500, 5)); // [3000,4000) is kept: corrected
  d.checkpoint();
  assert.deepEqual(results(d).slice(6), ["a@3000..4000=6!1 +5"]);
  assert.deepEqual(
    d.deadLetters.map((x) => x.reason),
    ["late-event"],
  );
  // The bound survives a crash: the restored task knows which windows were dropped.
  d.crash();
  d.pipe(...ev(1_500, 1, "c"));
  d.pipe(...ev(4_500, 1, "c"));
  d.checkpoint();
  assert.equal(d.deadLetters.length, 2, "1500 is still refused after the restore");
  assert.ok(results(d).includes("c@4000..5000=1!1 +1"));
});

test("emitEarly: a closed window gets no more early results, only corrections", () => {
  const d = new TopologyTestDriver(sumApp("1m", undefined, true));
  d.pipe(...ev(100, 1));
  d.pipe(...ev(1_600, 1));
  d.pipe(...ev(200, 2));
  d.checkpoint();
  assert.deepEqual(results(d), ["a@0..1000=1~", "a@1000..2000=1~", "a@0..1000=1", "a@0..1000=3!1 +2"]);
});

test("hopping: a late record corrects the closed windows it belongs to and counts in the open ones", () => {
  const app = testApp();
  app
    .stream<undefined, Ev>("in", { serde: evSerde })
    .window(Windows.hopping("2s", "1s").allowedLateness("1m"))
    .count({ name: "c" })
    .to("out", { serde: windowedSerde<number>() });
  const d = new TopologyTestDriver(app);
  d.pipe(...ev(1_500));
  d.pipe(...ev(2_500));
  assert.deepEqual(results(d), ["a@0..2000=1"]);
  d.pipe(...ev(1_200));
  d.checkpoint();
  d.pipe(...ev(10_000));
  assert.deepEqual(results(d), ["a@0..2000=1", "a@0..2000=2!1 +1", "a@1000..3000=3", "a@2000..4000=1"]);
});

test("sliding and session windows refuse allowedLateness", () => {
  for (const w of [Windows.sliding("1s"), Windows.session("1s")]) {
    assert.throws(
      () =>
        testApp()
          .stream<undefined, Ev>("in", { serde: evSerde })
          .window(w.allowedLateness("1m"))
          .aggregate(
            { init: () => 0, add: (n: number) => n + 1, merge: (a: number, b: number) => a + b },
            { name: "x" },
          ),
      /allowedLateness is for tumbling and hopping windows/,
    );
  }
  assert.throws(() => Windows.tumbling(1000).allowedLateness("1m", { maxClosed: 0 }), /maxClosed/);
});

/** Tiny deterministic generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test("by brute force: with disorder, late records, checkpoints and crashes, every window's latest result and the roll-up of the increments equal the batch count of what was not refused", () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const app = testApp();
    const seconds = app
      .stream<undefined, Ev>("in", { serde: evSerde, outOfOrderness: 200 })
      .window(
        Windows.tumbling("1s")
          .grace("300ms")
          .allowedLateness("8s", { maxClosed: seed === 5 ? 12 : 100_000 }),
      )
      .count({ name: "seconds" });
    seconds.to("out", { serde: windowedSerde<number>() });
    // A roll-up to 5 s of the increments: final results on time, and the deltas of corrections.
    seconds
      .flatMap((w) => (!w.final ? [] : [w.correction ? (w.delta as number) : w.value]))
      .window(Windows.tumbling("5s").grace("300ms").allowedLateness("8s"))
      .aggregate<number>({ init: () => 0, add: (a, n) => a + n }, { name: "fives" })
      .to("fives", { serde: windowedSerde<number>() });
    const d = new TopologyTestDriver(app);
    const r = rng(seed);
    const piped: Array<{ ts: number; user: string; offset: number }> = [];
    let t = 0;
    for (let i = 0; i < 2_000; i++) {
      t += Math.floor(r() * 30);
      // Most on time, some a little out of order, some far behind (late or beyond the lateness).
      const x = r();
      const ts =
        x < 0.8 ? t : x < 0.95 ? Math.max(0, t - Math.floor(r() * 2_000)) : Math.max(0, t - Math.floor(r() * 12_000));
      const user = `u${Math.floor(r() * 3)}`;
      d.pipe("in", { ts, user }, { key: user });
      piped.push({ ts, user, offset: i });
      if (r() < 0.02) d.checkpoint();
      if (r() < 0.003) d.crash();
    }
    d.checkpoint();
    d.pipe("in", { ts: t + 60_000, user: "end" }, { key: "end" });
    d.checkpoint();
    const refused = new Set(d.deadLetters.map((x) => Number(x.offset)));
    const truth = new Map<string, number>();
    const truth5 = new Map<string, number>();
    for (const p of piped) {
      if (refused.has(p.offset)) continue;
      const k = `${p.user}@${p.ts - (p.ts % 1000)}`;
      truth.set(k, (truth.get(k) ?? 0) + 1);
      const k5 = `${p.user}@${p.ts - (p.ts % 5000)}`;
      truth5.set(k5, (truth5.get(k5) ?? 0) + 1);
    }
    const latest = (topic: string) => {
      const m = new Map<string, Windowed<number>>();
      for (const o of d.output(topic, (b) => windowedSerde<number>().decode(b)) as Array<Rec<Windowed<number>>>) {
        if (!o.value.final || o.key === "end") continue;
        m.set(`${o.key}@${o.value.start}`, o.value);
      }
      return new Map([...m].map(([k, v]) => [k, v.value]));
    };
    assert.deepEqual(latest("out"), truth, `seed ${seed}: 1 s windows`);
    assert.deepEqual(latest("fives"), truth5, `seed ${seed}: 5 s roll-up of the increments`);
    const c = d.allTasks()[0]?.corrections();
    assert.ok((c?.records ?? 0) > 0, `seed ${seed}: some records were corrections`);
    assert.ok(refused.size > 0, `seed ${seed}: some were beyond the lateness`);
    if (seed === 5) assert.ok((c?.evicted ?? 0) > 0, "seed 5 keeps 12 closed windows: some dropped for room");
  }
});
