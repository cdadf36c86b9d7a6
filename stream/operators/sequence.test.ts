import assert from "node:assert/strict";
import { test } from "node:test";
import { testApp } from "../testing/fixtures.ts";
import { CollectingSink, TopologyTestDriver } from "../testing/test-driver.ts";
import { json, TopologyError } from "../types.ts";
import type { SequenceMatch } from "./sequence.ts";

interface Txn {
  ts: number;
  uid: string;
  type: "RECHARGE" | "GIFT" | "LIKE";
  amount: number;
}

const MIN = 60_000;

function app(options: { maxspan?: number; maxPending?: number; grace?: number; outOfOrderness?: number } = {}) {
  const a = testApp();
  const sink = new CollectingSink<SequenceMatch<Txn>>();
  const late = new CollectingSink<Txn>();
  const matches = a
    .stream<undefined, Txn>("txns", { serde: json(), outOfOrderness: options.outOfOrderness ?? 0 })
    .sequence(
      [
        { name: "recharge", matches: (t) => t.type === "RECHARGE", capture: (t) => ({ amount: t.amount }) },
        {
          name: "gift",
          matches: (t, _k, earlier) => t.type === "GIFT" && t.amount >= 0.9 * (earlier[0] as { amount: number }).amount,
          capture: (t) => ({ amount: t.amount }),
        },
      ],
      {
        name: "recharge-then-gift",
        maxspan: options.maxspan ?? 30 * MIN,
        grace: options.grace ?? 0,
        ...(options.maxPending !== undefined ? { maxPending: options.maxPending } : {}),
      },
    );
  matches.to(sink);
  matches.late().to(late);
  return { app: a, sink, late };
}

const txn = (ts: number, uid: string, type: Txn["type"], amount: number): Txn => ({ ts, uid, type, amount });

function fmt(m: { key: string | null; value: SequenceMatch<Txn>; ts: number }): string {
  return `${m.key}@${m.ts}:${m.value.steps.map((s) => `${s.name}=${(s.captured as { amount: number }).amount}@${s.ts}`).join(",")}`;
}

test("emits when the last step arrives within maxspan, with what each step captured", () => {
  const { app: a, sink } = app();
  const d = new TopologyTestDriver(a);
  const pipe = (t: Txn) => d.pipe("txns", t, { key: t.uid });
  pipe(txn(0, "u1", "RECHARGE", 1000));
  pipe(txn(1 * MIN, "u2", "GIFT", 1000)); // u2 has no recharge
  pipe(txn(2 * MIN, "u1", "LIKE", 0));
  pipe(txn(5 * MIN, "u1", "GIFT", 950));
  assert.deepEqual(sink.records.map(fmt), [`u1@${5 * MIN}:recharge=1000@0,gift=950@${5 * MIN}`]);
  assert.equal(sink.records[0]?.value.record.amount, 950, "the completing record is carried whole");
});

test("a later step can refuse on what the earlier captured; a match completes once", () => {
  const { app: a, sink } = app();
  const d = new TopologyTestDriver(a);
  const pipe = (t: Txn) => d.pipe("txns", t, { key: t.uid });
  pipe(txn(0, "u1", "RECHARGE", 1000));
  pipe(txn(MIN, "u1", "GIFT", 100)); // too small: the partial waits
  pipe(txn(2 * MIN, "u1", "GIFT", 900));
  pipe(txn(3 * MIN, "u1", "GIFT", 900)); // the partial is complete: nothing more
  assert.deepEqual(sink.records.map(fmt), [`u1@${2 * MIN}:recharge=1000@0,gift=900@${2 * MIN}`]);
});

test("the last step after maxspan, or before the first, matches nothing", () => {
  const { app: a, sink } = app({ maxspan: 30 * MIN });
  const d = new TopologyTestDriver(a);
  const pipe = (t: Txn) => d.pipe("txns", t, { key: t.uid });
  pipe(txn(0, "u1", "GIFT", 1000));
  pipe(txn(MIN, "u1", "RECHARGE", 1000));
  pipe(txn(32 * MIN, "u1", "GIFT", 1000));
  assert.deepEqual(sink.records, []);
  assert.equal(d.task(0, 0).store("recharge-then-gift").size, 0, "the expired partial is gone");
});

test("several recharges are several partials; the oldest beyond maxPending is dropped and counted", () => {
  const { app: a, sink } = app({ maxPending: 2 });
  const d = new TopologyTestDriver(a);
  const pipe = (t: Txn) => d.pipe("txns", t, { key: t.uid });
  pipe(txn(0, "u1", "RECHARGE", 100));
  pipe(txn(MIN, "u1", "RECHARGE", 200));
  pipe(txn(2 * MIN, "u1", "RECHARGE", 300));
  pipe(txn(3 * MIN, "u1", "GIFT", 300));
  assert.deepEqual(sink.records.map(fmt), [
    `u1@${3 * MIN}:recharge=200@${MIN},gift=300@${3 * MIN}`,
    `u1@${3 * MIN}:recharge=300@${2 * MIN},gift=300@${3 * MIN}`,
  ]);
});

test("a record more than grace behind the watermark is late", () => {
  const { app: a, sink, late } = app({ grace: MIN });
  const d = new TopologyTestDriver(a);
  d.pipe("txns", txn(10 * MIN, "u1", "RECHARGE", 100), { key: "u1" });
  d.pipe("txns", txn(8 * MIN, "u1", "RECHARGE", 100), { key: "u1" });
  assert.equal(late.records.length, 1);
  assert.equal(sink.records.length, 0);
});

test("crash after a checkpoint: the partials come back from the changelog, the replay gives the same matches", () => {
  const input: Txn[] = [];
  let seed = 7;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  for (let i = 0; i < 2000; i++) {
    const type = rand() < 0.4 ? "RECHARGE" : rand() < 0.7 ? "GIFT" : "LIKE";
    input.push(txn(i * 20_000, `u${Math.floor(rand() * 40)}`, type, Math.floor(rand() * 10) * 100));
  }
  const clean = app();
  const cd = new TopologyTestDriver(clean.app);
  for (const t of input) cd.pipe("txns", t, { key: t.uid });
  const crashed = app();
  const xd = new TopologyTestDriver(crashed.app);
  input.forEach((t, i) => {
    xd.pipe("txns", t, { key: t.uid });
    if (i % 300 === 299) xd.checkpoint();
    if (i === 777 || i === 1500) xd.crash();
  });
  const a = new Set(clean.sink.records.map(fmt));
  const b = new Set(crashed.sink.records.map(fmt));
  assert.ok(a.size > 100, `${a.size} matches`);
  assert.deepEqual([...b].sort(), [...a].sort());
});

test("refuses a sequence of one step, and a bad maxPending", () => {
  const a = testApp();
  const s = a.stream<undefined, Txn>("txns", { serde: json() });
  assert.throws(
    () => s.sequence([{ name: "a", matches: () => true, capture: () => null }], { name: "x", maxspan: "1m" }),
    TopologyError,
  );
  const two = [
    { name: "a", matches: () => true, capture: () => null },
    { name: "b", matches: () => true, capture: () => null },
  ];
  assert.throws(() => s.sequence(two, { name: "y", maxspan: "1m", maxPending: 0 }), /maxPending/);
});
