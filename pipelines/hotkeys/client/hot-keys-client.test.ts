import assert from "node:assert/strict";
import { test } from "node:test";
import type { HotKeys } from "../../../schemas/types.generated.ts";
import { type HotKeyEvent, HotKeysClient } from "./hot-keys-client.ts";

function list(windowStart: number, keys: Array<[string, number]>, k = 3, windowMs = 60_000): HotKeys {
  const total = keys.reduce((n, [, c]) => n + c, 0) + 1000;
  return {
    windowStart,
    windowMs,
    dimension: "room",
    k,
    total,
    keys: keys.map(([key, count]) => ({ key, count, share: count / total })),
    emittedAt: windowStart + windowMs,
  };
}

function client(count: number) {
  const events: string[] = [];
  const c = new HotKeysClient({
    url: "http://unused",
    thresholds: { room: { window: "1m", count } },
    staleAfter: "10s",
    onHot: (e: HotKeyEvent) => events.push(`hot ${e.key} ${e.reason}${e.count !== null ? ` ${e.count}` : ""}`),
    onCool: (e: HotKeyEvent) => events.push(`cool ${e.key} ${e.reason}`),
  });
  return { c, events };
}

test("thresholds per client: the same list makes a room hot for one service and not for another", () => {
  const a = client(10_000);
  const b = client(50_000);
  const l = list(0, [
    ["7", 30_000],
    ["8", 9_000],
  ]);
  a.c.onList(l, 1000);
  b.c.onList(l, 1000);
  assert.equal(a.c.isHot("room", 7), true);
  assert.equal(a.c.isHot("room", "8"), false);
  assert.equal(b.c.isHot("room", 7), false);
  assert.deepEqual(a.events, ["hot 7 measured 30000"]);
  assert.deepEqual(b.events, []);
  assert.deepEqual(a.c.hotKeys("room"), ["7"]);
  // A list of another window does not decide.
  a.c.onList(list(0, [["9", 99_999]], 3, 10_000), 1000);
  assert.equal(a.c.isHot("room", 9), false);
});

test("hysteresis: hot down to 80% of the threshold, cool below; absent from a list that is not full: cool", () => {
  const { c, events } = client(10_000);
  c.onList(list(0, [["7", 10_000]]), 0);
  c.onList(list(1000, [["7", 8_500]]), 1000);
  assert.equal(c.isHot("room", 7), true);
  c.onList(list(2000, [["7", 7_900]]), 2000);
  assert.equal(c.isHot("room", 7), false);
  c.onList(list(3000, [["7", 12_000]]), 3000);
  c.onList(list(4000, [["6", 100]]), 4000);
  assert.equal(c.isHot("room", 7), false, "not in a list of 1 of 3: its count is below the list's");
  assert.deepEqual(events, ["hot 7 measured 10000", "cool 7 measured", "hot 7 measured 12000", "cool 7 measured"]);
});

test("absent from a full list whose last count is still above the cool level: hot until stale", () => {
  const { c, events } = client(100);
  c.onList(
    list(0, [
      ["7", 200],
      ["8", 150],
      ["9", 120],
    ]),
    0,
  );
  c.onList(
    list(1000, [
      ["8", 300],
      ["9", 250],
      ["10", 240],
    ]),
    1000,
  );
  assert.equal(c.isHot("room", 7), true, "unknown, not cold");
  c.expire(12_000);
  assert.equal(c.isHot("room", 7), false);
  assert.ok(events.includes("cool 7 measured"));
  assert.equal(c.isHot("room", 8), false, "8 was last seen at 1000 too");
});

test("marks: hot until their time whatever the counts, removed by a null, a cool event says it was a mark", () => {
  const { c, events } = client(10_000);
  const mark = {
    id: "room/8",
    dimension: "room",
    key: "8",
    until: 5000,
    reason: "drill",
    markedBy: "ops@h",
    markedAt: 0,
  };
  c.onMark("room/8", mark, 0);
  assert.equal(c.isHot("room", 8), true);
  c.onList(list(0, [["8", 20_000]]), 100);
  c.expire(5000);
  assert.equal(c.isHot("room", 8), true, "still measured hot");
  c.onList(list(1000, [["8", 10]]), 5100);
  assert.equal(c.isHot("room", 8), false);
  c.onMark("room/9", { ...mark, id: "room/9", key: "9", until: 99_999 }, 6000);
  c.onMark("room/9", null, 6001);
  c.onMark("garbage", null, 6002);
  assert.deepEqual(events, ["hot 8 marked", "cool 8 measured", "hot 9 marked", "cool 9 marked"]);
});

test("a client needs brokers or a URL, and sane thresholds", () => {
  assert.throws(() => new HotKeysClient({}), /brokers or url/);
  assert.throws(
    () => new HotKeysClient({ url: "http://x", thresholds: { room: { window: "1m", count: 0 } } }),
    /positive/,
  );
});
