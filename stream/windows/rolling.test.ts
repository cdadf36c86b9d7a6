import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { testApp } from "../testing/fixtures.ts";
import { CollectingSink, TopologyTestDriver } from "../testing/test-driver.ts";
import { json, TopologyError } from "../types.ts";
import { type RollingState, type RollingSum, rollingStateSerde } from "./rolling.ts";
import type { Windowed } from "./window.ts";

interface Pay {
  ts: number;
  uid: string;
  cents: number | null;
}

const H = 3_600_000;

function app(options: { within?: number; maxEntries?: number; grace?: number; outOfOrderness?: number } = {}) {
  const a = testApp();
  const sink = new CollectingSink<Windowed<RollingSum<Pay>>>();
  a.stream<undefined, Pay>("pays", { serde: json(), outOfOrderness: options.outOfOrderness ?? 0 })
    .rollingSum((p) => p.cents, {
      name: "cents-24h",
      within: options.within ?? 24 * H,
      grace: options.grace ?? 0,
      ...(options.maxEntries !== undefined ? { maxEntries: options.maxEntries } : {}),
    })
    .to(sink);
  return { app: a, sink };
}

const pay = (ts: number, uid: string, cents: number | null): Pay => ({ ts, uid, cents });
const fmt = (r: { key: string | null; value: Windowed<RollingSum<Pay>> }) =>
  `${r.key}@${r.value.end - 1}=${r.value.value.sum}/${r.value.value.count}`;

test("emits each record's key's sum and count over the window ending at it", () => {
  const { app: a, sink } = app();
  const d = new TopologyTestDriver(a);
  const pipe = (p: Pay) => d.pipe("pays", p, { key: p.uid });
  pipe(pay(0, "u1", 100));
  pipe(pay(H, "u1", 200));
  pipe(pay(2 * H, "u2", 5));
  pipe(pay(3 * H, "u1", null)); // no value: not counted, not emitted
  pipe(pay(24 * H, "u1", 300)); // [0, 24h]: the first still counts (both ends included)
  pipe(pay(24 * H + 1, "u1", 1)); // the first has slid out
  assert.deepEqual(sink.records.map(fmt), [
    "u1@0=100/1",
    `u1@${H}=300/2`,
    `u2@${2 * H}=5/1`,
    `u1@${24 * H}=600/3`,
    `u1@${24 * H + 1}=501/3`,
  ]);
});

test("a record out of order raises the window ending at the key's newest record", () => {
  const { app: a, sink } = app({ within: 10_000, outOfOrderness: 60_000 });
  const d = new TopologyTestDriver(a);
  const pipe = (p: Pay) => d.pipe("pays", p, { key: p.uid });
  pipe(pay(0, "u1", 1));
  pipe(pay(20_000, "u1", 10));
  pipe(pay(15_000, "u1", 100)); // the window [10 s, 20 s] now holds 10 + 100
  pipe(pay(5_000, "u1", 7)); // more than the window behind the key's newest: counts in no window still emitted
  pipe(pay(21_000, "u1", 1000)); // window [11 s, 21 s]: 100 + 10 + 1000
  assert.deepEqual(sink.records.map(fmt), ["u1@0=1/1", "u1@20000=10/1", "u1@20000=110/2", "u1@21000=1110/3"]);
});

test("agrees with a brute-force sum over the window ending at the newest record (property, any order within the window)", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.tuple(
          fc.nat(5_000),
          fc.integer({ min: -25_000, max: 0 }),
          fc.constantFrom("a", "b", "c"),
          fc.integer({ min: -50, max: 1000 }),
        ),
        { maxLength: 120 },
      ),
      (steps) => {
        const { app: a, sink } = app({ within: 20_000, outOfOrderness: 60_000 });
        const d = new TopologyTestDriver(a);
        let clock = 30_000;
        const kept: Pay[] = [];
        const expected: string[] = [];
        const newest = new Map<string, number>();
        for (const [dt, back, uid, cents] of steps) {
          clock += dt;
          const p = pay(clock + back, uid, cents);
          d.pipe("pays", p, { key: uid });
          const n = Math.max(newest.get(uid) ?? Number.NEGATIVE_INFINITY, p.ts);
          if (p.ts < n - 20_000) continue; // behind the window: not counted, not emitted
          newest.set(uid, n);
          kept.push(p);
          const inWindow = kept.filter((q) => q.uid === uid && q.ts >= n - 20_000 && q.ts <= n);
          expected.push(`${uid}@${n}=${inWindow.reduce((s, q) => s + (q.cents as number), 0)}/${inWindow.length}`);
        }
        assert.deepEqual(sink.records.map(fmt), expected);
      },
    ),
    { numRuns: 200 },
  );
});

test("past maxEntries the oldest entries merge (counted); the newest window stays right", () => {
  const { app: a, sink } = app({ within: 1000, maxEntries: 4 });
  const d = new TopologyTestDriver(a);
  for (let i = 0; i < 10; i++) d.pipe("pays", pay(i * 100, "u1", 1), { key: "u1" });
  assert.equal(sink.records.at(-1)?.value.value.count, 10);
  const st = d.task(0, 0).store<RollingState>("cents-24h").get("u1") as RollingState;
  assert.equal(st.ts.length, 4);
  assert.equal(
    st.counts.reduce((s, n) => s + n, 0),
    10,
  );
});

test("the changelog form round-trips, and a crash replays to the same sums", () => {
  const st: RollingState = {
    newest: 5,
    sum: 3.5,
    count: 2,
    from: 1,
    ts: [1, 4, 5],
    sums: [9, 1.5, 2],
    counts: [1, 1, 1],
  };
  assert.deepEqual(rollingStateSerde.decode(rollingStateSerde.encode(st)), st);
  const input = Array.from({ length: 1500 }, (_, i) => pay(i * 1000, `u${(i * 7) % 13}`, (i * 31) % 100));
  const clean = app({ within: 60_000 });
  const cd = new TopologyTestDriver(clean.app);
  for (const p of input) cd.pipe("pays", p, { key: p.uid });
  const crashed = app({ within: 60_000 });
  const xd = new TopologyTestDriver(crashed.app);
  input.forEach((p, i) => {
    xd.pipe("pays", p, { key: p.uid });
    if (i % 200 === 199) xd.checkpoint();
    if (i === 555 || i === 1234) xd.crash();
  });
  assert.deepEqual(
    [...new Set(crashed.sink.records.map(fmt))].sort(),
    [...new Set(clean.sink.records.map(fmt))].sort(),
  );
});

test("refuses a bad maxEntries or window", () => {
  const s = testApp().stream<undefined, Pay>("pays", { serde: json() });
  assert.throws(() => s.rollingSum((p) => p.cents, { name: "a", within: "1h", maxEntries: 1 }), TopologyError);
  assert.throws(() => s.rollingSum((p) => p.cents, { name: "b", within: 0 }), /within must be positive/);
});
