import assert from "node:assert/strict";
import { test } from "node:test";
import { codecFor } from "../../schemas/codec.ts";
import { SAMPLES } from "../../schemas/testdata/samples.ts";
import { StreamApp } from "../dsl/app.ts";
import { type Ev, evSerde, fmt, testApp, windowedSerde } from "../testing/fixtures.ts";
import { CollectingSink, TopologyTestDriver } from "../testing/test-driver.ts";
import { json } from "../types.ts";
import { Windows } from "../windows/spec.ts";

test("a record that fails to decode goes to the DLQ with its reason, offset and bytes; the next one is processed", () => {
  const app = new StreamApp({ appId: "t" });
  const sink = new CollectingSink();
  app.stream("logs.access").to(sink);
  const d = new TopologyTestDriver(app, { partitions: 6 });
  const good = SAMPLES.AccessLog;
  d.pipe("logs.access", good, { key: "k", partition: 2 });
  d.pipeRaw("logs.access", Buffer.from('{"not":"avro"}'), { key: "k", partition: 2 });
  const corrupt = codecFor("AccessLog").encode(good).subarray(0, 20);
  d.pipeRaw("logs.access", corrupt, { key: "k", partition: 2 });
  d.pipe("logs.access", { ...good, id: "after" }, { key: "k", partition: 2 });
  assert.deepEqual(
    sink.records.map((r) => (r.value as { id: string }).id),
    [good.id, "after"],
  );
  assert.deepEqual(
    d.deadLetters.map((x) => [x.reason, x.topic, x.partition, x.offset, x.schema]),
    [
      ["not-single-object", "logs.access", 2, "1", "AccessLog"],
      ["truncated", "logs.access", 2, "2", "AccessLog"],
    ],
  );
  assert.deepEqual(d.deadLetters[0]?.raw, Buffer.from('{"not":"avro"}'));
});

test("an exception in user code dead-letters the record (user-code-error) and processing goes on", () => {
  const app = testApp();
  const sink = new CollectingSink<number>();
  app
    .stream<undefined, Ev>("in", { serde: evSerde })
    .map((v) => {
      if (v.user === "bad") throw new Error("boom");
      return v.ts;
    })
    .to(sink);
  const d = new TopologyTestDriver(app);
  d.pipe("in", { ts: 1, user: "ok" });
  d.pipe("in", { ts: 2, user: "bad" });
  d.pipe("in", { ts: 3, user: "ok" });
  assert.deepEqual(
    sink.records.map((r) => r.value),
    [1, 3],
  );
  assert.equal(d.deadLetters[0]?.reason, "user-code-error");
  assert.match(d.deadLetters[0]?.message ?? "", /boom/);
});

test("onError skip counts instead of dead-lettering; fail stops with the record's position", () => {
  for (const policy of ["skip", "fail"] as const) {
    const app = testApp("t", policy);
    app.stream<undefined, Ev>("in", { serde: evSerde }).to(new CollectingSink());
    const d = new TopologyTestDriver(app);
    if (policy === "skip") {
      d.pipeRaw("in", Buffer.from("{"));
      assert.equal(d.deadLetters.length, 0);
      assert.equal(d.allTasks()[0]?.counters.skipped, 1);
    } else {
      assert.throws(() => d.pipeRaw("in", Buffer.from("{")), /at in\[0\]@0/);
    }
  }
});

test("idle partitions: a silent partition holds the watermark back until its idle timeout", () => {
  const app = testApp();
  app
    .stream<undefined, Ev>("in", { serde: evSerde, idleTimeout: "5s" })
    .keyBy((v) => v.user, "user")
    .window(Windows.tumbling(1000))
    .count({ name: "c" })
    .to("out", { serde: windowedSerde<number>() });
  const d = new TopologyTestDriver(app, { partitions: 2 });
  // Both partitions write to the repartition topic; only partition 0 keeps going.
  d.pipe("in", { ts: 100, user: "a" }, { partition: 0 });
  d.pipe("in", { ts: 150, user: "a" }, { partition: 1 });
  for (let ts = 1000; ts <= 5000; ts += 1000) d.pipe("in", { ts, user: "a" }, { partition: 0 });
  const res = () => d.output("out", (b) => windowedSerde<number>().decode(b)).map(fmt);
  assert.deepEqual(res(), [], "partition 1's upstream task has announced only 149");
  d.advanceWallClock(5000);
  d.pipe("in", { ts: 6000, user: "a" }, { partition: 0 });
  assert.deepEqual(res().slice(0, 2), ["a@0..1000=2", "a@1000..2000=1"]);
});

