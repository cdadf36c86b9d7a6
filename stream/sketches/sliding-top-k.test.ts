import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { mergeTopK } from "./merge-top-k.ts";
import { SlidingTopK } from "./sliding-top-k.ts";

const SEEDS = { s1: 11, s2: 22 };

test("SlidingTopK: every window of the ring equals an exact count of its records (wide sketches)", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 25 }), fc.integer({ min: 0, max: 12_000 })), { maxLength: 800 }),
      fc.integer({ min: 1, max: 6 }),
      (records, slides) => {
        const ring = new SlidingTopK<number>({ slide: 1000, slides: 6, k: 30, width: 65_536, seeds: SEEDS });
        const kept: Array<[number, number]> = [];
        let newest = Number.NEGATIVE_INFINITY;
        for (const [key, ts] of records) {
          const accepted = ring.add(key, ts);
          const slide = Math.floor(ts / 1000);
          newest = Math.max(newest, slide);
          assert.equal(accepted, slide > newest - 6, `ts ${ts}, newest slide ${newest}`);
          if (accepted) kept.push([key, ts]);
        }
        if (!Number.isFinite(newest)) return;
        const end = (newest + 1) * 1000;
        const w = ring.top(end, slides, 100);
        const exact = new Map<number, number>();
        let total = 0;
        for (const [key, ts] of kept) {
          if (ts < end - slides * 1000 || ts >= end) continue;
          total++;
          exact.set(key, (exact.get(key) ?? 0) + 1);
        }
        assert.equal(w.total, total);
        assert.equal(w.start, end - slides * 1000);
        const got = new Map(w.keys.map((e) => [e.key, e.count]));
        assert.deepEqual(new Map([...got].sort()), new Map([...exact].sort()));
        assert.equal(w.truncated, false);
      },
    ),
    { seed: 7, numRuns: 200 },
  );
});

test("SlidingTopK forgets: a key heavy two windows ago is gone, the window fills as the ring starts", () => {
  const ring = new SlidingTopK<string>({ slide: 1000, slides: 10, k: 5, width: 1024, seeds: SEEDS });
  for (let i = 0; i < 500; i++) ring.add("old-star", 1000 + (i % 1000));
  for (let t = 2000; t < 14_000; t += 10) ring.add(`k${t % 7}`, t);
  const w = ring.top(14_000, 10, 5);
  assert.ok(!w.keys.some((e) => e.key === "old-star"));
  assert.equal(w.slides, 10);
  const early = ring.top(3000, 10, 5);
  assert.equal(early.slides, 0, "slides 1 and 2 were reused by later ones");
  assert.equal(ring.add("late", 3999), false, "older than the ring");
  assert.throws(() => ring.top(14_500, 10, 5), /multiple of the slide/);
});

test("mergeTopK: complete lists of disjoint parts merge into the exact counts; cut lists give bounds", () => {
  fc.assert(
    fc.property(
      fc.array(fc.array(fc.integer({ min: 0, max: 15 }), { maxLength: 200 }), { minLength: 1, maxLength: 6 }),
      fc.integer({ min: 1, max: 20 }),
      (partsStreams, k) => {
        const exact = new Map<number, number>();
        const parts = partsStreams.map((stream) => {
          const m = new Map<number, number>();
          for (const key of stream) {
            m.set(key, (m.get(key) ?? 0) + 1);
            exact.set(key, (exact.get(key) ?? 0) + 1);
          }
          const all = [...m].map(([key, count]) => ({ key, count })).sort((a, b) => b.count - a.count);
          const cut = all.slice(0, 4);
          return {
            complete: { total: stream.length, keys: all, floor: 0 },
            cut: { total: stream.length, keys: cut, floor: all.length > 4 ? (cut[3]?.count ?? 0) : 0 },
          };
        });
        const merged = mergeTopK(
          parts.map((p) => p.complete),
          k,
        );
        const truth = [...exact].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, k);
        assert.deepEqual(
          merged.keys.map((e) => [e.key, e.count]),
          truth,
        );
        const bounded = mergeTopK(
          parts.map((p) => p.cut),
          k,
        );
        assert.equal(
          bounded.total,
          partsStreams.reduce((n, s) => n + s.length, 0),
        );
        for (const e of bounded.keys) {
          const n = exact.get(e.key) as number;
          assert.ok(e.count <= n && n <= e.upper, `${e.key}: ${e.count} <= ${n} <= ${e.upper}`);
        }
      },
    ),
    { seed: 9, numRuns: 300 },
  );
});
