import assert from "node:assert/strict";
import { test } from "node:test";
import { type Ev, evSerde, fmt, testApp, windowedSerde } from "../testing/fixtures.ts";
import { TopologyTestDriver } from "../testing/test-driver.ts";
import { Windows } from "./spec.ts";

function countApp(
  def:
    | ReturnType<typeof Windows.tumbling>
    | ReturnType<typeof Windows.hopping>
    | ReturnType<typeof Windows.sliding>
    | ReturnType<typeof Windows.session>,
  early?: number,
) {
  const app = testApp();
  const w = app.stream<undefined, Ev>("in", { serde: evSerde }).window(def);
  (early === undefined ? w : w.emitEarly(early))
    .count({ name: "counts" })
    .to("out", { serde: windowedSerde<number>() });
  return app;
}

function results(d: TopologyTestDriver) {
  return d.output("out", (b) => windowedSerde<number>().decode(b)).map(fmt);
}

test("tumbling: one final result per key and window, when the watermark passes end + grace", () => {
  const d = new TopologyTestDriver(countApp(Windows.tumbling("1s").grace("500ms")));
  d.pipe("in", { ts: 100, user: "a" }, { key: "a" });
  d.pipe("in", { ts: 900, user: "a" }, { key: "a" });
  d.pipe("in", { ts: 950, user: "b" }, { key: "b" });
  d.pipe("in", { ts: 1200, user: "a" }, { key: "a" });
  assert.deepEqual(results(d), [], "window [0,1000) is still within grace at watermark 1200");
  d.pipe("in", { ts: 1499, user: "a" }, { key: "a" });
  assert.deepEqual(results(d), []);
  d.pipe("in", { ts: 1500, user: "a" }, { key: "a" });
  assert.deepEqual(results(d), ["a@0..1000=2", "b@0..1000=1"]);
  d.pipe("in", { ts: 2600, user: "a" }, { key: "a" });
  assert.deepEqual(results(d).slice(2), ["a@1000..2000=3"]);
});

test("tumbling: a record for a closed window goes to the late side output (DLQ by default), counted", () => {
  const d = new TopologyTestDriver(countApp(Windows.tumbling("1s")));
  d.pipe("in", { ts: 500, user: "a" }, { key: "a" });
  d.pipe("in", { ts: 1000, user: "a" }, { key: "a" });
  d.pipe("in", { ts: 999, user: "a" }, { key: "a" });
  assert.deepEqual(results(d), ["a@0..1000=1"]);
  assert.equal(d.deadLetters.length, 1);
  assert.equal(d.deadLetters[0]?.reason, "late-event");
  assert.equal(d.deadLetters[0]?.offset, "2");
  assert.equal(d.allTasks()[0]?.counters.late, 1);
});

test("late() routes late records to a topic of the user's choice instead of the DLQ", () => {
  const app = testApp();
  const counts = app
    .stream<undefined, Ev>("in", { serde: evSerde })
    .window(Windows.tumbling(1000))
    .count({ name: "c" });
  counts.to("out", { serde: windowedSerde<number>() });
  counts.late().to("late", { serde: evSerde });
  const d = new TopologyTestDriver(app);
  d.pipe("in", { ts: 1500, user: "a" }, { key: "a" });
  d.pipe("in", { ts: 10, user: "a" }, { key: "a" });
  assert.equal(d.output("late").length, 1);
  assert.equal(d.deadLetters.length, 0);
  assert.equal(d.allTasks()[0]?.counters.late, 1, "counted though routed (weir_stream_late_records_total)");
});

test("hopping: a record counts in size/advance windows", () => {
  const d = new TopologyTestDriver(countApp(Windows.hopping("10s", "5s")));
  d.pipe("in", { ts: 7000, user: "a" }, { key: "a" });
  d.pipe("in", { ts: 12000, user: "a" }, { key: "a" });
  d.pipe("in", { ts: 30000, user: "a" }, { key: "a" });
  assert.deepEqual(results(d), ["a@0..10000=1", "a@5000..15000=2", "a@10000..20000=1"]);
});

test("emitEarly(0): an update per record, then the final value", () => {
  const d = new TopologyTestDriver(countApp(Windows.tumbling(1000), 0));
  d.pipe("in", { ts: 1, user: "a" }, { key: "a" });
  d.pipe("in", { ts: 2, user: "a" }, { key: "a" });
  d.pipe("in", { ts: 1000, user: "a" }, { key: "a" });
  assert.deepEqual(results(d), ["a@0..1000=1~", "a@0..1000=2~", "a@1000..2000=1~", "a@0..1000=2"]);
});

test("emitEarly(every): updates only when stream time crosses a multiple of every, for changed windows", () => {
  const d = new TopologyTestDriver(countApp(Windows.tumbling(10_000), 1000));
  for (const ts of [100, 200, 300, 1100, 1200, 2500]) d.pipe("in", { ts, user: "a" }, { key: "a" });
  assert.deepEqual(results(d), ["a@0..10000=1~", "a@0..10000=4~", "a@0..10000=6~"]);
});

