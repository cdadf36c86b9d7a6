import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { fmix32, hashKey } from "./hash.ts";
import { HeavyKeeper } from "./heavy-keeper.ts";
import { TopKHeap } from "./top-k-heap.ts";

const SEEDS = { s1: 0x1234567, s2: 0x7654321 };

function exactCounts<K>(stream: K[]): Map<K, number> {
  const m = new Map<K, number>();
  for (const k of stream) m.set(k, (m.get(k) ?? 0) + 1);
  return m;
}

/** A Zipf(s) stream of `length` draws over keys 0..n-1, from a seeded generator. */
function zipfStream(n: number, s: number, length: number, seed: number): number[] {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    sum += 1 / (i + 1) ** s;
    cdf[i] = sum;
  }
  let x = seed >>> 0 || 1;
  const out = new Array<number>(length);
  for (let j = 0; j < length; j++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    const u = (x / 2 ** 32) * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cdf[mid] as number) < u) lo = mid + 1;
      else hi = mid;
    }
    // Ranks are scattered over the key space, so a key's hash says nothing about its rank.
    out[j] = fmix32(lo) % 1_000_000_007;
  }
  return out;
}

test("TopKHeap keeps the k largest counts with the smallest at the root, through pushes and raises", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 12 }),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 1, max: 5 })), { maxLength: 300 }),
      (k, ops) => {
        const heap = new TopKHeap<number>(k);
        const model = new Map<number, number>();
        for (const [key, by] of ops) {
          const at = heap.indexOf(key);
          if (at >= 0) {
            const c = heap.countAt(at) + by;
            heap.setAt(at, c);
            model.set(key, c);
          } else if (!heap.full || by > heap.min) {
            if (heap.full) {
              const lightest = heap.keyAt(0);
              model.delete(lightest);
            }
            heap.push(key, by);
            model.set(key, by);
          }
          assert.equal(heap.size, model.size);
          const sorted = heap.sorted();
          assert.deepEqual(
            sorted.map((e) => e.count),
            [...model.values()].sort((a, b) => b - a),
          );
          for (const [mk, mc] of model) assert.equal(heap.count(mk), mc);
          if (heap.full) assert.equal(heap.min, Math.min(...model.values()));
        }
      },
    ),
    { seed: 18, numRuns: 200 },
  );
});

test("hashKey: numbers and strings hash deterministically under fixed seeds, and 7 differs from '7'", () => {
  const a = new Uint32Array(2);
  const b = new Uint32Array(2);
  for (const key of [0, 7, 4294967295, 4294967296, -1, 1.5, "", "7", "room-7", "日本"]) {
    hashKey(key, SEEDS, a);
    hashKey(key, SEEDS, b);
    assert.deepEqual([...a], [...b], String(key));
  }
  hashKey(7, SEEDS, a);
  hashKey("7", SEEDS, b);
  assert.notDeepEqual([...a], [...b]);
  // 100,000 consecutive ids: no two share both hashes (the sketch would see them as one key).
  const seen = new Set<string>();
  for (let i = 0; i < 100_000; i++) {
    hashKey(700_000 + i, SEEDS, a);
    seen.add(`${a[0]}:${a[1]}`);
  }
  assert.equal(seen.size, 100_000);
});

test("HeavyKeeper never reports a count above the exact one, for any stream (numbers and strings)", () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.integer({ min: 0, max: 60 }), fc.constantFrom("a", "b", "/gift/send", "c")), {
        maxLength: 2000,
      }),
      fc.integer({ min: 1, max: 64 }),
      fc.integer({ min: 1, max: 10 }),
      fc.integer(),
      (stream, width, k, seed) => {
        const hk = new HeavyKeeper<number | string>({ k, width, seeds: SEEDS, randomSeed: seed });
        for (const key of stream) hk.add(key);
        const exact = exactCounts<number | string>(stream);
        assert.equal(hk.total, stream.length);
        for (const { key, count } of hk.top()) {
          assert.ok(count <= (exact.get(key) ?? 0), `${key}: ${count} > ${exact.get(key)}`);
        }
        for (const [key, n] of exact) assert.ok(hk.estimate(key) <= n);
      },
    ),
    { seed: 1808, numRuns: 150 },
  );
});

test("HeavyKeeper with a bucket for every key counts every kept key exactly and keeps the true top k", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 3000 }),
      fc.integer({ min: 1, max: 8 }),
      (stream, k) => {
        // 65,536 buckets a row for at most 41 keys: a key shares both its buckets with another only
        // with probability ~(41/65536)^2; the fixed seeds make the run deterministic.
        const hk = new HeavyKeeper<number>({ k, width: 65_536, seeds: SEEDS, randomSeed: 3 });
        for (const key of stream) hk.add(key);
        const exact = exactCounts(stream);
        const top = hk.top();
        for (const { key, count } of top) assert.equal(count, exact.get(key));
        const truth = [...exact.values()].sort((a, b) => b - a).slice(0, k);
        assert.deepEqual(
          top.map((e) => e.count),
          truth,
        );
      },
    ),
    { seed: 42, numRuns: 200 },
  );
});

test("HeavyKeeper on a Zipf(1.0) stream of 200,000 over 50,000 keys: the top 20 found, counts within 2%", () => {
  const stream = zipfStream(50_000, 1.0, 200_000, 99);
  const exact = exactCounts(stream);
  const truth = [...exact].sort((a, b) => b[1] - a[1]).slice(0, 20);
  const hk = new HeavyKeeper<number>({ k: 20, width: 2048, seeds: SEEDS, randomSeed: 5 });
  for (const key of stream) hk.add(key);
  const found = new Set(hk.top().map((e) => e.key));
  const hits = truth.filter(([key]) => found.has(key)).length;
  assert.ok(hits >= 19, `precision ${hits}/20`);
  for (const { key, count } of hk.top()) {
    const n = exact.get(key) as number;
    assert.ok(count <= n && count >= n * 0.98, `${key}: ${count} vs ${n}`);
  }
});

test("HeavyKeeper's C <= nmin rule: a key outside the heap whose fingerprint bucket is full stops counting", () => {
  // width 1: every key shares the one bucket per row, so the rule is visible at once.
  const hk = new HeavyKeeper<number>({ k: 1, width: 1, depth: 1, seeds: SEEDS, randomSeed: 1 });
  for (let i = 0; i < 50; i++) hk.add(1);
  assert.deepEqual(hk.top(), [{ key: 1, count: 50 }]);
  // Key 2 cannot take a bucket of count 50 (decay 1.08^-50 ~ 2%) often enough to matter here, and
  // even if it did it would enter the heap only at nmin + 1.
  for (let i = 0; i < 20; i++) hk.add(2);
  const top = hk.top();
  assert.equal(top.length, 1);
  assert.ok(top[0]?.key === 1 || (top[0]?.count as number) <= 20);
  assert.equal(hk.total, 70);
});

test("HeavyKeeper refuses a width, depth or decay it cannot work with", () => {
  assert.throws(() => new HeavyKeeper({ k: 10, width: 0 }), /width/);
  assert.throws(() => new HeavyKeeper({ k: 10, width: 8, depth: 0 }), /depth/);
  assert.throws(() => new HeavyKeeper({ k: 10, width: 8, decay: 1 }), /decay/);
  assert.throws(() => new HeavyKeeper({ k: 0, width: 8 }), /k must/);
  assert.equal(HeavyKeeper.widthFor(256 * 1024, 100), Math.floor((262144 - 5400) / 16));
});
