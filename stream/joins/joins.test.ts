import assert from "node:assert/strict";
import { test } from "node:test";
import { type Ev, evSerde, testApp } from "../testing/fixtures.ts";
import { TopologyTestDriver } from "../testing/test-driver.ts";
import { json, TopologyError } from "../types.ts";

const out = json<string>();

function joinApp(type: "inner" | "left") {
  const app = testApp();
  const clicks = app.stream<undefined, Ev>("clicks", { serde: evSerde, key: "user" });
  const views = app.stream<undefined, Ev>("views", { serde: evSerde, key: "user" });
  const joined =
    type === "inner"
      ? clicks.join(views, (c, v) => `${c.ts}+${v.ts}`, { within: "5s", name: "cv" })
      : clicks.leftJoin(views, (c, v) => `${c.ts}+${v?.ts ?? "null"}`, { within: "5s", name: "cv" });
  joined.to("out", { serde: out });
  return app;
}

function values(d: TopologyTestDriver) {
  return d.output("out", (b) => out.decode(b)).map((r) => `${r.key}:${r.value}@${r.ts}`);
}

test("stream-stream inner join: matches within the window on either side, timestamp is the later one", () => {
  const d = new TopologyTestDriver(joinApp("inner"));
  d.pipe("views", { ts: 1000, user: "a" }, { key: "a" });
  d.pipe("clicks", { ts: 3000, user: "a" }, { key: "a" });
  d.pipe("clicks", { ts: 7000, user: "a" }, { key: "a" }); // 6 s after the view: no match
  d.pipe("views", { ts: 8000, user: "a" }, { key: "a" }); // matches both clicks (5 s and 1 s away)
  d.pipe("views", { ts: 8000, user: "b" }, { key: "b" }); // other key
  assert.deepEqual(values(d), ["a:3000+1000@3000", "a:3000+8000@8000", "a:7000+8000@8000"]);
});

test("left join: an unmatched left record is emitted with null once its window closes, never early", () => {
  const d = new TopologyTestDriver(joinApp("left"));
  d.pipe("clicks", { ts: 1000, user: "a" }, { key: "a" });
  d.pipe("views", { ts: 4000, user: "a" }, { key: "a" });
  d.pipe("clicks", { ts: 20_000, user: "b" }, { key: "b" });
  assert.deepEqual(values(d), ["a:1000+4000@4000"]);
  d.pipe("views", { ts: 26_000, user: "c" }, { key: "c" });
  assert.deepEqual(values(d), ["a:1000+4000@4000"], "the clicks partition still holds the watermark at 19999");
  d.pipe("clicks", { ts: 26_000, user: "c" }, { key: "c" });
  assert.deepEqual(values(d), ["a:1000+4000@4000", "c:26000+26000@26000", "b:20000+null@20000"]);
});

test("join buffers are dropped after within + grace, once the silent side is idle", () => {
  const d = new TopologyTestDriver(joinApp("inner"));
  d.advanceWallClock(11_000); // views has been silent past its idle timeout
  for (let i = 0; i < 100; i++) d.pipe("clicks", { ts: i * 1000, user: "a" }, { key: "a" });
  const buf = d.allTasks()[0]?.store("cv").get("La") as { records: unknown[] };
  assert.ok(buf.records.length <= 6, `kept ${buf.records.length}`);
});

test("joining streams keyed by different fields is refused at build time", () => {
  const app = testApp();
  const a = app.stream<undefined, Ev>("a", { serde: evSerde, key: "user" });
  const b = app.stream<undefined, Ev>("b", { serde: evSerde, key: "device" });
  assert.throws(() => a.join(b, () => 1, { within: 1000, name: "j" }), TopologyError);
  assert.throws(() => a.join(b, () => 1, { within: 1000, name: "j2" }), /keyed by user and the right by device/);
});

test("a re-keyed stream is repartitioned before a join, so both sides meet in one task", () => {
  const app = testApp();
  const a = app.stream<undefined, Ev>("a", { serde: evSerde, key: "user" });
  const b = app.stream<undefined, Ev & { owner: string }>("b", { serde: json(), key: "device" });
  a.join(
    b.keyBy((v) => v.owner, "user"),
    (x, y) => `${x.user}/${y.user}`,
    { within: 1000, name: "j" },
  ).to("out", { serde: out });
  const d = new TopologyTestDriver(app, { partitions: 4 });
  assert.equal(d.topology.subtopologies.length, 2);
  d.pipe("a", { ts: 100, user: "u7" }, { key: "u7" });
  d.pipe("b", { ts: 200, user: "d1", owner: "u7" }, { key: "d1" });
  assert.deepEqual(values(d), ["u7:u7/d1@200"]);
});

test("stream-table join: looks up the latest row; inner drops, left keeps records without a row", () => {
  const app = testApp();
  const accounts = app.table<undefined, { age: number }>("accounts", { serde: json(), key: "user" });
  const s = app.stream<undefined, Ev>("events", { serde: evSerde, key: "user" });
  s.joinTable(accounts, (e, row) => `${e.user}:${row.age}`).to("inner", { serde: out });
  const app2Left = s.leftJoinTable(accounts, (e, row) => `${e.user}:${row?.age ?? "?"}`);
  app2Left.to("left", { serde: out });
  const d = new TopologyTestDriver(app, { partitions: 2 });
  d.pipe("accounts", { age: 3 }, { key: "u1" });
  d.pipe("events", { ts: 1, user: "u1" }, { key: "u1" });
  d.pipe("events", { ts: 2, user: "u2" }, { key: "u2" });
  d.pipe("accounts", { age: 4 }, { key: "u1" });
  d.pipe("events", { ts: 3, user: "u1" }, { key: "u1" });
  d.pipeRaw("accounts", null, { key: "u1" }); // tombstone
  d.pipe("events", { ts: 4, user: "u1" }, { key: "u1" });
  assert.deepEqual(
    d.output("inner", (b) => out.decode(b)).map((r) => r.value),
    ["u1:3", "u1:4"],
  );
  assert.deepEqual(
    d.output("left", (b) => out.decode(b)).map((r) => r.value),
    ["u1:3", "u2:?", "u1:4", "u1:?"],
  );
});

test("three streams join by chaining", () => {
  const app = testApp();
  const a = app.stream<undefined, Ev>("a", { serde: evSerde, key: "user" });
  const b = app.stream<undefined, Ev>("b", { serde: evSerde, key: "user" });
  const c = app.stream<undefined, Ev>("c", { serde: evSerde, key: "user" });
  a.join(b, (x, y) => ({ ts: Math.max(x.ts, y.ts), user: x.user, n: 2 }), { within: 1000, name: "ab" })
    .join(c, (xy, z) => `${xy.user}:${xy.n}+${z.ts}`, { within: 1000, name: "abc" })
    .to("out", { serde: out });
  const d = new TopologyTestDriver(app, { partitions: 3 });
  d.pipe("a", { ts: 100, user: "k" }, { key: "k" });
  d.pipe("b", { ts: 300, user: "k" }, { key: "k" });
  d.pipe("c", { ts: 900, user: "k" }, { key: "k" });
  assert.deepEqual(values(d), ["k:k:2+900@900"]);
});
