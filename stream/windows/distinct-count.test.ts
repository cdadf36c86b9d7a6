import assert from "node:assert/strict";
import { test } from "node:test";
import { testApp } from "../testing/fixtures.ts";
import { CollectingSink, TopologyTestDriver } from "../testing/test-driver.ts";
import { json, type Rec, TopologyError } from "../types.ts";
import { type DistinctCount, type DistinctState, distinctStateSerde, MAX_DISTINCT_CAP } from "./distinct-count.ts";
import type { Windowed } from "./window.ts";

interface Login {
  ts: number;
  device: string;
  account: string | null;
}

type Out = Rec<Windowed<DistinctCount<Login>>>;

const HOUR = 3_600_000;

function app(options: { cap?: number; grace?: number; outOfOrderness?: number; within?: number; late?: boolean } = {}) {
  const a = testApp();
  const sink = new CollectingSink<Windowed<DistinctCount<Login>>>();
  const lateSink = new CollectingSink<Login>();
  const counts = a
    .stream<undefined, Login>("logins", { serde: json(), outOfOrderness: options.outOfOrderness ?? 0 })
    .countDistinct((l) => l.account, {
      name: "accounts-per-device",
      within: options.within ?? HOUR,
      grace: options.grace ?? 0,
      ...(options.cap !== undefined ? { cap: options.cap } : {}),
    });
  counts.to(sink);
  if (options.late) counts.late().to(lateSink);
  return { app: a, sink, lateSink };
}

function login(ts: number, device: string, account: string | null): Login {
  return { ts, device, account };
}

/** A device's state in the (only) task's store. */
function stateOf(d: TopologyTestDriver, device: string): DistinctState {
  const st = d.task(0, 0).store<DistinctState>("accounts-per-device").get(device);
  if (!st) throw new Error(`no state for ${device}`);
  return st;
}

/** "device@ts=count" (+ "+" when capped) for compact assertions. */
function fmt(r: Out): string {
  const v = r.value.value;
  return `${r.key}@${r.ts}=${v.count}${v.capped ? "+" : ""}`;
}

test("emits when a record brings an account new to the device's last hour, with the count as of that record", () => {
  const { app: a, sink } = app();
  const d = new TopologyTestDriver(a);
  const pipe = (l: Login) => d.pipe("logins", l, { key: l.device });
  pipe(login(0, "d1", "alice"));
  pipe(login(1000, "d1", "alice")); // seen: no change
  pipe(login(2000, "d1", "bob"));
  pipe(login(3000, "d2", "carol")); // another device
  pipe(login(4000, "d1", "carol"));
  assert.deepEqual(sink.records.map(fmt), ["d1@0=1", "d1@2000=2", "d2@3000=1", "d1@4000=3"]);
  const last = sink.records.at(-1)?.value as Windowed<DistinctCount<Login>>;
  assert.deepEqual(
    { start: last.start, end: last.end, final: last.final, distinct: last.value.distinct, record: last.value.record },
    { start: 4000 - HOUR, end: 4001, final: false, distinct: "carol", record: login(4000, "d1", "carol") },
  );
  // Both ends of the window are included: bob, last seen at 2000, still counts at HOUR + 2000; alice does not.
  pipe(login(HOUR + 2000, "d1", "erin"));
  pipe(login(HOUR + 2500, "d1", "dave")); // bob has left: carol, erin, dave
  assert.deepEqual(sink.records.slice(4).map(fmt), [`d1@${HOUR + 2000}=3`, `d1@${HOUR + 2500}=3`]);
  const values = stateOf(d, "d1").values;
  assert.deepEqual(values, ["carol", "erin", "dave"]);
});

test("a record without a value counts for nothing; a repeated value refreshes its last-seen time", () => {
  const { app: a, sink } = app();
  const d = new TopologyTestDriver(a);
  const pipe = (l: Login) => d.pipe("logins", l, { key: l.device });
  pipe(login(0, "d1", "alice"));
  pipe(login(10, "d1", null));
  pipe(login(HOUR - 1, "d1", "alice")); // refreshed: alice stays in the window until 2 h - 1
  pipe(login(HOUR + 100, "d1", "bob"));
  pipe(login(2 * HOUR, "d1", "carol"));
  assert.deepEqual(sink.records.map(fmt), ["d1@0=1", `d1@${HOUR + 100}=2`, `d1@${2 * HOUR}=2`]);
  assert.equal(sink.records.at(-1)?.value.value.distinct, "carol");
});