test("repartition: every record of a key reaches one task, and windows close on announced watermarks", () => {
  const app = testApp();
  app
    .stream<undefined, Ev>("in", { serde: evSerde })
    .keyBy((v) => v.user, "user")
    .window(Windows.tumbling(1000))
    .count({ name: "c" })
    .to("out", { serde: windowedSerde<number>() });
  const d = new TopologyTestDriver(app, { partitions: 3 });
  let n = 0;
  for (let ts = 0; ts < 10_000; ts += 10) {
    for (let p = 0; p < 3; p++) d.pipe("in", { ts, user: `u${n++ % 7}` }, { partition: p });
  }
  const finals = d.output("out", (b) => windowedSerde<number>().decode(b));
  const total = finals.reduce((s, r) => s + (r.value.value as number), 0);
  assert.equal(total, 9 * 300, "windows [0,9000) are closed: 9 s x 300 records");
  const perWindowKey = new Set(finals.map((r) => `${r.key}@${r.value.start}`));
  assert.equal(perWindowKey.size, finals.length, "one final per key and window");
});

test("crash after a checkpoint: restore from the changelog and replay give the same finals as an uninterrupted run", () => {
  const build = () => {
    const app = testApp();
    app
      .stream<undefined, Ev>("in", { serde: evSerde })
      .keyBy((v) => v.user, "user")
      .window(Windows.tumbling(1000).grace(200))
      .aggregate(
        { init: () => ({ n: 0, sum: 0 }), add: (a, v) => ({ n: a.n + 1, sum: a.sum + (v.n ?? 0) }) },
        { name: "agg" },
      )
      .to("out", { serde: json() });
    return new TopologyTestDriver(app, { partitions: 2 });
  };
  const input: Array<[Ev, number]> = [];
  for (let i = 0; i < 3000; i++) input.push([{ ts: i * 7 + ((i * 31) % 150), user: `u${i % 11}`, n: i }, i % 2]);
  const finals = (d: TopologyTestDriver) => {
    const m = new Map<string, string>();
    for (const r of d.output("out", (b) => json<{ start: number; value: unknown; final: boolean }>().decode(b))) {
      if (r.value.final) m.set(`${r.key}@${r.value.start}`, JSON.stringify(r.value.value));
    }
    return m;
  };
  const clean = build();
  for (const [ev, p] of input) clean.pipe("in", ev, { partition: p });
  const crashed = build();
  input.forEach(([ev, p], i) => {
    crashed.pipe("in", ev, { partition: p });
    if (i % 500 === 499) crashed.checkpoint();
    if (i === 1234 || i === 2222) crashed.crash();
  });
  const a = finals(clean);
  const b = finals(crashed);
  assert.ok(a.size > 100);
  assert.deepEqual([...b.entries()].sort(), [...a.entries()].sort());
  assert.equal(crashed.deadLetters.length, clean.deadLetters.length, "lateness decided alike after restore");
});

test("process(): a custom stateful step with TTL and a bound on entries", () => {
  const app = testApp();
  const sink = new CollectingSink<string>();
  app
    .stream<undefined, Ev>("in", { serde: evSerde })
    .keyBy((v) => v.user, "user")
    .process<string>(
      "first-seen",
      (rec, ctx) => {
        const key = rec.key as string;
        if (ctx.store.get(key) === undefined) ctx.forward({ key, value: `new:${key}`, ts: rec.ts });
        ctx.store.put(key, rec.ts, rec.ts);
      },
      { ttl: 10_000, maxEntries: 3 },
    )
    .to(sink);
  const d = new TopologyTestDriver(app);
  for (const [ts, u] of [
    [0, "a"],
    [1, "a"],
    [2, "b"],
    [3, "c"],
    [4, "d"], // evicts a (bound 3)
    [5, "a"],
    [20_000, "b"], // b expired by TTL
  ] as const)
    d.pipe("in", { ts, user: u });
  assert.deepEqual(
    sink.records.map((r) => r.value),
    ["new:a", "new:b", "new:c", "new:d", "new:a", "new:b"],
  );
  const task = d.allTasks().find((t) => t.stores.has("first-seen"));
  assert.ok((task?.store("first-seen").evictions ?? 0) >= 1);
  assert.ok((task?.store("first-seen").expirations ?? 0) >= 1);
});

test("an event far in the future goes to the DLQ (future-timestamp) instead of dragging the watermark ahead", () => {
  const app = testApp();
  app
    .stream<undefined, Ev>("in", { serde: evSerde })
    .window(Windows.tumbling("1s"))
    .count({ name: "counts" })
    .to("out", { serde: windowedSerde<number>() });
  const now = Date.UTC(2026, 10, 21, 9, 0, 0);
  const d = new TopologyTestDriver(app, { wallClock: now, maxEventTimeAhead: 3_600_000 });
  d.pipe("in", { ts: now, user: "a" }, { key: "a" });
  d.pipe("in", { ts: now + 86_400_000, user: "a" }, { key: "a" }); // a device with its clock a day ahead
  d.pipe("in", { ts: now + 500, user: "a" }, { key: "a" });
  d.pipe("in", { ts: now + 2500, user: "a" }, { key: "a" });
  assert.deepEqual(
    d.deadLetters.map((l) => l.reason),
    ["future-timestamp"],
  );
  assert.deepEqual(d.output("out", (b) => windowedSerde<number>().decode(b)).map(fmt), [`a@${now}..${now + 1000}=2`]);
});

