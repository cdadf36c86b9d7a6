import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { testApp } from "../testing/fixtures.ts";
import { CollectingSink, TopologyTestDriver } from "../testing/test-driver.ts";
import { json, TopologyError } from "../types.ts";
import type { TopKResult } from "./top-k.ts";

interface Visit {
  ts: number;
  room: number;
  path: string;
}

function build(options: { k?: number; windows?: string[] } = {}) {
  const app = testApp("hot");
  const sink = new CollectingSink<TopKResult>();
  app
    .stream<undefined, Visit>("visits", { serde: json() })
    .flatMap((v) => [
      { dimension: "room", key: v.room },
      { dimension: "path", key: v.path },
    ])
    .topK((item) => item, {
      name: "hot",
      windows: options.windows ?? ["3s", "10s"],
      k: options.k ?? 50,
      sketch: () => ({ width: 4096, seeds: { s1: 5, s2: 6 } }),
    })
    .to(sink);
  return { app, sink };
}

test("topK: every list published after the start equals an exact count of its window across partitions", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 2 })), {
        minLength: 300,
        maxLength: 600,
      }),
      (draws) => {
        const { app, sink } = build();
        const d = new TopologyTestDriver(app, { partitions: 3 });
        const all: Visit[] = [];
        // 3 partitions, each with a record every 100 ms, in time order: every task crosses every slide.
        draws.forEach(([room, pathN], i) => {
          const v = { ts: 10_000 + i * 50, room, path: `/p${pathN}` };
          all.push(v);
          for (let p = 0; p < 3; p++) d.pipe("visits", v, { partition: p, ts: v.ts });
        });
        const lists = sink.records.map((r) => r.value);
        assert.ok(lists.length > 0);
        const ends = new Set<string>();
        for (const l of lists) {
          // One list per dimension, window and slide.
          const id = `${l.dimension}/${l.window}/${l.end}`;
          assert.ok(!ends.has(id), `twice: ${id}`);
          ends.add(id);
          if (l.end < 12_000) continue; // the first slide after a start may miss tasks not heard of yet
          assert.equal(l.start, l.end - l.window);
          const exact = new Map<string, number>();
          for (const v of all) {
            if (v.ts < l.start || v.ts >= l.end) continue;
            const key = l.dimension === "room" ? String(v.room) : v.path;
            exact.set(key, (exact.get(key) ?? 0) + 3);
          }
          assert.equal(l.parts, 3, `${id} merged ${l.parts} tasks`);
          assert.equal(
            l.total,
            [...exact.values()].reduce((a, b) => a + b, 0),
          );
          assert.deepEqual(
            new Map(l.keys.map((e) => [String(e.key), e.count])),
            new Map([...exact].sort((a, b) => b[1] - a[1]).slice(0, 50)),
            id,
          );
        }
      },
    ),
    { seed: 18, numRuns: 20, endOnFailure: true },
  );
});

test("topK: a task that falls silent does not stop the lists; it is left out after two slides", () => {
  const { app, sink } = build({ windows: ["2s"] });
  const d = new TopologyTestDriver(app, { partitions: 2 });
  for (let t = 0; t < 6000; t += 100) {
    d.pipe("visits", { ts: t, room: 7, path: "/a" }, { partition: 0, ts: t });
    if (t < 3000) d.pipe("visits", { ts: t, room: 8, path: "/a" }, { partition: 1, ts: t });
  }
  const rooms = sink.records.map((r) => r.value).filter((l) => l.dimension === "room");
  const last = rooms[rooms.length - 1] as TopKResult;
  assert.equal(last.end, 5000);
  assert.equal(last.parts, 1);
  assert.deepEqual(
    last.keys.map((e) => [e.key, e.count]),
    [[7, 20]],
  );
  // While both sent, both were merged.
  const both = rooms.find((l) => l.end === 2000) as TopKResult;
  assert.deepEqual(
    both.keys.map((e) => [e.key, e.count]),
    [
      [7, 20],
      [8, 20],
    ],
  );
});

test("topK refuses windows that are not multiples of the slide, and k above partialK", () => {
  const app = testApp("bad");
  const s = app.stream<undefined, Visit>("visits", { serde: json() });
  assert.throws(
    () => s.topK(() => null, { name: "x", windows: ["1500ms"], k: 10 }),
    (e: Error) => e instanceof TopologyError && /multiple of the slide/.test(e.message),
  );
  assert.throws(() => s.topK(() => null, { name: "y", windows: ["1s"], k: 10, partialK: 5 }), /partialK/);
});