test("out of order within grace counts; more than grace behind the watermark is late, counted, dead-lettered or routed", () => {
  for (const routed of [false, true]) {
    const { app: a, sink, lateSink } = app({ grace: 5000, late: routed });
    const d = new TopologyTestDriver(a);
    const pipe = (l: Login) => d.pipe("logins", l, { key: l.device });
    pipe(login(100_000, "d1", "alice"));
    pipe(login(96_000, "d1", "bob")); // 4 s behind the watermark (99 999): within grace
    pipe(login(90_000, "d1", "carol")); // 10 s behind: late
    assert.deepEqual(sink.records.map(fmt), ["d1@100000=1", "d1@100000=2"]);
    assert.equal(d.allTasks()[0]?.counters.late, 1);
    if (routed) {
      assert.deepEqual(
        lateSink.records.map((r) => r.value.account),
        ["carol"],
      );
      assert.equal(d.deadLetters.length, 0);
    } else {
      assert.deepEqual(
        d.deadLetters.map((l) => [l.reason, l.offset]),
        [["late-event", "2"]],
      );
    }
  }
});

test("a record older than its key's newest by more than the window counts in no window and is counted as behind-window", () => {
  const a = testApp();
  const sink = new CollectingSink<Windowed<DistinctCount<Login>>>();
  // A repartitioned stream: a key's records come from two upstream tasks far apart in event time.
  a.stream<undefined, Login>("logins", { serde: json() })
    .keyBy((l) => l.device, "device")
    .countDistinct((l) => l.account, { name: "apd", within: "1m" })
    .to(sink);
  const d = new TopologyTestDriver(a, { partitions: 2 });
  d.pipe("logins", login(10 * 60_000, "d1", "alice"), { partition: 0 });
  d.pipe("logins", login(60_000, "d1", "bob"), { partition: 1 }); // the watermark is held by partition 1
  assert.deepEqual(sink.records.map(fmt), ["d1@600000=1"]);
  const task = d.allTasks().find((t) => (t.stores.get("apd")?.size ?? 0) > 0);
  assert.deepEqual(task?.dropped(), [
    { operator: "countDistinct apd", reason: "cap", count: 0 },
    { operator: "countDistinct apd", reason: "behind-window", count: 1 },
  ]);
  assert.equal(task?.counters.late, 0, "not late: the watermark is 59 999");
});

test("the cap: the most recently seen values are kept, overflow is counted and reported, the count is exact up to the cap", () => {
  const { app: a, sink } = app({ cap: 3 });
  const d = new TopologyTestDriver(a);
  const pipe = (ts: number, account: string) => d.pipe("logins", login(ts, "farm", account), { key: "farm" });
  for (const [i, acc] of ["a", "b", "c"].entries()) pipe(i * 1000, acc);
  pipe(3000, "d"); // a is dropped: 4 accounts in the hour, 3 kept
  pipe(4000, "e"); // b dropped: nothing to emit (still capped at 3)
  pipe(5000, "a"); // a again: new to the kept values, c dropped
  assert.deepEqual(sink.records.map(fmt), ["farm@0=1", "farm@1000=2", "farm@2000=3", "farm@3000=3+"]);
  assert.equal(sink.records.at(-1)?.value.value.overflow, 1);
  const task = d.allTasks()[0];
  assert.deepEqual(task?.dropped().find((x) => x.reason === "cap")?.count, 3);
  // Once the dropped values leave the window the count is exact again: at 3000 + 1 h, only e and a
  // (last seen 4000 and 5000) and d (3000) are in [3000, 3000 + 1 h].
  pipe(HOUR + 3000, "f"); // d, e, a kept (and f in place of d): d at 3000 is dropped for the cap
  pipe(HOUR + 4500, "g"); // window [4500, ...]: a (5000), f, g; nothing dropped is in it any more
  assert.deepEqual(sink.records.slice(4).map(fmt), [`farm@${HOUR + 3000}=3+`, `farm@${HOUR + 4500}=3`]);
  assert.deepEqual(stateOf(d, "farm").values, ["a", "f", "g"]);
  // The window empties: the key starts over, as it would had its state expired.
  pipe(3 * HOUR, "z");
  assert.deepEqual(
    [fmt(sink.records.at(-1) as Out), sink.records.at(-1)?.value.value.overflow],
    [`farm@${3 * HOUR}=1`, 0],
  );
});

/** A small deterministic random source (mulberry32). */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The definition, by brute force over every accepted record: the count of the window as of the
 * key's newest record, min(distinct, cap), capped when distinct > cap, emitted when a record changes
 * it (the window as of that record, with and without the record).
 */