test("per-source watermarks: a source read ahead of another on the same partition does not make the other's records late", () => {
  // The backlog in miniature: room's file read 20 s ahead of im's, both on one partition.
  const run = (headers: boolean) => {
    const app = testApp();
    app
      .stream<undefined, Ev>("in", { serde: evSerde, outOfOrderness: 1000 })
      .window(Windows.tumbling("1s"))
      .count({ name: "c" })
      .to("out", { serde: windowedSerde<number>() });
    const d = new TopologyTestDriver(app);
    const send = (source: string, ts: number) =>
      d.pipe("in", { ts, user: source }, { key: "k", ...(headers ? { headers: { "weir-source": source } } : {}) });
    // Both files from their start, room's read twice as fast: it runs up to 30 s ahead of im's.
    for (let t = 0; t < 60_000; t += 100) {
      if (t < 30_000) {
        send("host-1:/var/log/room-svc/access.log", 2 * t);
        send("host-1:/var/log/room-svc/access.log", 2 * t + 100);
      }
      send("host-1:/var/log/im-svc/access.log", t);
    }
    return d;
  };
  const withSources = run(true);
  assert.equal(withSources.deadLetters.length, 0, "every record on time");
  const counted = withSources
    .output("out", (b) => windowedSerde<number>().decode(b))
    .reduce((n, r) => n + (r.value as { value: number }).value, 0);
  assert.equal(counted, 1200 - 40, "every record counted but the last two seconds', still open");
  const late = run(false).deadLetters.length;
  assert.ok(late > 500, `without a source, one partition watermark: ${late} of im's 600 records late`);
  const views = withSources.allTasks()[0]?.tracker.sources() ?? [];
  assert.deepEqual(
    views.map((v) => [v.source, v.records, v.behind]),
    [
      ["host-1:/var/log/room-svc/access.log", 600, 0],
      ["host-1:/var/log/im-svc/access.log", 600, 0],
    ],
  );
});

test("sourceOf picks a record's source from its value or headers; long names are kept as their SHA-256", () => {
  const app = testApp();
  app
    .stream<undefined, Ev>("in", { serde: evSerde, sourceOf: (v, header) => header("x-host") ?? v.user })
    .to("out", { serde: evSerde });
  const d = new TopologyTestDriver(app);
  d.pipe("in", { ts: 1, user: "from-value" });
  d.pipe("in", { ts: 2, user: "x" }, { headers: { "x-host": "from-header" } });
  d.pipe("in", { ts: 3, user: "y".repeat(500) });
  const names = d
    .allTasks()[0]
    ?.tracker.sources()
    .map((s) => s.source);
  assert.deepEqual(names?.slice(0, 2), ["from-value", "from-header"]);
  assert.match(names?.[2] ?? "", /^sha256:[0-9a-f]{64}$/);
});

test("a task taken over with a backlog it has not fetched yet is not idle: its upstream holds the downstream watermark (the exactly-once SIGKILL test's late-event flake)", () => {
  // The integration test's topology: keyed by user, re-keyed by group through a repartition topic,
  // 1 s sums. A worker takes over the task of partition 1, whose backlog its first fetch brings only
  // after the idle timeout (a loaded machine, other tasks restoring first). Before, the new task's
  // channel counted as caught up until a fetch said otherwise, so it announced itself idle, the
  // downstream task's watermark went on with partition 0 alone, and the backlog came late.
  const app = testApp();
  app
    .stream<undefined, Ev>("in", { serde: evSerde, idleTimeout: "3s" })
    .keyBy((e) => `g${(e.n ?? 0) % 3}`, "group")
    .window(Windows.tumbling("1s").grace("200ms"))
    .aggregate<number>({ init: () => 0, add: (a) => a + 1 }, { name: "sums" })
    .to("out", { serde: windowedSerde<number>() });
  const d = new TopologyTestDriver(app, { partitions: 2, wallClock: 1_000_000 });
  let n = 0;
  const send = (partition: number, from: number, to: number, hold = false) => {
    for (let ts = from; ts < to; ts += 50) d.pipe("in", { ts, user: `u${partition}`, n: n++ }, { partition, hold });
  };
  send(0, 0, 5_000);
  send(1, 0, 5_000);
  d.checkpoint();
  send(1, 5_000, 10_000, true); // written by the producer, not fetched by the new owner yet
  d.crash();
  for (let t = 5_000; t < 15_000; t += 1_000) {
    send(0, t, t + 1_000);
    d.advanceWallClock(1_000);
  }
  d.deliverHeld();
  assert.deepEqual(d.deadLetters.map((x) => x.message).slice(0, 2), [], "no record of the backlog is late");
  const sums = new Map<string, number>();
  for (const r of d.output("out", (b) => windowedSerde<number>().decode(b))) {
    if (r.value.final) sums.set(`${r.key}@${r.value.start}`, r.value.value);
  }
  // Partition 1's newest record (9950) holds the downstream watermark: the windows before 9 s are closed.
  let total = 0;
  for (const [k, v] of sums) if (Number(k.split("@")[1]) < 9_000) total += v;
  assert.equal(total, 2 * 180, "every record of both partitions before 9 s counted once");
});