test("sliding: the window ending at each record counts records in [t - size, t], final after grace", () => {
  const d = new TopologyTestDriver(countApp(Windows.sliding("10s")));
  for (const ts of [0, 4000, 9000, 10_000, 15_000]) d.pipe("in", { ts, user: "a" }, { key: "a" });
  d.pipe("in", { ts: 40_000, user: "b" }, { key: "b" });
  assert.deepEqual(results(d), [
    "a@-10000..1=1",
    "a@-6000..4001=2",
    "a@-1000..9001=3",
    "a@0..10001=4",
    "a@5000..15001=3",
  ]);
});

test("sliding: an out-of-order record counts in every open window it falls into", () => {
  const d = new TopologyTestDriver(countApp(Windows.sliding("10s").grace("5s")));
  d.pipe("in", { ts: 10_000, user: "a" }, { key: "a" });
  d.pipe("in", { ts: 12_000, user: "a" }, { key: "a" });
  d.pipe("in", { ts: 8_000, user: "a" }, { key: "a" }); // behind the watermark, within grace
  d.pipe("in", { ts: 5_000, user: "a" }, { key: "a" }); // more than grace behind: late
  d.pipe("in", { ts: 100_000, user: "z" }, { key: "z" });
  assert.deepEqual(results(d), ["a@-2000..8001=1", "a@0..10001=2", "a@2000..12001=3"]);
  assert.equal(d.deadLetters.length, 1);
});

test("sliding: state is dropped once no open window can need it", () => {
  const d = new TopologyTestDriver(countApp(Windows.sliding("1s")));
  for (let i = 0; i < 100; i++) d.pipe("in", { ts: i * 1000, user: "a" }, { key: "a" });
  const store = d.allTasks()[0]?.store("counts");
  assert.ok((store?.size ?? 0) <= 1);
  const buf = store?.get("a") as { records: unknown[] };
  assert.ok(buf.records.length <= 2, `kept ${buf.records.length} records`);
});

test("session: records closer than the gap merge; a bridging record merges two sessions", () => {
  const d = new TopologyTestDriver(countApp(Windows.session("5s").grace("10s")));
  d.pipe("in", { ts: 0, user: "a" }, { key: "a" });
  d.pipe("in", { ts: 3000, user: "a" }, { key: "a" });
  d.pipe("in", { ts: 11_000, user: "a" }, { key: "a" });
  d.pipe("in", { ts: 7000, user: "a" }, { key: "a" }); // bridges [0,3000] and [11000]
  d.pipe("in", { ts: 30_000, user: "a" }, { key: "a" });
  assert.deepEqual(results(d), ["a@0..11001=4"]);
  d.pipe("in", { ts: 44_999, user: "b" }, { key: "b" });
  assert.deepEqual(results(d), ["a@0..11001=4"], "closes at last + gap - 1 + grace = 44999, not before");
  d.pipe("in", { ts: 45_000, user: "b" }, { key: "b" });
  assert.deepEqual(results(d), ["a@0..11001=4", "a@30000..30001=1"]);
});

test("session windows require an aggregator with merge", () => {
  const app = testApp();
  assert.throws(
    () =>
      app
        .stream<undefined, Ev>("in", { serde: evSerde })
        .window(Windows.session(1000))
        .aggregate({ init: () => 0, add: (n: number) => n + 1 }, { name: "s" }),
    /needs merge/,
  );
});

test("window state expires: nothing is kept after the final result", () => {
  const d = new TopologyTestDriver(countApp(Windows.tumbling(1000)));
  for (let i = 0; i < 50; i++) d.pipe("in", { ts: i * 1000 + 1, user: `u${i % 5}` }, { key: `u${i % 5}` });
  const task = d.allTasks()[0];
  assert.equal(task?.store("counts").size, 1, "only the open window's entry remains");
  assert.equal(task?.openWindows(), 1);
});

test("chained windows: a roll-up of final results loses nothing when the watermark jumps", () => {
  const app = testApp();
  app
    .stream<undefined, Ev>("in", { serde: evSerde })
    .window(Windows.tumbling("1s"))
    .count({ name: "seconds" })
    .map((w) => w.value)
    .window(Windows.tumbling("10s"))
    .aggregate<number>({ init: () => 0, add: (a, n) => a + n }, { name: "tens" })
    .to("out", { serde: windowedSerde<number>() });
  const d = new TopologyTestDriver(app);
  for (let t = 0; t < 10_000; t += 250) d.pipe("in", { ts: t, user: "a" }, { key: "a" });
  // One record far ahead: the 1 s windows close and feed the 10 s window before it closes too.
  d.pipe("in", { ts: 60_000, user: "a" }, { key: "a" });
  assert.deepEqual(results(d), ["a@0..10000=40"]);
  assert.equal(d.allTasks()[0]?.counters.late, 0);
});