function reference(input: Login[], o: { within: number; grace: number; outOfOrderness: number; cap: number }) {
  const accepted = new Map<string, Login[]>();
  const newest = new Map<string, number>();
  let maxTs = Number.NEGATIVE_INFINITY;
  const out: string[] = [];
  for (const l of input) {
    const wm = maxTs - o.outOfOrderness - 1;
    maxTs = Math.max(maxTs, l.ts);
    if (l.ts + o.grace <= wm || l.account === null) continue;
    const prevNewest = newest.get(l.device) ?? l.ts;
    if (l.ts < prevNewest - o.within) continue;
    const end = Math.max(prevNewest, l.ts);
    newest.set(l.device, end);
    const recs = accepted.get(l.device) ?? [];
    accepted.set(l.device, recs);
    const distinct = (rs: Login[]) => new Set(rs.filter((r) => r.ts >= end - o.within).map((r) => r.account)).size;
    const before = distinct(recs);
    recs.push(l);
    const after = distinct(recs);
    const shown = (n: number) => `${Math.min(n, o.cap)}${n > o.cap ? "+" : ""}`;
    if (shown(before) !== shown(after)) out.push(`${l.device}@${end}=${shown(after)}`);
  }
  return out;
}

test("against the definition: random devices, accounts, disorder within and beyond grace, with and without a cap", () => {
  for (const [seed, cap] of [
    [1, 1000],
    [2, 4],
    [3, 1],
    [4, 20],
  ] as const) {
    const o = { within: 60_000, grace: 3000, outOfOrderness: 2000, cap };
    const { app: a, sink } = app(o);
    const d = new TopologyTestDriver(a);
    const random = rng(seed);
    const input: Login[] = [];
    let t = 0;
    for (let i = 0; i < 4000; i++) {
      t += Math.floor(random() * 200);
      const jitter = random() < 0.2 ? Math.floor(random() * 8000) : 0; // some beyond grace: late
      // A few hot devices with many accounts (the index path), many cold ones.
      const hot = random() < 0.3;
      const device = hot ? `hot${Math.floor(random() * 2)}` : `d${Math.floor(random() * 50)}`;
      const account = random() < 0.02 ? null : `acc${Math.floor(random() * (hot ? 60 : 4))}`;
      input.push(login(t - jitter, device, account));
    }
    for (const l of input) d.pipe("logins", l, { key: l.device });
    const expected = reference(input, o);
    assert.ok(expected.length > 100, `seed ${seed}: ${expected.length} emissions`);
    assert.deepEqual(sink.records.map(fmt), expected, `seed ${seed}, cap ${cap}`);
  }
});

test("state stays bounded: values leave as the window slides, keys leave when the watermark passes them", () => {
  const { app: a } = app({ within: 10_000, grace: 1000 });
  const d = new TopologyTestDriver(a);
  for (let i = 0; i < 5000; i++) {
    d.pipe("logins", login(i * 100, `dev${i % 100}`, `acc${i}`), { key: `dev${i % 100}` });
  }
  const store = d.allTasks()[0]?.store("accounts-per-device");
  let most = 0;
  for (const [, st] of store?.entries() ?? []) most = Math.max(most, (st as DistinctState).values.length);
  assert.ok(most <= 2, `a device keeps at most the accounts of its last 10 s, kept ${most}`);
  assert.equal(store?.size, 100);
  d.pipe("logins", login(600_000, "other", "x"), { key: "other" });
  assert.deepEqual(
    [...(store?.entries() ?? [])].map(([k]) => k),
    ["other"],
    "the TTL dropped the silent devices",
  );
  assert.ok((store?.expirations ?? 0) >= 100);
});

test("a hot key out of order: it keeps the most recently seen values, its index follows the arrays", () => {
  const { app: a, sink } = app({ within: 1000, cap: 50, grace: 500 });
  const d = new TopologyTestDriver(a);
  const random = rng(7);
  const seen = new Map<string, number>();
  let newest = 0;
  for (let i = 0; i < 3000; i++) {
    const ts = i * 2 - (random() < 0.3 ? Math.floor(random() * 400) : 0);
    const account = `a${Math.floor(random() * 80)}`;
    d.pipe("logins", login(ts, "hot", account), { key: "hot" });
    seen.set(account, Math.max(seen.get(account) ?? ts, ts));
    newest = Math.max(newest, ts);
    const st = stateOf(d, "hot");
    if (st.index) {
      assert.equal(st.index.size, st.values.length);
      for (const [k, v] of st.values.entries()) assert.equal(st.index.get(v), st.seen[k]);
    }
    for (let k = 1; k < st.seen.length; k++) assert.ok((st.seen[k - 1] as number) <= (st.seen[k] as number));
    const inWindow = [...seen].filter(([, t]) => t >= newest - 1000).sort((x, y) => y[1] - x[1]);
    assert.equal(st.values.length, Math.min(inWindow.length, 50), `at ${ts}`);
    // The values kept are the most recently seen ones (ties at the boundary either way).
    const boundary = inWindow[Math.min(inWindow.length, 50) - 1]?.[1] ?? 0;
    for (const [v, t] of inWindow) if (t > boundary) assert.ok(st.values.includes(v), `${v} (${t}) kept at ${ts}`);
    for (const [k, v] of st.values.entries()) assert.equal(st.seen[k], seen.get(v), `${v}'s last-seen time at ${ts}`);
    assert.ok((st.seen[0] ?? boundary) >= boundary, `nothing older than the 50th most recent value kept at ${ts}`);
  }
  assert.equal(d.allTasks()[0]?.counters.late, 0);
  assert.ok(sink.records.some((r) => r.value.value.capped));
});

test("crash after a checkpoint: the changelog restores every device's window and the replay emits the same counts", () => {
  const o = { within: 30_000, grace: 2000, outOfOrderness: 1000, cap: 8 };
  const input: Login[] = [];
  const random = rng(11);
  for (let i = 0; i < 3000; i++) {
    const device = `d${Math.floor(random() * 30)}`;
    input.push(login(i * 50 - Math.floor(random() * 2500), device, `acc${Math.floor(random() * 15)}`));
  }
  const emissions = (sink: CollectingSink<Windowed<DistinctCount<Login>>>) => {
    const m = new Map<string, string>();
    for (const r of sink.records) {
      const id = `${r.key}|${r.value.value.record.ts}|${r.value.value.distinct}`;
      const v = JSON.stringify({ ...r.value, value: { ...r.value.value, record: undefined } });
      const before = m.get(id);
      assert.ok(before === undefined || before === v, `a replay emitted ${id} differently: ${before} then ${v}`);
      m.set(id, v);
    }
    return m;
  };
  const clean = app(o);
  const cd = new TopologyTestDriver(clean.app);
  for (const l of input) cd.pipe("logins", l, { key: l.device });

  const crashed = app(o);
  const xd = new TopologyTestDriver(crashed.app);
  input.forEach((l, i) => {
    xd.pipe("logins", l, { key: l.device });
    if (i % 400 === 399) xd.checkpoint();
    if (i === 1111 || i === 2500) xd.crash();
  });
  const a = emissions(clean.sink);
  const b = emissions(crashed.sink);
  assert.ok(a.size > 300);
  assert.deepEqual([...b.entries()].sort(), [...a.entries()].sort());
  assert.equal(xd.deadLetters.length, cd.deadLetters.length, "lateness decided alike after restore");
  assert.ok(
    xd.output("test-accounts-per-device-changelog").length > 0,
    "state went through the store's changelog topic",
  );
});

test("the changelog form round-trips, and values over 64 characters are kept as their SHA-256", () => {
  const st: DistinctState = {
    newest: 1_700_000_000_123,
    floor: Number.NEGATIVE_INFINITY,
    overflow: 7,
    values: ["alice", "ünïcødé 账户", ""],
    seen: [1_700_000_000_000, 1_700_000_000_100, 1_700_000_000_123],
    index: undefined,
  };
  assert.deepEqual(distinctStateSerde.decode(distinctStateSerde.encode(st)), st);
  const withFloor = { ...st, floor: 1_699_999_999_000 };
  assert.deepEqual(distinctStateSerde.decode(distinctStateSerde.encode(withFloor)), withFloor);

  const { app: a, sink } = app();
  const d = new TopologyTestDriver(a);
  const long = "x".repeat(10_000);
  d.pipe("logins", login(0, "d", long), { key: "d" });
  d.pipe("logins", login(1, "d", long), { key: "d" });
  d.pipe("logins", login(2, "d", `${long}y`), { key: "d" });
  assert.deepEqual(sink.records.map(fmt), ["d@0=1", "d@2=2"]);
  const kept = stateOf(d, "d").values;
  assert.ok(kept.every((v) => v.startsWith("sha256:") && v.length <= 64));
});

test("a cap outside 1..MAX_DISTINCT_CAP, or an empty window, is refused when the topology is built", () => {
  const a = testApp();
  const s = a.stream<undefined, Login>("logins", { serde: json() });
  assert.throws(() => s.countDistinct((l) => l.account, { name: "x", within: "1h", cap: 0 }), TopologyError);
  assert.throws(
    () => s.countDistinct((l) => l.account, { name: "y", within: "1h", cap: MAX_DISTINCT_CAP + 1 }),
    /cap must be a whole number from 1 to 3000/,
  );
  assert.throws(() => s.countDistinct((l) => l.account, { name: "z", within: 0 }), /within must be positive/);
});
